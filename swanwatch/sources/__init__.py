"""Built-in sources: csv (and JSON Lines), sql and http, registered by entry point; and
``health``, which judges every read of any source (ok, suspect, stale or broken)."""
