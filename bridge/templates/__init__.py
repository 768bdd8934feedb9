"""The Bridge's page templates (a package only so that the wheel ships them as package data)."""
