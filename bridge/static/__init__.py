"""The Bridge's CSS and JavaScript (a package only so that the wheel ships them as package data)."""
