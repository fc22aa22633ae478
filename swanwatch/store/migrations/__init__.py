"""Alembic migrations of the store's schema, applied on start and by `swanwatch db upgrade`."""
