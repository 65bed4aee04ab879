"""What only the SQL store on PostgreSQL does: schema checks, racing nodes, failures.

Each test has a database of its own (``tests.support.services``)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from causette.core.models import Gender, NewItem, PmPolicy, Profile, Session
from causette.errors import PseudonymTaken, StoreUnavailable
from causette.store import (
    SchemaBehind,
    SqlStore,
    StoreUnreachable,
    head_revision,
    migrate,
    open_store,
    schema_status,
)
from causette.store.sql.tables import metadata
from tests.support import services

pytestmark = pytest.mark.postgres

T0 = 1_767_225_600_000
STREAM = "r:general"


@pytest.fixture
async def empty_db() -> AsyncIterator[str]:
    """The URL of a new, empty database (no schema at all)."""
    services.need_postgres()
    name = await services.create_database()
    try:
        yield services.database_url(name)
    finally:
        await services.drop_database(name)


def session(person_id: str, key: str) -> Session:
    return Session(
        id=person_id,
        token_hash=hashlib.sha256(person_id.encode()).digest(),
        profile=Profile(person_id, key, Gender.OTHER, 30, "Lyon", "69", "84"),
        pseudonym_key=key,
        postal_code="69001",
        commune_code="69381",
        lang="fr",
        pm_policy=PmPolicy.EVERYONE,
        created_at=T0,
        last_seen=T0,
    )


async def test_an_empty_database_is_refused_until_migrated(empty_db: str) -> None:
    with pytest.raises(SchemaBehind) as refused:
        await open_store(empty_db)
    assert "causette migrate" in refused.value.message("en")
    assert await schema_status(empty_db) == (None, head_revision())
    assert await migrate(empty_db) == head_revision()
    store = await open_store(empty_db)
    await store.close()


async def test_concurrent_migrations_do_not_trip_over_each_other(empty_db: str) -> None:
    # Several nodes' operators running ``causette migrate`` at once: an advisory lock
    # serialises them, and all end at head.
    revisions = await asyncio.gather(*(migrate(empty_db) for _ in range(3)))
    assert revisions == [head_revision()] * 3


async def test_migrations_match_tables(empty_db: str) -> None:
    await migrate(empty_db)
    store = await open_store(empty_db)
    assert isinstance(store, SqlStore)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(differences) == []
            predicate = (
                await conn.execute(
                    text(
                        "SELECT indexdef FROM pg_indexes "
                        "WHERE indexname = 'uq_sessions_live_pseudonym_key'"
                    )
                )
            ).scalar_one()
            assert "WHERE (ended_at IS NULL)" in predicate
    finally:
        await store.close()


async def test_two_nodes_racing_for_one_pseudonym_admit_one(empty_db: str) -> None:
    await migrate(empty_db)
    nodes = [await open_store(empty_db) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                node.create_session(session(f"p{i}", "camille"))
                for i, node in enumerate(nodes)
                for _ in range(1)
            ),
            return_exceptions=True,
        )
        assert sum(r is None for r in results) == 1
        assert all(isinstance(r, PseudonymTaken) for r in results if r is not None)
        winner = next(f"p{i}" for i, r in enumerate(results) if r is None)
        # Once the winner's session ends, the name is free again.
        assert await nodes[0].end_session(winner, T0 + 1)
        await nodes[1].create_session(session("p9", "camille"))
    finally:
        for node in nodes:
            await node.close()


async def test_appends_from_several_nodes_get_each_seq_once(empty_db: str) -> None:
    await migrate(empty_db)
    nodes = [await open_store(empty_db) for _ in range(3)]
    try:
        await nodes[0].ensure_stream(STREAM, T0)

        def new(i: int) -> NewItem:
            return NewItem(STREAM, f"m{i}", "text", f"a{i % 5}", "A", "x", T0, T0 + 60_000, f"L{i}")

        results = await asyncio.gather(
            *(nodes[i % 3].append(new(i)) for i in range(90)),
            *(nodes[(i + 1) % 3].append(new(i)) for i in range(90)),  # the same sends, retried
        )
        firsts = [m for m, dup in results if not dup]
        assert sorted(m.seq for m in firsts) == list(range(1, 91))
        assert {m.id for m, _ in results} == {f"m{i}" for i in range(90)}
    finally:
        for node in nodes:
            await node.close()


async def test_read_marks_follow_appends_retried_from_several_nodes(empty_db: str) -> None:
    """The same sends from several nodes at once: groups conflict and fall back to one append
    at a time; each author's read mark still ends at their own last message."""
    await migrate(empty_db)
    nodes = [await open_store(empty_db) for _ in range(3)]
    try:
        stream = "d:a0:a1"
        await nodes[0].create_session(session("a0", "ana"))
        await nodes[0].create_session(session("a1", "bea"))
        await nodes[0].open_conversation(stream, "a0", "a1", T0)

        def new(i: int) -> NewItem:
            author, other = f"a{i % 2}", f"a{(i + 1) % 2}"
            return NewItem(
                stream, f"m{i}", "text", author, "A", "x", T0, T0 + 60_000, f"L{i}", True, other
            )

        results = await asyncio.gather(
            *(nodes[i % 3].append(new(i)) for i in range(60)),
            *(nodes[(i + 1) % 3].append(new(i)) for i in range(60)),
        )
        last = {"a0": 0, "a1": 0}
        for message, _ in results:
            last[message.author] = max(last[message.author], message.seq)
        for author, seq in last.items():
            state = await nodes[2].get_conversation(author, stream)
            assert state is not None
            assert state.read_seq == seq
    finally:
        for node in nodes:
            await node.close()


async def test_an_unreachable_server_is_named_fast_and_without_password() -> None:
    # A port nothing listens on (the server's, plus one).
    url = "postgresql://causette:s3cret@127.0.0.1:1/causette"
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(StoreUnreachable) as failed:
        await open_store(url)
    assert loop.time() - started < 5
    message = failed.value.message("en")
    assert "127.0.0.1:1/causette" in message
    assert "s3cret" not in message


async def test_a_restart_fails_requests_fast_as_unavailable_then_recovers() -> None:
    """PostgreSQL restarted under a node: while it is down, requests fail fast with
    ``StoreUnavailable`` (retryable); once it is back the store serves again by itself, with
    nothing committed lost."""
    from tests.conftest import require

    require(
        services.private_postgres_available(),
        "a private PostgreSQL server",
        services.PRIVATE_POSTGRES_HOW,
    )
    server = services.PrivatePostgres()
    try:
        server.start()
        await migrate(server.url)
        store = await open_store(server.url)
        try:
            await store.ensure_stream(STREAM, T0)
            first, _ = await store.append(new_item("m1", "L1"))
            server.stop()
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                await store.append(new_item("m2", "L2"))
            with pytest.raises(StoreUnavailable):
                await store.ping()
            assert loop.time() - started < 5
            server.start()
            again, dup = await store.append(new_item("m2", "L2"))
            assert (again.seq, dup) == (2, False)
            assert [m.id for m in await store.read(STREAM, 0, 10)] == [first.id, "m2"]
        finally:
            await store.close()
    finally:
        server.close()


def new_item(message_id: str, local_id: str) -> NewItem:
    return NewItem(STREAM, message_id, "text", "a", "A", "x", T0, T0 + 60_000, local_id)
