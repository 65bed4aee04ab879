"""Several real ``causette serve`` processes on loopback ports, sharing a PostgreSQL database
(one per test, copied from the run's migrated template) and Redis (a channel prefix per test,
or a private Redis server for tests that restart it).

Clients are ``ClusterClient``s: protocol clients that can move to another node, resume with
their cursors and re-send what was not acknowledged, keeping a ledger for the final checks.
Waiting is for events or for ``/healthz`` with a deadline, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import require
from tests.support import services
from tests.support.client import Event, ProtocolClient
from tests.support.config import RELAXED_SAFETY

#: Short times so that failures play out in seconds.
FAST = {
    "CAUSETTE_SESSIONS__OFFLINE_GRACE_SECONDS": "2",
    "CAUSETTE_SERVER__NODE_HEARTBEAT_SECONDS": "0.25",
    "CAUSETTE_SERVER__NODE_TIMEOUT_SECONDS": "1.0",
    "CAUSETTE_SERVER__SHUTDOWN_GRACE_SECONDS": "0.5",
    "CAUSETTE_SERVER__LOG_LEVEL": "WARNING",
    "CAUSETTE_LIMITS__COMMANDS_PER_SECOND": "200",
    "CAUSETTE_LIMITS__COMMANDS_BURST": "400",
    # Several nodes must share the instance secret: network hashes and ban cookies made on one
    # node are checked on another.
    "CAUSETTE_SAFETY__SECRET_KEY": "c0ffee" * 10 + "c0de",
    # The automatic protections are tested on their own; here every client comes from 127.0.0.1.
    **{f"CAUSETTE_SAFETY__{key.upper()}": str(value) for key, value in RELAXED_SAFETY.items()},
}
START_TIMEOUT = 30.0


class NodeProcess:
    def __init__(self, index: int, env: dict[str, str], root: Path) -> None:
        self.index = index
        self.port = services.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.root = root
        self.log = root / f"node{index}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        data = self.root / f"node{self.index}"
        command = [sys.executable, "-m", "causette", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(data)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    def __init__(self, root: Path, database_url: str, bus_url: str, size: int) -> None:
        self.root = root
        self.database_url = database_url
        self.bus_url = bus_url
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAUSETTE_")}
        env.update(FAST)
        env["CAUSETTE_SERVER__DATABASE_URL"] = database_url
        env["CAUSETTE_SERVER__BUS_URL"] = bus_url
        self.env = env
        self.nodes = [NodeProcess(i, env, root) for i in range(size)]
        self.clients: list[ClusterClient] = []

    async def start(self, *indexes: int) -> None:
        chosen = [self.nodes[i] for i in indexes] if indexes else self.nodes
        for node in chosen:
            node.start()
        await asyncio.gather(*(self.wait_healthy(node) for node in chosen))

    async def add_node(self) -> NodeProcess:
        node = NodeProcess(len(self.nodes), self.env, self.root)
        self.nodes.append(node)
        await self.start(node.index)
        return node

    async def wait_healthy(self, node: NodeProcess, timeout: float = START_TIMEOUT) -> None:
        """Poll ``/healthz`` until it answers 200 (the process is up and its store answers)."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if not node.alive:
                    raise AssertionError(f"node {node.index} exited: {self.log_of(node)}")
                try:
                    async with http.get(node.url + "/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"node {node.index} not healthy: {self.log_of(node)}")
                await asyncio.sleep(0.05)

    async def health(self, node: NodeProcess) -> int:
        async with aiohttp.ClientSession() as http, http.get(node.url + "/healthz") as resp:
            return resp.status

    def log_of(self, node: NodeProcess) -> str:
        return node.log.read_text(errors="replace")[-3000:] if node.log.exists() else ""

    def alive_urls(self) -> list[str]:
        return [n.url for n in self.nodes if n.alive]

    def client(self, node: int) -> ClusterClient:
        c = ClusterClient(self.nodes[node].url, self.alive_urls)
        self.clients.append(c)
        return c

    async def visitor(self, name: str, node: int, **profile: Any) -> ClusterClient:
        c = self.client(node)
        await c.enter(name, **profile)
        await c.connect()
        return c

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(self.log_of(n) for n in self.nodes)


class Disconnected(Exception):
    pass


@dataclass
class Ledger:
    """What a client sent and got acknowledged: local_id -> (stream, message id)."""

    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # codes of retryable errors met


class ClusterClient(ProtocolClient):
    """A protocol client that survives its node: it moves to another one and resumes."""

    def __init__(self, base_url: str, nodes: Callable[[], list[str]]) -> None:
        super().__init__(base_url)
        self.nodes = nodes
        self.ledger = Ledger()
        self.moves = 0

    def use(self, url: str) -> None:
        self.base_url = url
        self.origin = url

    async def resume(self) -> None:
        """Reconnect (to this node if it is alive, else the next alive one) with cursors."""
        await self.disconnect()
        alive = self.nodes()
        if self.base_url not in alive:
            self.use(alive[(self.moves + len(alive)) % len(alive)])
            self.moves += 1
        deadline = time.monotonic() + 20
        while True:
            try:
                await self.connect()
                return
            except (aiohttp.ClientError, TimeoutError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                await self.disconnect()
                await asyncio.sleep(0.2)  # the client's reconnection backoff

    async def answer(self, local_id: str, timeout: float) -> Event:
        """The ack or error for ``local_id``; ``Disconnected`` if the connection ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.answer_to(local_id, timeout=0.2)
            except TimeoutError:
                if self.closed.is_set():
                    raise Disconnected() from None
                if time.monotonic() > deadline:
                    raise

    async def send_reliably(
        self,
        stream: str,
        text: str,
        local_id: str,
        on_error: Callable[[], Awaitable[None]] | None = None,
    ) -> Event:
        """Send until acknowledged, as the page does: after a reconnection or a retryable
        error, the same ``local_id`` again (stored once)."""
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, f"{local_id} never acknowledged"
            try:
                if self.closed.is_set():
                    raise Disconnected()
                await self.send(
                    {"type": "send", "stream": stream, "text": text, "local_id": local_id}
                )
                answer = await self.answer(local_id, timeout=15)
            except (Disconnected, ConnectionError, aiohttp.ClientError):
                await self.resume()
                continue
            if answer["type"] == "ack":
                self.ledger.acked[local_id] = (stream, answer["id"])
                return answer
            assert answer.get("retryable"), answer
            self.ledger.errors.append(answer["code"])
            if on_error is not None:
                await on_error()
            await asyncio.sleep(0.2)  # the person presses "retry"

    def seen(self, stream: str) -> list[str]:
        """Ids of the stream's items this client was given, in order (syncs and msgs)."""
        out: list[str] = []
        for event in self.events:
            if event["type"] == "sync" and event["stream"] == stream:
                out.extend(item["id"] for item in event["items"])
            elif event["type"] == "msg" and event["stream"] == stream:
                out.append(event["id"])
        return out


def check_ledger(clients: list[ClusterClient], stream: str) -> int:
    """Every acknowledged message reached every client exactly once (a ``recovered: false``
    sync may show again what was shown before: it replaces the stream), and seqs are
    contiguous (checked as events arrive by the protocol client). Returns how many."""
    acked = {mid for c in clients for s, mid in c.ledger.acked.values() if s == stream}
    for c in clients:
        seen = c.seen(stream)
        missing = acked - set(seen)
        assert not missing, f"{c.me.get('name')}: {len(missing)} acknowledged never delivered"
        windows = _windows(c, stream)
        for window in windows:
            dupes = {m for m in window if window.count(m) > 1}
            assert not dupes, f"{c.me.get('name')}: delivered twice: {sorted(dupes)[:5]}"
    return len(acked)


def _windows(c: ClusterClient, stream: str) -> list[list[str]]:
    """Delivered ids split where a ``recovered: false`` sync restarted the stream."""
    windows: list[list[str]] = [[]]
    for event in c.events:
        if event.get("stream") != stream:
            continue
        if event["type"] == "sync":
            if not event["recovered"]:
                windows.append([])
            windows[-1].extend(item["id"] for item in event["items"])
        elif event["type"] == "msg":
            windows[-1].append(event["id"])
    return windows


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def need_services() -> None:
    services.need_postgres()
    services.need_redis()


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A database of its own at the schema's head, for one cluster."""
    services.need_postgres()
    name = await services.create_database(template=await services.postgres_template())
    try:
        yield services.database_url(name)
    finally:
        await services.drop_database(name)


ClusterFactory = Callable[..., Any]


@pytest.fixture
async def make_cluster(tmp_path: Path, need_services: None) -> AsyncIterator[ClusterFactory]:
    made: list[Cluster] = []

    async def make(
        *, database_url: str, bus_url: str | None = None, size: int = 3, start: bool = True
    ) -> Cluster:
        bus = bus_url or f"{services.REDIS_URL}?prefix={services.new_prefix()}"
        cluster = Cluster(tmp_path, database_url, bus, size)
        made.append(cluster)
        if start:
            await cluster.start()
        return cluster

    yield make
    for cluster in made:
        await cluster.close()
        # Privacy: no pseudonym or message text in any node's log.
        logs = cluster.logs()
        for c in cluster.clients:
            name = c.me.get("name")
            if name:
                assert f'"{name}"' not in logs, f"pseudonym {name} in the logs"
        assert '"m0-1"' not in logs
        assert "Bonjour à tous" not in logs


@pytest.fixture
def private_redis() -> Iterator[services.PrivateRedis]:
    require(services.private_redis_available(), "redis-server", "apt-get install redis-server")
    import tempfile

    server = services.PrivateRedis(Path(tempfile.mkdtemp(prefix="causette-redis-")))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_postgres() -> Iterator[services.PrivatePostgres]:
    require(
        services.private_postgres_available(),
        "a private PostgreSQL server",
        services.PRIVATE_POSTGRES_HOW,
    )
    server = services.PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.close()
