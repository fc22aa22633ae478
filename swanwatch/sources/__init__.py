"""Built-in sources: csv (and JSON Lines), registered by entry point."""
