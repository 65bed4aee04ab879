"""Alembic migrations of the store schema (run through ``causette.store.migrate``)."""
