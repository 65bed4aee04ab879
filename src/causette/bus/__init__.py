"""Bus adapters, chosen by URL.

``local://``
    ``LocalBus``: in-process, one node.
``redis://[:password@]host:port/db[?prefix=causette:]`` (``rediss://`` for TLS)
    ``RedisBus``: several nodes sharing Redis pub/sub; ``prefix`` names this instance's
    channels (pub/sub channels are shared by every database of a Redis server).
"""

from __future__ import annotations

from causette.bus.local import LocalBus
from causette.core.ports import Bus
from causette.errors import ConfigError


async def open_bus(url: str) -> Bus:
    """The bus for ``url``. A Redis bus must answer now, else ``BusUnreachable`` (naming where
    it was looked for, never the password)."""
    if url.startswith("local:"):
        return LocalBus()
    if url.startswith(("redis:", "rediss:")):
        from causette.bus.redis import RedisBus

        bus = RedisBus(url)
        try:
            await bus.ping()
        except BaseException:
            await bus.close()
            raise
        return bus
    raise ConfigError(detail=f"unsupported bus URL scheme: {url.split(':', 1)[0]!r}")


__all__ = ["LocalBus", "open_bus"]
