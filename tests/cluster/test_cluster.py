"""Three real nodes sharing PostgreSQL and Redis: what people see across nodes, and what
survives a node, Redis or PostgreSQL failing. Each test has its own database and prefix."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.cluster.conftest import (
    FAST,
    Cluster,
    ClusterClient,
    ClusterFactory,
    NodeProcess,
    check_ledger,
)
from tests.support import services

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.timeout(120),
]

GENERAL = "r:general"
WAIT = 10.0  # seconds to wait for something that crosses nodes


def names(event: dict[str, object]) -> set[str]:
    items = event.get("items") or []
    assert isinstance(items, list)
    return {p["name"] for p in items}


async def people(client: ClusterClient, **query: object) -> dict[str, object]:
    await client.send({"type": "people", "scope": "site", "ref": "people", **query})
    return await client.expect("people", WAIT)


async def until_people(client: ClusterClient, expected: set[str]) -> None:
    """Ask for the site list until it is ``expected`` (each answer is an event)."""
    seen: set[str] = set()
    for _ in range(round(WAIT / 0.1)):
        seen = names(await people(client))
        if seen == expected:
            return
        await asyncio.sleep(0.1)  # then asks again
    raise AssertionError(f"people list {sorted(seen)}, expected {sorted(expected)}")


async def until_counts(client: ClusterClient, check: Callable[[dict[str, Any]], bool]) -> None:
    """Until the counts the client shows pass ``check``: those of its latest ``welcome``, updated
    by every ``counts`` since (each holds only the rooms that changed)."""
    async with asyncio.timeout(WAIT):
        while True:
            shown: dict[str, Any] = {"rooms": {}, "online": None}
            for e in client.events:
                if e["type"] == "welcome":
                    shown = {
                        # (zeros are left out of events)
                        "rooms": {r["slug"]: r.get("count", 0) for r in e["rooms"]},
                        "online": e.get("online", 0),
                    }
                elif e["type"] == "counts":
                    shown["rooms"].update(e.get("rooms", {}))
                    shown["online"] = e.get("online", 0)
            if shown["online"] is not None and check(shown):
                return
            await client.expect("counts", WAIT)


async def everyone_in(cluster: Cluster, *specs: tuple[str, int]) -> list[ClusterClient]:
    clients = []
    for name, node in specs:
        c = await cluster.visitor(name, node)
        await c.join("general")
        clients.append(c)
    return clients


# --- across nodes ------------------------------------------------------------------------------


async def test_room_and_private_messages_cross_nodes(
    database: str, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database)
    alice, bruno, chloe = await everyone_in(cluster, ("Alice", 0), ("Bruno", 1), ("Chloe", 2))
    await alice.say(GENERAL, "Bonjour à tous")
    for c in (alice, bruno, chloe):
        msg = await c.expect_msg(GENERAL, lambda e: e["text"] == "Bonjour à tous", WAIT)
        assert msg["name"] == "Alice"
    # A private message from node 1 to node 2: the conversation opens on both.
    stream = "d:" + ":".join(sorted([bruno.me["id"], chloe.me["id"]]))
    ack = await bruno.say(stream, "Salut Chloé")
    assert ack["type"] == "ack"
    conv = await chloe.expect("conv", WAIT)
    assert conv["conv"]["other"]["name"] == "Bruno"
    sync = await chloe.expect(lambda e: e["type"] == "sync" and e["stream"] == stream, WAIT)
    assert [i["text"] for i in sync["items"]] == ["Salut Chloé"]
    await chloe.say(stream, "Salut Bruno")
    await bruno.expect_msg(stream, lambda e: e["text"] == "Salut Bruno", WAIT)
    # Blocks hold across nodes (they are in the database).
    await alice.send({"type": "block", "person": chloe.me["id"]})
    await alice.expect("blocks", WAIT)
    lid = chloe.local_id()
    await chloe.send(
        {
            "type": "send",
            "stream": "d:" + ":".join(sorted([alice.me["id"], chloe.me["id"]])),
            "text": "?",
            "local_id": lid,
        }
    )
    refused = await chloe.answer_to(lid, WAIT)
    assert refused["code"] == "pm_refused"


async def test_presence_and_counts_converge_including_a_late_node(
    database: str, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database)
    alice, bruno, chloe = await everyone_in(cluster, ("Alice", 0), ("Bruno", 1), ("Chloe", 2))
    everyone = {"Alice", "Bruno", "Chloe"}
    for c in (alice, bruno, chloe):
        await until_people(c, everyone)
        await until_counts(c, lambda e: e["online"] == 3)
    # A fourth node starts while people are connected: it learns them from snapshots.
    late = await cluster.add_node()
    dora = await cluster.visitor("Dora", late.index)
    await until_people(dora, everyone | {"Dora"})
    await dora.join("general")
    await until_counts(dora, lambda e: e["rooms"]["general"] == 4)
    # Someone leaving on one node disappears everywhere after the grace.
    await chloe.close()
    for c in (alice, bruno, dora):
        await c.expect(
            lambda e: e["type"] == "members" and chloe.me["id"] in e.get("remove", []), WAIT
        )
    await until_people(dora, {"Alice", "Bruno", "Dora"})


async def test_one_pseudonym_raced_on_every_node_is_given_once(
    database: str, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database)
    body = {
        "pseudonym": "Camille",
        "gender": "f",
        "age": 30,
        "postal_code": "75011",
        "accept_rules": True,
    }

    async def enter(url: str) -> int:
        async with (
            aiohttp.ClientSession() as http,
            http.post(url + "/api/session", json=body, headers={"Origin": url}) as resp,
        ):
            return resp.status

    statuses = await asyncio.gather(*(enter(n.url) for n in cluster.nodes for _ in range(4)))
    assert sorted(statuses) == [201] + [409] * 11


async def test_quit_on_one_node_closes_the_socket_held_by_another(
    database: str, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database)
    alice, bruno = await everyone_in(cluster, ("Alice", 1), ("Bruno", 2))
    # "Quitter" reaches node 0 while Alice's WebSocket is on node 1.
    alice.use(cluster.nodes[0].url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await alice.quit() == 204
    bye = await alice.expect("bye", 1.0)
    assert bye["code"] == "quit"
    await alice.wait_closed(1.0)
    assert loop.time() - started < 1.0
    await bruno.expect(
        lambda e: e["type"] == "members" and alice.me["id"] in e.get("remove", []), WAIT
    )
    # The pseudonym is free again, on any node.
    again = cluster.client(2)
    await again.enter("Alice")


# --- failures ----------------------------------------------------------------------------------


class Progress:
    """Counts of what the senders met, with waits on them (the test never reads a client's
    events while its sender does)."""

    def __init__(self) -> None:
        self.acks = 0
        self.errors = 0
        self._changed = asyncio.Condition()

    async def bump(self, ack: bool) -> None:
        async with self._changed:
            if ack:
                self.acks += 1
            else:
                self.errors += 1
            self._changed.notify_all()

    async def until(self, check: Callable[[Progress], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: check(self))


async def load(
    clients: list[ClusterClient], per_client: int, progress: Progress, tag: str = "c"
) -> None:
    """Each client sends ``per_client`` messages to the room, retrying until acknowledged."""

    async def run(c: ClusterClient, index: int) -> None:
        async def error() -> None:
            await progress.bump(ack=False)

        for k in range(per_client):
            await c.send_reliably(GENERAL, f"m{index}-{k}", f"{tag}{index}-{k}", error)
            await progress.bump(ack=True)
            await asyncio.sleep(0.01)  # a person types; keeps the failure mid-load

    await asyncio.gather(*(run(c, i) for i, c in enumerate(clients)))


async def settle(clients: list[ClusterClient]) -> None:
    """Every client has everything that was acknowledged (waits for the events)."""
    acked = {mid for c in clients for _, mid in c.ledger.acked.values()}
    async with asyncio.timeout(20):
        for c in clients:
            while not acked <= set(c.seen(GENERAL)):
                if c.closed.is_set():
                    await c.resume()
                await c.expect_msg(GENERAL, timeout=20)


async def test_a_killed_node_loses_no_acknowledged_message(
    database: str, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database)
    clients = await everyone_in(cluster, *((f"P{i}", i % 3) for i in range(6)))
    # Someone on the doomed node who will not come back, and a watcher of the site list.
    ghost = await cluster.visitor("Ghost", 1)
    await ghost.join("general")
    watcher = clients[0]
    await until_people(watcher, {c.me["name"] for c in [*clients, ghost]})
    progress = Progress()
    sending = asyncio.ensure_future(load(clients, 40, progress))
    await progress.until(lambda p: p.acks >= 80)
    cluster.nodes[1].kill()
    await sending
    await settle(clients)
    assert check_ledger(clients, GENERAL) == 240
    assert sum(c.moves for c in clients) == 2  # the two clients of node 1 moved
    # The ghost is released after the grace; those who moved stay listed.
    await watcher.expect(
        lambda e: e["type"] == "members" and ghost.me["id"] in e.get("remove", []), WAIT
    )
    await until_people(watcher, {c.me["name"] for c in clients})


async def test_redis_restarted_loses_no_acknowledged_message(
    database: str, private_redis: services.PrivateRedis, make_cluster: ClusterFactory
) -> None:
    cluster = await make_cluster(database_url=database, bus_url=private_redis.url)
    clients = await everyone_in(cluster, *((f"P{i}", i % 3) for i in range(6)))
    progress = Progress()
    sending = asyncio.ensure_future(load(clients, 30, progress))
    await progress.until(lambda p: p.acks >= 60)
    private_redis.stop()
    # Sends go on while Redis is away: stored and acknowledged (PostgreSQL is fine) ...
    before = progress.acks
    await progress.until(lambda p: p.acks >= before + 12)
    private_redis.start()
    await sending
    # ... and reach everyone once the nodes resubscribed and caught up from the store.
    await settle(clients)
    assert check_ledger(clients, GENERAL) == 180
    for c in clients:
        assert not c.closed.is_set()  # nobody had to reconnect
    await until_people(clients[0], {c.me["name"] for c in clients})


async def test_redis_connections_killed_lose_no_acknowledged_message(
    database: str, make_cluster: ClusterFactory
) -> None:
    from redis.asyncio import Redis

    prefix = services.new_prefix()
    cluster = await make_cluster(
        database_url=database, bus_url=f"{services.REDIS_URL}?prefix={prefix}"
    )
    clients = await everyone_in(cluster, *((f"P{i}", i % 3) for i in range(6)))
    progress = Progress()
    sending = asyncio.ensure_future(load(clients, 30, progress))
    await progress.until(lambda p: p.acks >= 60)
    from causette.bus.redis import _client_name

    admin = Redis.from_url(services.REDIS_URL)
    try:
        ours = [c["id"] for c in await admin.client_list() if c.get("name") == _client_name(prefix)]
        assert len(ours) >= 6  # a subscriber and a publisher per node
        for client_id in ours:
            await admin.client_kill_filter(_id=client_id)
    finally:
        await admin.aclose()
    await sending
    await settle(clients)
    assert check_ledger(clients, GENERAL) == 180


async def test_postgres_restarted_fails_sends_retryably_and_loses_nothing(
    private_postgres: services.PrivatePostgres, make_cluster: ClusterFactory
) -> None:
    from causette.store import migrate

    await migrate(private_postgres.url)
    cluster = await make_cluster(database_url=private_postgres.url)
    clients = await everyone_in(cluster, *((f"P{i}", i % 3) for i in range(3)))
    await load(clients, 5, Progress())
    private_postgres.stop()
    # While it is down: a send fails fast with a retryable error, health says so.
    lid = clients[0].local_id()
    await clients[0].send({"type": "send", "stream": GENERAL, "text": "x", "local_id": lid})
    failed = await clients[0].answer_to(lid, 6.0)
    assert (failed["type"], failed["code"], failed["retryable"]) == (
        "error",
        "store_unavailable",
        True,
    )
    assert await cluster.health(cluster.nodes[0]) == 503
    progress = Progress()
    sending = asyncio.ensure_future(load(clients, 10, progress, tag="d"))
    await progress.until(lambda p: p.errors >= 3)
    private_postgres.start()
    await sending  # the retries went through once it was back
    await clients[0].send_reliably(GENERAL, "x", lid)
    await settle(clients)
    assert check_ledger(clients, GENERAL) == 46
    assert [await cluster.health(n) for n in cluster.nodes] == [200, 200, 200]


# --- refusing to start -------------------------------------------------------------------------


def serve(tmp_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUSETTE_")}
    env.update(FAST)
    env.update(tmp_env)
    return subprocess.run(
        [sys.executable, "-m", "causette", "serve", "--port", str(services.free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("what", "env", "status", "says"),
    [
        (
            "postgres",
            {"CAUSETTE_SERVER__DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/x"},
            69,
            "Cannot reach the database (127.0.0.1:1/x)",
        ),
        (
            "redis",
            {"CAUSETTE_SERVER__BUS_URL": "redis://:pw@127.0.0.1:1/0"},
            69,
            "Cannot reach the message bus (Redis) (127.0.0.1:1/0)",
        ),
    ],
)
def test_unreachable_services_at_start_are_one_clear_line(
    what: str, env: dict[str, str], status: int, says: str, tmp_path: object
) -> None:
    env = {**env, "CAUSETTE_SERVER__DATA_DIR": str(tmp_path)}
    result = serve(env)
    assert result.returncode == status
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert "pw" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_a_schema_behind_is_refused_with_what_to_do(need_services: None) -> None:
    name = await services.create_database()
    try:
        result = await asyncio.to_thread(
            serve, {"CAUSETTE_SERVER__DATABASE_URL": services.database_url(name)}
        )
        assert result.returncode == 2
        assert "causette migrate" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        await services.drop_database(name)


_ = NodeProcess  # re-exported for readers of this file
