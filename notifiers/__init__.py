"""Built-in notifiers, registered by entry point like any third-party plugin."""
