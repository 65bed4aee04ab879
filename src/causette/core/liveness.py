"""Which nodes are alive: heartbeats seen on the ``presence`` channel, and who cleans up after
a node that stopped beating. Pure: times are given, nothing is awaited.

Every node publishes a ``Beat`` every ``interval``; a node not heard from for ``timeout`` is
dead. The people it held (``Directory.held_by``) are then released by one node only, the
*janitor*: the live node with the smallest id, so that their departure is announced once. If
the janitor dies too, the next smallest takes over when it notices. See
``docs/decisions/0004-cluster-presence.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class NodeState:
    last_seen: int  # ms: the last beat, or any operation, from the node
    dead_since: int = 0  # ms: when it was declared dead (0: alive)


class NodeTable:
    def __init__(self, me: str, timeout_ms: int) -> None:
        self.me = me
        self.timeout_ms = timeout_ms
        self._nodes: dict[str, NodeState] = {}

    def seen(self, node: str, now: int) -> bool:
        """A sign of life from ``node``. True when it was unknown or declared dead: what we
        know of its people may be out of date (ask for its snapshot)."""
        if not node or node == self.me:
            return False
        state = self._nodes.get(node)
        if state is None:
            self._nodes[node] = NodeState(now)
            return True
        revived = state.dead_since != 0
        state.last_seen = max(state.last_seen, now)
        state.dead_since = 0
        return revived

    def newly_dead(self, now: int) -> list[tuple[str, int]]:
        """Nodes silent for longer than the timeout and not yet declared dead, with the time
        they were last heard from (about when their connections dropped)."""
        found = []
        for node, state in self._nodes.items():
            if not state.dead_since and now - state.last_seen > self.timeout_ms:
                state.dead_since = now
                found.append((node, state.last_seen))
        return found

    def alive(self) -> list[str]:
        """Live nodes, this one included, in id order."""
        return sorted([self.me, *(n for n, s in self._nodes.items() if not s.dead_since)])

    def is_janitor(self) -> bool:
        return self.alive()[0] == self.me

    def forget(self, node: str) -> None:
        """Drop a dead node (once its people are released)."""
        state = self._nodes.get(node)
        if state is not None and state.dead_since:
            del self._nodes[node]

    def is_dead(self, node: str) -> bool:
        state = self._nodes.get(node)
        return state is not None and state.dead_since != 0


class Echo:
    """Whether this node still hears the bus: it hears its own beats on the ``presence`` channel
    like everyone else's. A subscriber connection can go silent without an error (a half-open
    connection after a broker restart); the bus cannot tell, the missing echo can."""

    def __init__(self, missed_limit: int = 3) -> None:
        self.missed_limit = missed_limit
        self.missed = 0

    def beat_sent(self) -> bool:
        """A beat goes out; True when this many sent since the last one heard means deaf
        (the count starts again)."""
        if self.missed >= self.missed_limit:
            self.missed = 0
            return True
        self.missed += 1
        return False

    def beat_heard(self) -> None:
        self.missed = 0
