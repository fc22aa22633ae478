"""Built-in watchers, registered by entry point like any third-party plugin."""
