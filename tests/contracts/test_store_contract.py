"""The ``Store`` contract: what the core relies on, checked on every adapter (see conftest)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import Callable
from typing import Protocol

import pytest

from causette.core.models import (
    ConversationState,
    Gender,
    Message,
    MessageKind,
    NewItem,
    PmPolicy,
    Profile,
    Session,
    dm_stream,
    room_stream,
)
from causette.core.ports import Store
from causette.errors import PersonUnknown, PseudonymTaken, StoreUnavailable, StreamUnknown
from causette.store import MemoryStore, SqlStore

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
HOUR = 60 * MINUTE
GENERAL = room_stream("general")


def make_session(
    person_id: str,
    *,
    key: str | None = None,
    at: int = T0,
    ended_at: int | None = None,
) -> Session:
    name = key or f"name-{person_id}"
    return Session(
        id=person_id,
        token_hash=hashlib.sha256(f"token-{person_id}".encode()).digest(),
        profile=Profile(
            id=person_id,
            name=name.capitalize(),
            gender=Gender.OTHER,
            age=34,
            commune="Lyon 1er Arrondissement",
            dep="69",
            region="84",
        ),
        pseudonym_key=name,
        postal_code="69001",
        commune_code="69381",
        lang="fr",
        pm_policy=PmPolicy.EVERYONE,
        created_at=at,
        last_seen=at,
        ended_at=ended_at,
    )


_ids = iter(range(1, 1_000_000))


def item(
    stream: str = GENERAL,
    *,
    author: str = "alice",
    text: str = "bonjour",
    ts: int = T0,
    lifetime: int = 3 * HOUR,
    local_id: str | None = None,
    kind: MessageKind = "text",
    read_by_author: bool = False,
    recipient: str | None = None,
) -> NewItem:
    return NewItem(
        stream=stream,
        id=f"m{next(_ids)}",
        kind=kind,
        author=author,
        name=author.capitalize(),
        text=text,
        ts=ts,
        expires_at=ts + lifetime,
        local_id=local_id,
        read_by_author=read_by_author,
        recipient=recipient,
    )


class ReadsUntil(Protocol):
    """``read`` with the ``now`` the adapters accept beyond the port (proposed for the port)."""

    async def read(
        self, stream: str, after_seq: int, limit: int, now: int | None = None
    ) -> list[Message]: ...


def reads_until(store: Store) -> ReadsUntil:
    assert isinstance(store, MemoryStore | SqlStore)
    return store


async def append_n(
    store: Store, n: int, stream: str = GENERAL, *, ts: int = T0, lifetime: int = 3 * HOUR
) -> list[int]:
    seqs = []
    for _ in range(n):
        message, _ = await store.append(item(stream, ts=ts, lifetime=lifetime))
        seqs.append(message.seq)
    return seqs


# --- sessions --------------------------------------------------------------------------------


async def test_ping_answers_while_open(store: Store) -> None:
    await store.ping()


async def test_a_closed_store_is_unavailable(store: Store) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.close()  # closing twice is harmless


async def test_created_session_reads_back_identical(store: Store) -> None:
    session = make_session("p1")
    await store.create_session(session)
    assert await store.get_session("p1") == session
    assert await store.session_by_token(session.token_hash) == session
    assert await store.get_session("nobody") is None
    assert await store.session_by_token(b"\x00" * 32) is None


async def test_ended_session_is_kept_but_no_longer_found_by_token(store: Store) -> None:
    session = make_session("p1")
    await store.create_session(session)
    assert await store.end_session("p1", T0 + 5) is True
    assert await store.end_session("p1", T0 + 9) is False  # only a live session ends
    assert await store.end_session("nobody", T0) is False
    assert await store.session_by_token(session.token_hash) is None
    assert await store.get_session("p1") == dataclasses.replace(session, ended_at=T0 + 5)


async def test_get_sessions_returns_live_and_ended_and_skips_unknown(
    store: Store,
) -> None:
    for person_id in ("p1", "p2", "p3"):
        await store.create_session(make_session(person_id))
    await store.end_session("p2", T0 + 1)
    found = await store.get_sessions(["p3", "p2", "unknown", "p3"])
    assert sorted(s.id for s in found) == ["p2", "p3"]
    assert await store.get_sessions([]) == []


async def test_get_sessions_handles_long_lists(store: Store) -> None:
    ids = [f"p{i}" for i in range(1200)]
    for person_id in ids[::100]:
        await store.create_session(make_session(person_id))
    found = await store.get_sessions(ids)
    assert sorted(s.id for s in found) == sorted(ids[::100])


async def test_a_live_pseudonym_cannot_be_taken_twice(store: Store) -> None:
    await store.create_session(make_session("p1", key="camille"))
    with pytest.raises(PseudonymTaken):
        await store.create_session(make_session("p2", key="camille"))
    assert await store.get_session("p2") is None


async def test_pseudonym_in_use_follows_live_sessions(store: Store) -> None:
    assert not await store.pseudonym_in_use("camille")
    await store.create_session(make_session("p1", key="camille"))
    assert await store.pseudonym_in_use("camille")
    assert not await store.pseudonym_in_use("camill")
    await store.end_session("p1", T0 + 1)
    assert not await store.pseudonym_in_use("camille")


async def test_ending_a_session_frees_its_pseudonym(store: Store) -> None:
    await store.create_session(make_session("p1", key="camille"))
    await store.end_session("p1", T0 + 1)
    await store.create_session(make_session("p2", key="camille"))
    # Several ended sessions may share it, and so may one live one.
    await store.end_session("p2", T0 + 2)
    await store.create_session(make_session("p3", key="camille"))
    live = await store.session_by_token(make_session("p3").token_hash)
    assert live is not None
    assert live.id == "p3"


async def test_racing_for_one_pseudonym_exactly_one_wins(store: Store) -> None:
    results = await asyncio.gather(
        *(store.create_session(make_session(f"p{i}", key="camille")) for i in range(20)),
        return_exceptions=True,
    )
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1
    assert all(isinstance(r, PseudonymTaken) for r in results if r is not None)
    found = await store.get_sessions([f"p{i}" for i in range(20)])
    assert [s.id for s in found] == [f"p{winners[0]}"]


async def test_touch_updates_last_seen_of_live_sessions_only(store: Store) -> None:
    for person_id in ("p1", "p2", "p3"):
        await store.create_session(make_session(person_id))
    await store.end_session("p3", T0 + 1)
    await store.touch_sessions(["p1", "p3", "unknown"], T0 + 100)
    await store.touch_sessions([], T0 + 200)
    seen = {s.id: s.last_seen for s in await store.get_sessions(["p1", "p2", "p3"])}
    assert seen == {"p1": T0 + 100, "p2": T0, "p3": T0}


async def test_idle_sessions_lists_live_sessions_unseen_since_oldest_first(
    store: Store,
) -> None:
    for i, person_id in enumerate(("p1", "p2", "p3", "p4", "p5")):
        await store.create_session(make_session(person_id, at=T0 + (5 - i) * MINUTE))
    await store.end_session("p5", T0 + 10 * MINUTE)  # the oldest, but ended
    cutoff = T0 + 4 * MINUTE  # p1 (5 min) and p2 (4 min) were seen recently enough
    assert await store.idle_sessions(cutoff, 10) == ["p4", "p3"]
    assert await store.idle_sessions(cutoff, 1) == ["p4"]
    assert await store.idle_sessions(cutoff, 0) == []
    await store.touch_sessions(["p4"], cutoff)
    assert await store.idle_sessions(cutoff, 10) == ["p3"]


async def test_set_prefs(store: Store) -> None:
    await store.create_session(make_session("p1"))
    await store.set_prefs("p1", PmPolicy.NOBODY, "en")
    session = await store.get_session("p1")
    assert session is not None
    assert (session.pm_policy, session.lang) == (PmPolicy.NOBODY, "en")
    await store.set_prefs("unknown", PmPolicy.NOBODY, "en")  # no error


# --- streams and messages --------------------------------------------------------------------


async def test_ensure_stream_creates_once_and_keeps_its_epoch(store: Store) -> None:
    assert await store.stream_head(GENERAL) is None
    head = await store.ensure_stream(GENERAL, T0)
    assert (head.stream, head.last_seq) == (GENERAL, 0)
    assert head.epoch
    await append_n(store, 2)
    again = await store.ensure_stream(GENERAL, T0 + 1)
    assert (again.epoch, again.last_seq) == (head.epoch, 2)
    assert await store.stream_head(GENERAL) == again
    other = await store.ensure_stream(room_stream("cuisine"), T0)
    assert other.epoch != head.epoch


async def test_racing_ensure_stream_agree_on_one_epoch(store: Store) -> None:
    heads = await asyncio.gather(*(store.ensure_stream(GENERAL, T0) for _ in range(10)))
    assert len({h.epoch for h in heads}) == 1


async def test_append_assigns_consecutive_seqs_per_stream(store: Store) -> None:
    cuisine = room_stream("cuisine")
    await store.ensure_stream(GENERAL, T0)
    await store.ensure_stream(cuisine, T0)
    first, duplicate = await store.append(item(text="salut", ts=T0 + 7, kind="text"))
    assert duplicate is False
    assert first.stream == GENERAL
    assert first.seq == 1
    assert (first.author, first.name, first.text, first.ts, first.kind) == (
        "alice",
        "Alice",
        "salut",
        T0 + 7,
        "text",
    )
    assert await append_n(store, 2) == [2, 3]
    assert await append_n(store, 2, cuisine) == [1, 2]
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 3
    assert [m.seq for m in await store.read(GENERAL, 0, 10)] == [1, 2, 3]
    assert (await store.read(GENERAL, 0, 1))[0] == first


async def test_append_to_a_missing_stream_is_refused(store: Store) -> None:
    with pytest.raises(StreamUnknown):
        await store.append(item(room_stream("nowhere")))
    assert await store.stream_head(room_stream("nowhere")) is None


async def test_a_retried_send_is_stored_once(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    original, duplicate = await store.append(item(local_id="L1", text="once"))
    assert duplicate is False
    retried, duplicate = await store.append(item(local_id="L1", text="once", ts=T0 + 5))
    assert duplicate is True
    assert retried == original
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 1  # the retry consumed no seq
    following, _ = await store.append(item(local_id="L2"))
    assert following.seq == 2
    assert [m.id for m in await store.read(GENERAL, 0, 10)] == [original.id, following.id]


async def test_the_same_local_id_from_another_author_is_another_message(
    store: Store,
) -> None:
    await store.ensure_stream(GENERAL, T0)
    mine, _ = await store.append(item(author="alice", local_id="L1"))
    theirs, duplicate = await store.append(item(author="bob", local_id="L1"))
    assert duplicate is False
    assert (mine.seq, theirs.seq) == (1, 2)
    assert theirs.author == "bob"


async def test_items_without_local_id_never_collide(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    results = [await store.append(item(author="system", kind="join")) for _ in range(3)]
    assert [(m.seq, dup) for m, dup in results] == [(1, False), (2, False), (3, False)]


async def test_concurrent_appends_get_each_seq_exactly_once(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    results = await asyncio.gather(
        *(store.append(item(author=f"p{i % 7}", local_id=f"L{i}")) for i in range(200))
    )
    assert sorted(m.seq for m, _ in results) == list(range(1, 201))
    assert not any(duplicate for _, duplicate in results)
    stored = await store.read(GENERAL, 0, 500)
    assert [m.seq for m in stored] == list(range(1, 201))
    assert {m.id for m in stored} == {m.id for m, _ in results}


async def test_appends_made_together_keep_their_order_and_fail_alone(store: Store) -> None:
    """Appends issued together (a group commit, where the store has one) get seqs in the order
    of the calls, per stream; one to a missing stream fails without taking the others along."""
    other = room_stream("cuisine")
    await store.ensure_stream(GENERAL, T0)
    await store.ensure_stream(other, T0)
    calls = [
        item(GENERAL, text="g1", local_id="a"),
        item(other, text="c1", local_id="b"),
        item(room_stream("nowhere"), text="lost", local_id="c"),
        item(GENERAL, text="g2", local_id="d"),
        item(other, text="c2"),
        item(GENERAL, text="g3", author="bob", local_id="a"),
    ]
    results = await asyncio.gather(*(store.append(c) for c in calls), return_exceptions=True)
    assert isinstance(results[2], StreamUnknown)
    stored = [r for r in results if not isinstance(r, BaseException)]
    assert [(m.stream, m.seq, m.text, dup) for m, dup in stored] == [
        (GENERAL, 1, "g1", False),
        (other, 1, "c1", False),
        (GENERAL, 2, "g2", False),
        (other, 2, "c2", False),
        (GENERAL, 3, "g3", False),
    ]
    assert [m.text for m in await store.read(GENERAL, 0, 10)] == ["g1", "g2", "g3"]


async def test_append_then_answers_later_in_call_order_with_errors_as_values(
    store: Store,
) -> None:
    """The message path's append: the callback is never run inside the call, gets what
    ``append`` would return (or raise), and appends of both kinds keep the order of the calls."""
    await store.ensure_stream(GENERAL, T0)
    answers: list[tuple[str, object]] = []
    all_in = asyncio.get_running_loop().create_future()

    def done(name: str) -> Callable[[object], None]:
        def record(result: object) -> None:
            answers.append((name, result))
            if len(answers) == 4 and not all_in.done():
                all_in.set_result(None)

        return record

    store.append_then(item(text="t1", local_id="a"), done("first"))
    store.append_then(item(room_stream("nowhere"), text="lost"), done("missing"))
    assert answers == []  # not called back inside append_then
    between = asyncio.create_task(store.append(item(text="t2")))
    await asyncio.sleep(0)  # the task starts: its append is called now
    store.append_then(item(text="t3", local_id="b"), done("third"))
    store.append_then(item(text="t1 again", local_id="a"), done("retry"))
    await all_in
    by_name = dict(answers)
    first, retry = by_name["first"], by_name["retry"]
    assert isinstance(first, tuple)
    assert isinstance(retry, tuple)
    assert (first[0].seq, first[0].text, first[1]) == (1, "t1", False)
    assert isinstance(by_name["missing"], StreamUnknown)
    assert (await between)[0].seq == 2
    third = by_name["third"]
    assert isinstance(third, tuple)
    assert third[0].seq == 3
    assert retry == (first[0], True)
    assert [m.text for m in await store.read(GENERAL, 0, 10)] == ["t1", "t2", "t3"]


async def test_concurrent_retries_of_one_send_store_it_once(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    await store.append(item())
    attempts = [item(local_id="L1") for _ in range(20)]
    results = await asyncio.gather(*(store.append(a) for a in attempts))
    assert [duplicate for _, duplicate in results].count(False) == 1
    assert len({m for m, _ in results}) == 1
    assert results[0][0].seq == 2
    after, _ = await store.append(item())
    assert after.seq == 3  # no seq was lost to the retries


async def test_cancelled_appends_leave_no_gap_and_the_store_usable(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    tasks = [asyncio.create_task(store.append(item(local_id=f"L{i}"))) for i in range(60)]
    for i, task in enumerate(tasks):
        if i % 3 == 0:
            await asyncio.sleep(0)
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    last, _ = await store.append(item())
    stored = await store.read(GENERAL, 0, 100)
    assert [m.seq for m in stored] == list(range(1, last.seq + 1))
    # A cancelled send may or may not have been stored; retried, it is stored once.
    retried = [await store.append(item(local_id=f"L{i}")) for i in range(60)]
    assert len({m.seq for m, _ in retried}) == 60
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 61


async def test_read_returns_items_after_a_seq_in_order_within_limit(
    store: Store,
) -> None:
    await store.ensure_stream(GENERAL, T0)
    await append_n(store, 10)
    assert [m.seq for m in await store.read(GENERAL, 0, 3)] == [1, 2, 3]
    assert [m.seq for m in await store.read(GENERAL, 7, 100)] == [8, 9, 10]
    assert await store.read(GENERAL, 10, 100) == []
    assert await store.read(GENERAL, 0, 0) == []
    assert await store.read(room_stream("nowhere"), 0, 10) == []


async def test_read_leaves_out_purged_and_with_now_expired_items(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    await append_n(store, 2, lifetime=MINUTE)  # 1, 2: expire at T0 + 1 min
    await append_n(store, 2, lifetime=HOUR)  # 3, 4
    reader = reads_until(store)
    assert [m.seq for m in await reader.read(GENERAL, 0, 10, now=T0 + MINUTE)] == [3, 4]
    assert [m.seq for m in await reader.read(GENERAL, 0, 10, now=T0)] == [1, 2, 3, 4]
    assert await store.purge_expired(T0 + MINUTE, 100) == 2
    assert [m.seq for m in await store.read(GENERAL, 0, 10)] == [3, 4]


async def test_latest_returns_the_newest_unexpired_items_in_order(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    await append_n(store, 3, lifetime=MINUTE)  # 1..3 expire first
    await append_n(store, 5, lifetime=HOUR)  # 4..8
    assert [m.seq for m in await store.latest(GENERAL, 3, T0)] == [6, 7, 8]
    assert [m.seq for m in await store.latest(GENERAL, 100, T0)] == list(range(1, 9))
    assert [m.seq for m in await store.latest(GENERAL, 100, T0 + MINUTE)] == [4, 5, 6, 7, 8]
    assert await store.latest(GENERAL, 100, T0 + HOUR) == []
    assert await store.latest(GENERAL, 0, T0) == []
    assert await store.latest(room_stream("nowhere"), 10, T0) == []


async def test_a_snapshot_is_the_head_with_latest_or_read(store: Store) -> None:
    assert await store.snapshot(GENERAL, None, 10, T0) == (None, [])
    assert await store.snapshot(GENERAL, 0, 10, T0) == (None, [])
    await store.ensure_stream(GENERAL, T0)
    await append_n(store, 3, lifetime=MINUTE)  # 1..3 expire first
    await append_n(store, 5, lifetime=HOUR)  # 4..8
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 8
    for after, limit, now in [(None, 3, T0), (None, 100, T0 + MINUTE), (None, 0, T0)]:
        expected = await store.latest(GENERAL, limit, now)
        assert await store.snapshot(GENERAL, after, limit, now) == (head, expected)
    # After a seq: read's answer, which leaves nothing out for being expired.
    for after, limit in [(0, 4), (6, 100), (8, 10), (2, 0)]:
        expected = await store.read(GENERAL, after, limit)
        assert await store.snapshot(GENERAL, after, limit, T0 + HOUR) == (head, expected)
    _, items = await store.snapshot(GENERAL, 0, 4, T0 + HOUR)
    assert [m.seq for m in items] == [1, 2, 3, 4]


async def test_first_seq_is_the_lowest_seq_still_stored(store: Store) -> None:
    assert await store.first_seq(GENERAL) is None
    await store.ensure_stream(GENERAL, T0)
    assert await store.first_seq(GENERAL) is None
    await append_n(store, 2, lifetime=MINUTE)
    await append_n(store, 2, lifetime=HOUR)
    assert await store.first_seq(GENERAL) == 1
    await store.purge_expired(T0 + MINUTE, 100)
    assert await store.first_seq(GENERAL) == 3
    await store.purge_expired(T0 + HOUR, 100)
    assert await store.first_seq(GENERAL) is None
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 4  # purging never rewinds the stream


async def test_purge_expired_removes_only_expired_items_up_to_the_limit(
    store: Store,
) -> None:
    cuisine = room_stream("cuisine")
    await store.ensure_stream(GENERAL, T0)
    await store.ensure_stream(cuisine, T0)
    await append_n(store, 3, lifetime=MINUTE)
    await append_n(store, 2, cuisine, lifetime=MINUTE)
    await append_n(store, 4, lifetime=HOUR)
    assert await store.purge_expired(T0 + MINUTE - 1, 100) == 0  # not yet
    assert await store.purge_expired(T0 + MINUTE, 2) == 2
    assert await store.purge_expired(T0 + MINUTE, 100) == 3
    assert await store.purge_expired(T0 + MINUTE, 100) == 0
    assert [m.seq for m in await store.read(GENERAL, 0, 100)] == [4, 5, 6, 7]
    assert await store.read(cuisine, 0, 100) == []


async def test_purge_expired_works_through_many_items(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    await append_n(store, 1300, lifetime=MINUTE)
    await append_n(store, 2, lifetime=HOUR)
    assert await store.purge_expired(T0 + MINUTE, 1100) == 1100
    assert await store.purge_expired(T0 + MINUTE, 1100) == 200
    assert await store.first_seq(GENERAL) == 1301


async def test_a_purged_local_id_can_be_used_again(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    await store.append(item(local_id="L1", lifetime=MINUTE))
    await store.purge_expired(T0 + MINUTE, 10)
    again, duplicate = await store.append(item(local_id="L1"))
    assert (again.seq, duplicate) == (2, False)


async def test_purge_ended_sessions_forgets_people_with_their_traces(
    store: Store,
) -> None:
    for person_id in ("gone", "recent", "live", "friend"):
        await store.create_session(make_session(person_id))
    await store.end_session("gone", T0 + MINUTE)
    await store.end_session("recent", T0 + 10 * MINUTE)
    for person_id in ("gone", "recent", "live", "friend"):
        await store.add_member("general", person_id, T0)
    await store.block("gone", "friend", T0)
    await store.block("live", "gone", T0)
    await store.block("live", "friend", T0)
    await store.open_conversation(dm_stream("gone", "friend"), "gone", "friend", T0)
    await store.open_conversation(dm_stream("live", "friend"), "live", "friend", T0)

    assert await store.purge_ended_sessions(T0 + 5 * MINUTE, 100) == 1

    assert await store.get_session("gone") is None
    assert await store.get_session("recent") is not None
    assert await store.rooms_of("gone") == []
    assert await store.members_of("general") == ["friend", "live", "recent"]
    assert await store.blocked_by("gone") == []
    assert await store.blocked_by("live") == ["friend"]
    assert await store.blockers_of("gone") == []
    assert await store.blockers_of("friend") == ["live"]
    assert await store.conversations_of("gone") == []
    # The other person's view of a conversation is theirs: it stays (until its messages go).
    assert [c.stream for c in await store.conversations_of("friend")] == sorted(
        [dm_stream("gone", "friend"), dm_stream("live", "friend")]
    )
    assert await store.purge_ended_sessions(T0 + 5 * MINUTE, 100) == 0


async def test_purge_ended_sessions_respects_the_limit(store: Store) -> None:
    for i in range(5):
        await store.create_session(make_session(f"p{i}"))
        await store.end_session(f"p{i}", T0 + i)
    assert await store.purge_ended_sessions(T0 + 10, 2) == 2
    assert await store.get_session("p0") is None  # the longest ended go first
    assert await store.get_session("p2") is not None
    assert await store.purge_ended_sessions(T0 + 10, 100) == 3


# --- rooms -----------------------------------------------------------------------------------


async def test_membership_add_and_remove_are_idempotent(store: Store) -> None:
    assert await store.add_member("general", "p1", T0) is True
    assert await store.add_member("general", "p1", T0 + 1) is False
    assert await store.members_of("general") == ["p1"]
    assert await store.remove_member("general", "p1") is True
    assert await store.remove_member("general", "p1") is False
    assert await store.remove_member("nowhere", "p1") is False
    assert await store.members_of("general") == []
    assert await store.rooms_of("p1") == []


async def test_rooms_of_keeps_the_joining_order(store: Store) -> None:
    await store.add_member("sport", "p1", T0)
    await store.add_member("cuisine", "p1", T0)  # same millisecond
    await store.add_member("voyages", "p1", T0 + 1)
    await store.add_member("general", "p2", T0)
    assert await store.rooms_of("p1") == ["sport", "cuisine", "voyages"]
    await store.remove_member("sport", "p1")
    await store.add_member("sport", "p1", T0 + 2)  # joining again puts it last
    assert await store.rooms_of("p1") == ["cuisine", "voyages", "sport"]
    assert await store.rooms_of("p2") == ["general"]
    assert await store.rooms_of("nobody") == []


async def test_members_of_lists_each_member_once(store: Store) -> None:
    await store.add_member("general", "p2", T0 + 1)
    await store.add_member("general", "p1", T0 + 2)
    await store.add_member("general", "p3", T0 + 2)
    await store.add_member("cuisine", "p4", T0)
    assert await store.members_of("general") == ["p2", "p1", "p3"]
    assert await store.members_of("nowhere") == []


# --- private conversations -------------------------------------------------------------------


async def test_open_conversation_records_it_for_both_people_once(store: Store) -> None:
    stream = dm_stream("alice", "bob")
    alices = ConversationState(
        stream=stream, other="bob", opened_by="alice", last_seq=0, read_seq=0, last_ts=0
    )
    bobs = ConversationState(
        stream=stream, other="alice", opened_by="alice", last_seq=0, read_seq=0, last_ts=0
    )
    assert await store.open_conversation(stream, "alice", "bob", T0) == alices
    assert await store.open_conversation(stream, "alice", "bob", T0 + 1) == alices
    # Opened again by the other person: still the first opener's, and the other's view.
    assert await store.open_conversation(stream, "bob", "alice", T0 + 2) == bobs
    head = await store.stream_head(stream)
    assert head is not None
    assert head.last_seq == 0
    assert await store.get_conversation("alice", stream) == alices
    assert await store.get_conversation("bob", stream) == bobs
    assert await store.get_conversation("carol", stream) is None
    assert len(await store.conversations_of("alice")) == 1


async def test_open_conversation_keeps_an_existing_stream(store: Store) -> None:
    stream = dm_stream("alice", "bob")
    head = await store.ensure_stream(stream, T0)
    await store.append(item(stream))
    bobs = await store.open_conversation(stream, "bob", "alice", T0 + 1)
    again = await store.stream_head(stream)
    assert again == dataclasses.replace(head, last_seq=1)
    assert (bobs.last_seq, bobs.read_seq, bobs.unread, bobs.last_ts) == (1, 0, 1, T0)


async def test_an_append_read_by_its_author_raises_only_their_read_mark(store: Store) -> None:
    stream = dm_stream("alice", "bob")
    await store.open_conversation(stream, "alice", "bob", T0)
    await store.append(item(stream, author="bob"))
    mine = item(stream, author="alice", local_id="l1", read_by_author=True)
    message, _ = await store.append(mine)
    alice = await store.get_conversation("alice", stream)
    bob = await store.get_conversation("bob", stream)
    assert alice is not None
    assert bob is not None
    assert (alice.read_seq, alice.unread) == (2, 0)
    assert (bob.read_seq, bob.unread) == (0, 2)

    # A retry writes nothing, read mark included; appends together (one group where the store
    # groups them) raise each author's mark to their own message.
    await store.mark_read("alice", stream, 1)  # never lowers it: still 2
    again, dup = await store.append(dataclasses.replace(mine, id="m-retry"))
    assert (again.seq, dup) == (message.seq, True)
    results = await asyncio.gather(
        store.append(item(stream, author="bob", read_by_author=True)),
        store.append(item(stream, author="alice")),
        store.append(item(stream, author="bob")),
    )
    assert [m.seq for m, _ in results] == [3, 4, 5]
    alice = await store.get_conversation("alice", stream)
    bob = await store.get_conversation("bob", stream)
    assert alice is not None
    assert bob is not None
    assert (alice.read_seq, bob.read_seq) == (2, 3)

    # In a stream without a conversation (a room's), the flag changes nothing.
    await store.ensure_stream(GENERAL, T0)
    room_message, _ = await store.append(item(author="alice", read_by_author=True))
    assert room_message.seq == 1
    assert await store.get_conversation("alice", GENERAL) is None


async def test_conversations_of_shows_unread_and_most_recent_first(
    store: Store,
) -> None:
    with_bob = dm_stream("alice", "bob")
    with_carol = dm_stream("alice", "carol")
    with_dan = dm_stream("alice", "dan")
    await store.open_conversation(with_bob, "alice", "bob", T0)
    await store.open_conversation(with_carol, "carol", "alice", T0 + 1)
    await store.open_conversation(with_dan, "alice", "dan", T0 + 2)
    await append_n(store, 3, with_bob, ts=T0 + 10)
    await append_n(store, 1, with_carol, ts=T0 + 5)
    await store.mark_read("alice", with_bob, 1)

    states = await store.conversations_of("alice")
    assert [c.stream for c in states] == [with_bob, with_carol, with_dan]
    bob, carol, dan = states
    assert (bob.other, bob.opened_by, bob.last_seq, bob.read_seq, bob.unread) == (
        "bob",
        "alice",
        3,
        1,
        2,
    )
    assert (bob.last_ts, carol.last_ts, dan.last_ts) == (T0 + 10, T0 + 5, 0)
    assert (carol.other, carol.opened_by, carol.unread) == ("carol", "carol", 1)
    assert dan.unread == 0

    # A newly opened conversation counts as activity; a new message moves one up.
    with_erin = dm_stream("alice", "erin")
    await store.open_conversation(with_erin, "erin", "alice", T0 + 20)
    await append_n(store, 1, with_dan, ts=T0 + 30)
    assert [c.stream for c in await store.conversations_of("alice")] == [
        with_dan,
        with_erin,
        with_bob,
        with_carol,
    ]
    assert await store.get_conversation("alice", with_bob) == bob
    assert await store.conversations_of("nobody") == []


async def test_mark_read_never_lowers_the_read_mark(store: Store) -> None:
    stream = dm_stream("alice", "bob")
    await store.open_conversation(stream, "alice", "bob", T0)
    await append_n(store, 5, stream)
    await store.mark_read("alice", stream, 4)
    await store.mark_read("alice", stream, 2)
    alice = await store.get_conversation("alice", stream)
    bob = await store.get_conversation("bob", stream)
    assert alice is not None
    assert bob is not None
    assert (alice.read_seq, alice.unread) == (4, 1)
    assert (bob.read_seq, bob.unread) == (0, 5)
    await store.mark_read("carol", stream, 3)  # not a party: nothing happens
    assert await store.get_conversation("carol", stream) is None


async def test_an_append_to_a_recipient_needs_their_session_alive(store: Store) -> None:
    stream = dm_stream("alice", "bob")
    await store.create_session(make_session("alice"))
    await store.create_session(make_session("bob"))
    await store.open_conversation(stream, "alice", "bob", T0)
    first, _ = await store.append(item(stream, local_id="l1", recipient="bob"))
    assert first.seq == 1

    # Bob's session ends: nothing more is written to him, a retry of a stored send included,
    # and a group (where the store groups appends) still numbers the others without a gap.
    await store.end_session("bob", T0 + 1)
    with pytest.raises(PersonUnknown):
        await store.append(item(stream, recipient="bob"))
    with pytest.raises(PersonUnknown):
        await store.append(item(stream, local_id="l1", recipient="bob"))
    with pytest.raises(PersonUnknown):
        await store.append(item(stream, recipient="nobody"))
    results = await asyncio.gather(
        store.append(item(stream, author="bob", recipient="alice")),
        store.append(item(stream, recipient="bob")),
        store.append(item(stream, author="bob")),
        return_exceptions=True,
    )
    assert isinstance(results[1], PersonUnknown)
    assert [r[0].seq for r in results if isinstance(r, tuple)] == [2, 3]
    head = await store.stream_head(stream)
    assert head is not None
    assert head.last_seq == 3


# --- blocks ----------------------------------------------------------------------------------


async def test_block_and_unblock(store: Store) -> None:
    assert await store.block("alice", "bob", T0) is True
    assert await store.block("alice", "bob", T0 + 1) is False
    assert await store.block("alice", "carol", T0 + 2) is True
    assert await store.block("dan", "alice", T0 + 3) is True
    assert await store.blocked_by("alice") == ["bob", "carol"]
    assert await store.blockers_of("bob") == ["alice"]
    assert await store.blockers_of("alice") == ["dan"]
    assert await store.blocked_by("bob") == []

    assert await store.is_blocked_either_way("alice", "bob") is True
    assert await store.is_blocked_either_way("bob", "alice") is True
    assert await store.is_blocked_either_way("bob", "carol") is False

    assert await store.unblock("alice", "bob") is True
    assert await store.unblock("alice", "bob") is False
    assert await store.unblock("bob", "dan") is False
    assert await store.is_blocked_either_way("bob", "alice") is False
    assert await store.blocked_by("alice") == ["carol"]


async def test_messages_read_back_as_sent(store: Store) -> None:
    await store.ensure_stream(GENERAL, T0)
    text = "Ça va ? 🙂 \"quotes\" 'single' -- ; DROP TABLE messages; \u00e9\u0301"
    sent, _ = await store.append(item(text=text, author="p'1", local_id="x;y"))
    [stored] = await store.read(GENERAL, 0, 10)
    assert stored == sent
    assert stored.text == text
    assert isinstance(stored, Message)
