"""The `tidegate` command line."""
