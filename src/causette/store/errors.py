"""Errors raised when opening a store; defined with every other error in ``causette.errors``."""

from __future__ import annotations

from causette.errors import SchemaBehind, SchemaUnknown, StoreUnreachable

__all__ = ["SchemaBehind", "SchemaUnknown", "StoreUnreachable"]
