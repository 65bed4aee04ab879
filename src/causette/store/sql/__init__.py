"""SQL adapter of the store: schema (tables), engines and the ``SqlStore``."""
