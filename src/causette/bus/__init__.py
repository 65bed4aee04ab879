"""Bus adapters: ``local://`` (in-process, one node)."""

from __future__ import annotations

from causette.bus.local import LocalBus
from causette.core.ports import Bus
from causette.errors import ConfigError


async def open_bus(url: str) -> Bus:
    if url.startswith("local:"):
        return LocalBus()
    raise ConfigError(detail=f"unsupported bus URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["LocalBus", "open_bus"]
