"""The in-process bus for a single node: publishing delivers at once to this node."""

from __future__ import annotations

from causette.core.ports import Deliver, Envelope, Resync


class LocalBus:
    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()

    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        # Nothing is ever lost in process: ``resync`` is never needed.
        self._deliver = deliver

    async def close(self) -> None:
        self._deliver = None
        self._channels.clear()

    def publish(self, envelope: Envelope) -> None:
        deliver = self._deliver
        if deliver is not None and envelope.channel in self._channels:
            deliver(envelope)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    def reconnect(self) -> None:
        pass  # in process: nothing to lose
