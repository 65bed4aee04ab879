"""The ``ModerationStore`` contract: what moderation relies on, checked on every adapter (see
conftest). Person ids, message ids and room slugs are plain strings: moderation records outlive
the sessions and messages they are about."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from causette.core.cases import (
    Action,
    Appeal,
    AppealStatus,
    Case,
    CaseStatus,
    Decision,
    Evidence,
    Moderator,
    ModSession,
    Outcome,
    Report,
    Role,
    RoomState,
    TargetKind,
)
from causette.core.models import room_stream
from causette.errors import ModeratorExists, StoreUnavailable
from causette.store import FullStore
from tests.contracts.test_store_contract import GENERAL, HOUR, MINUTE, T0, item, make_session

#: Severities of the categories used here (safety.categories): the store only compares numbers.
SEVERITY = {"child_safety": 1, "threat": 1, "harassment": 3, "spam_scam": 5, "other": 6}
DAY = 24 * HOUR
#: A store's answer to a reference the database does not know (memory: ValueError; SQL: the
#: foreign key).
BROKEN_REFERENCE = (ValueError, IntegrityError)

_n = iter(range(1, 1_000_000))


def new_case(
    target_key: str = "message:m1",
    *,
    category: str = "spam_scam",
    subject: str | None = "bob",
    at: int = T0,
    kind: TargetKind = TargetKind.MESSAGE,
    automated: bool = False,
    message_id: str | None = "m1",
) -> Case:
    return Case(
        id=f"C-{next(_n):08d}",
        created_at=at,
        updated_at=at,
        status=CaseStatus.OPEN,
        category=category,
        severity=SEVERITY[category],
        target_kind=kind,
        target_key=target_key,
        subject=subject,
        subject_name=(subject or "").capitalize(),
        room="general",
        stream=GENERAL,
        message_id=message_id,
        reporters=1,
        automated=automated,
    )


def new_report(
    case: Case,
    reporter: str = "alice",
    *,
    key: str | None = None,
    category: str | None = None,
    at: int | None = None,
) -> Report:
    return Report(
        id=f"R{next(_n)}",
        case_id=case.id,
        reporter=reporter,
        reporter_key=key if key is not None else f"net-{reporter}",
        category=category or case.category,
        explanation="Il m'insulte depuis dix minutes.",
        good_faith=True,
        created_at=case.created_at if at is None else at,
    )


def evidence_for(case: Case, *kinds: str) -> list[Evidence]:
    return [
        Evidence(
            case_id=case.id,
            n=n,
            kind=kind,
            captured_at=case.created_at,
            data={"kind": kind, "n": n, "items": [{"seq": n, "text": "é « ok »"}], "none": None},
        )
        for n, kind in enumerate(kinds or ("message", "context", "profile"))
    ]


async def report(
    store: FullStore,
    target_key: str = "message:m1",
    reporter: str = "alice",
    *,
    category: str = "spam_scam",
    subject: str | None = "bob",
    key: str | None = None,
    at: int = T0,
) -> tuple[Case, bool]:
    """A person reports a target (a new case, or the open one for that target)."""
    case = new_case(target_key, category=category, subject=subject, at=at)
    return await store.file_report(
        case, new_report(case, reporter, key=key), evidence_for(case, "message")
    )


def new_decision(
    case: Case,
    action: Action = Action.BAN,
    *,
    subject: str | None = "bob",
    key: str | None = "net-bob",
    at: int = T0,
    expires_at: int | None = None,
) -> Decision:
    return Decision(
        id=f"D-{next(_n):08d}",
        case_id=case.id,
        action=action,
        subject=subject,
        subject_key=key,
        room=case.room,
        stream=case.stream,
        message_id=case.message_id,
        facts="Vous avez envoyé le même lien publicitaire vingt fois.",
        category=case.category,
        automated=False,
        moderator="mod1",
        created_at=at,
        expires_at=expires_at,
    )


async def decided(store: FullStore, action: Action = Action.BAN, **kwargs: Any) -> Decision:
    """A decision stored on a fresh case."""
    case, _ = await report(store, f"person:{next(_n)}")
    decision = new_decision(case, action, **kwargs)
    await store.add_decision(decision)
    return decision


def new_appeal(decision: Decision, *, at: int = T0 + HOUR) -> Appeal:
    return Appeal(
        id=f"A{next(_n)}",
        decision_id=decision.id,
        text="Je n'ai rien fait de tel.",
        created_at=at,
        status=AppealStatus.PENDING,
    )


def new_moderator(login: str = "camille", *, moderator_id: str | None = None) -> Moderator:
    return Moderator(
        id=moderator_id or f"mod-{next(_n)}",
        login=login,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        totp_secret="JBSWY3DPEHPK3PXP",
        role=Role.MODERATOR,
        created_at=T0,
    )


async def audit(store: FullStore, action: str = "case.decide", **details: object) -> int:
    entry = await store.audit(
        ts=T0,
        actor="mod:mod1",
        action=action,
        case_id=None,
        target="person:bob",
        reason="",
        details=details,
    )
    return entry.id


# --- messages and sessions seen by moderation ---------------------------------------------------


async def test_get_message_finds_a_stored_message_by_id(store: FullStore) -> None:
    await store.ensure_stream(GENERAL, T0)
    message, _ = await store.append(item(text="bonjour à tous"))
    assert await store.get_message(message.id) == message
    assert await store.get_message("nope") is None


async def test_a_purged_message_is_gone(store: FullStore) -> None:
    await store.ensure_stream(GENERAL, T0)
    message, _ = await store.append(item(lifetime=HOUR))
    assert await store.purge_expired(T0 + HOUR, 100) == 1
    assert await store.get_message(message.id) is None
    assert await store.delete_message(message.id) is None


async def test_delete_message_removes_it_and_keeps_its_seq_used(store: FullStore) -> None:
    await store.ensure_stream(GENERAL, T0)
    first, _ = await store.append(item(text="un"))
    second, _ = await store.append(item(text="deux"))
    assert await store.delete_message(second.id) == second
    assert await store.get_message(second.id) is None
    assert await store.read(GENERAL, 0, 10) == [first]
    assert await store.latest(GENERAL, 10, T0) == [first]
    head = await store.stream_head(GENERAL)
    assert head is not None
    assert head.last_seq == 2
    third, _ = await store.append(item(text="trois"))
    assert third.seq == 3
    assert await store.delete_message(second.id) is None  # once only
    assert await store.delete_message(first.id) == first
    assert await store.first_seq(GENERAL) == 3


async def test_posted_in_lists_streams_where_the_person_wrote_text_since(
    store: FullStore,
) -> None:
    lyon, paris, nantes = room_stream("lyon"), room_stream("paris"), room_stream("nantes")
    for stream in (lyon, paris, nantes):
        await store.ensure_stream(stream, T0)
    await store.append(item(lyon, author="alice", ts=T0 + MINUTE))
    await store.append(item(paris, author="alice", ts=T0 - 1))  # before `since`
    await store.append(item(nantes, author="alice", ts=T0 + 1, kind="join"))  # not text
    await store.append(item(nantes, author="bob", ts=T0 + 2))  # someone else
    assert await store.posted_in("alice", [lyon, paris, nantes], T0) == {lyon}
    assert await store.posted_in("alice", [paris], T0 - 1) == {paris}  # since is inclusive
    assert await store.posted_in("alice", [paris, nantes], T0) == set()
    assert await store.posted_in("alice", [], T0) == set()
    assert await store.posted_in("alice", [nantes, "r:unknown"], 0) == set()
    assert await store.posted_in("bob", [lyon, nantes, nantes], T0) == {nantes}


async def test_the_ip_key_of_a_session_is_kept(store: FullStore) -> None:
    session = dataclasses.replace(make_session("p1"), ip_key="k-lyon")
    await store.create_session(session)
    assert await store.get_session("p1") == session
    assert await store.session_by_token(session.token_hash) == session
    assert await store.get_sessions(["p1"]) == [session]


async def test_sessions_with_key_lists_live_and_ended_sessions_newest_first(
    store: FullStore,
) -> None:
    for n, key in enumerate(["k1", "k1", "k2", "k1", ""]):
        at = T0 + n * MINUTE
        session = dataclasses.replace(make_session(f"p{n}", at=at), ip_key=key)
        await store.create_session(session)
    await store.end_session("p1", T0 + HOUR)
    found = await store.sessions_with_key("k1", 10)
    assert [s.id for s in found] == ["p3", "p1", "p0"]
    assert found[1].ended_at == T0 + HOUR
    assert found[1].ip_key == "k1"
    assert [s.id for s in await store.sessions_with_key("k1", 2)] == ["p3", "p1"]
    assert [s.id for s in await store.sessions_with_key("k2", 10)] == ["p2"]
    assert await store.sessions_with_key("k3", 10) == []
    assert await store.sessions_with_key("", 10) == []  # "" means unknown, not a network
    assert await store.purge_ended_sessions(T0 + DAY, 10) == 1
    assert [s.id for s in await store.sessions_with_key("k1", 10)] == ["p3", "p0"]


# --- cases --------------------------------------------------------------------------------------


async def test_a_first_report_opens_a_case_with_its_report_and_evidence(
    store: FullStore,
) -> None:
    case = new_case()
    first = new_report(case, "alice")
    evidence = evidence_for(case, "message", "context", "profile")
    stored, joined = await store.file_report(case, first, list(reversed(evidence)))
    assert joined is False
    assert stored == case  # reporters == 1
    assert await store.get_case(case.id) == case
    assert await store.reports_of(case.id) == [first]
    assert await store.evidence_of(case.id) == evidence  # in n order
    assert await store.get_case("C-unknown") is None
    assert await store.reports_of("C-unknown") == []
    assert await store.evidence_of("C-unknown") == []


async def test_a_case_opened_without_a_report_counts_no_reporter(store: FullStore) -> None:
    case = dataclasses.replace(new_case(automated=True), reporters=7)
    stored, joined = await store.file_report(case, None, evidence_for(case, "held"))
    assert joined is False
    assert stored.reporters == 0
    assert stored.automated
    assert await store.get_case(case.id) == stored
    assert await store.reports_of(case.id) == []
    # A person's report then joins it.
    later, joined = await report(store, at=T0 + MINUTE)
    assert joined is True
    assert later.id == case.id
    assert later.reporters == 1


async def test_reports_of_one_target_join_its_open_case(store: FullStore) -> None:
    first, _ = await report(store, reporter="alice")
    second_case = new_case(at=T0 + MINUTE)
    second = new_report(second_case, "carol")
    stored, joined = await store.file_report(
        second_case, second, evidence_for(second_case, "message", "context")
    )
    assert joined is True
    assert stored.id == first.id
    assert stored.reporters == 2
    assert stored.created_at == T0
    assert stored.updated_at == T0 + MINUTE
    assert await store.get_case(first.id) == stored
    assert await store.get_case(second_case.id) is None  # no second case
    stored_reports = await store.reports_of(first.id)
    assert [r.reporter for r in stored_reports] == ["alice", "carol"]
    assert stored_reports[1] == dataclasses.replace(second, case_id=first.id)
    # The first evidence stands.
    assert [e.kind for e in await store.evidence_of(first.id)] == ["message"]
    assert await store.open_cases(10) == [stored]


async def test_a_reporter_counts_once_per_case(store: FullStore) -> None:
    first, _ = await report(store, reporter="alice")
    again, joined = await report(store, reporter="alice", category="child_safety", at=T0 + HOUR)
    assert joined is True
    assert again == first  # no new report, nothing changes
    assert len(await store.reports_of(first.id)) == 1
    assert await store.get_case(first.id) == first


async def test_a_more_severe_report_raises_the_case_severity(store: FullStore) -> None:
    spam, _ = await report(store, reporter="alice", category="spam_scam")
    assert (spam.severity, spam.category) == (5, "spam_scam")
    raised, _ = await report(store, reporter="carol", category="child_safety", at=T0 + 1)
    assert (raised.severity, raised.category) == (1, "child_safety")
    kept, _ = await report(store, reporter="dan", category="harassment", at=T0 + 2)
    assert (kept.severity, kept.category, kept.reporters) == (1, "child_safety", 3)
    assert kept.updated_at == T0 + 2
    assert await store.get_case(spam.id) == kept
    # A system case about the same target raises it too, without counting as a reporter.
    automated = new_case(category="threat", automated=True, at=T0 + 3)
    stored, joined = await store.file_report(automated, None, [])
    assert joined is True
    assert (stored.id, stored.severity, stored.category, stored.reporters) == (
        spam.id,
        1,
        "child_safety",  # equally severe: the first category stands
        3,
    )


async def test_racing_reports_of_one_target_make_one_case(store: FullStore) -> None:
    results = await asyncio.gather(
        *(report(store, reporter=f"person{n}", at=T0 + n) for n in range(20))
    )
    assert len({case.id for case, _ in results}) == 1
    assert sorted(joined for _, joined in results) == [False] + [True] * 19
    (case,) = await store.open_cases(10)
    assert case.reporters == 20
    assert len(await store.reports_of(case.id)) == 20
    assert len(await store.evidence_of(case.id)) == 1


async def test_racing_reports_by_one_person_count_once(store: FullStore) -> None:
    results = await asyncio.gather(*(report(store, reporter="alice") for _ in range(10)))
    assert len({case.id for case, _ in results}) == 1
    (case,) = await store.open_cases(10)
    assert case.reporters == 1
    assert len(await store.reports_of(case.id)) == 1


async def test_a_report_after_the_case_is_closed_opens_a_new_case(store: FullStore) -> None:
    first, _ = await report(store, reporter="alice")
    await store.close_case(first.id, Outcome.DISMISSED, "mod1", T0 + HOUR)
    second, joined = await report(store, reporter="alice", at=T0 + 2 * HOUR)
    assert joined is False
    assert second.id != first.id
    assert second.reporters == 1
    assert [c.id for c in await store.open_cases(10)] == [second.id]
    old = await store.get_case(first.id)
    assert old is not None
    assert old.status == CaseStatus.CLOSED


async def test_close_case_closes_an_open_case_once(store: FullStore) -> None:
    case, _ = await report(store)
    closed = await store.close_case(case.id, Outcome.ACTIONED, "mod1", T0 + HOUR)
    assert closed == dataclasses.replace(
        case,
        status=CaseStatus.CLOSED,
        outcome=Outcome.ACTIONED,
        decided_by="mod1",
        decided_at=T0 + HOUR,
        updated_at=T0 + HOUR,
    )
    assert await store.get_case(case.id) == closed
    assert await store.close_case(case.id, Outcome.DISMISSED, "mod2", T0 + 2 * HOUR) is None
    assert await store.get_case(case.id) == closed
    assert await store.close_case("C-unknown", Outcome.DISMISSED, "mod1", T0) is None
    assert await store.open_cases(10) == []


async def test_open_cases_are_most_severe_first_then_oldest_first(store: FullStore) -> None:
    spam_old, _ = await report(store, "message:a", category="spam_scam", at=T0)
    threat_new, _ = await report(store, "message:b", category="threat", at=T0 + 20)
    harass, _ = await report(store, "message:c", category="harassment", at=T0 + 5)
    child_old, _ = await report(store, "message:d", category="child_safety", at=T0 + 10)
    closed, _ = await report(store, "message:e", category="child_safety", at=T0 + 1)
    await store.close_case(closed.id, Outcome.DISMISSED, "mod1", T0 + 30)
    expected = [child_old, threat_new, harass, spam_old]
    assert await store.open_cases(10) == expected
    assert await store.open_cases(2) == expected[:2]
    assert await store.open_cases(0) == []


async def test_cases_of_subject_newest_first_open_or_closed(store: FullStore) -> None:
    first, _ = await report(store, "message:a", subject="bob", at=T0)
    second, _ = await report(store, "person:bob", subject="bob", at=T0 + 10)
    third, _ = await report(store, "message:b", subject="bob", at=T0 + 20)
    await report(store, "message:c", subject="carol", at=T0 + 30)
    closed = await store.close_case(second.id, Outcome.ACTIONED, "mod1", T0 + 40)
    assert await store.cases_of_subject("bob", 10) == [third, closed, first]
    assert await store.cases_of_subject("bob", 1) == [third]
    assert await store.cases_of_subject("nobody", 10) == []


async def test_reporter_networks_against_counts_networks_not_people(store: FullStore) -> None:
    # Three people from two networks report bob's message; one more reports bob himself.
    await report(store, "message:a", "troll1", key="net-x", at=T0)
    await report(store, "message:a", "troll2", key="net-x", at=T0 + 1)
    await report(store, "message:a", "carol", key="net-y", at=T0 + 2)
    await report(store, "person:bob", "dan", key="net-z", at=T0 + 3, category="harassment")
    # Reports about someone else, and about bob before the window, do not count.
    await report(store, "message:c", "erin", key="net-w", subject="carol", at=T0 + 4)
    await report(store, "message:old", "fred", key="net-v", at=T0 - HOUR)
    assert await store.reporter_networks_against("bob", T0) == 3
    assert await store.reporter_networks_against("bob", T0 + 1) == 3  # since is inclusive
    assert await store.reporter_networks_against("bob", T0 + 3) == 1
    assert await store.reporter_networks_against("bob", T0 - HOUR) == 4
    assert await store.reporter_networks_against("carol", T0) == 1
    assert await store.reporter_networks_against("nobody", 0) == 0


async def test_evidence_and_cases_survive_the_purges_and_deletion(store: FullStore) -> None:
    bob = dataclasses.replace(make_session("bob"), ip_key="net-bob")
    await store.create_session(bob)
    await store.ensure_stream(GENERAL, T0)
    kept, _ = await store.append(item(author="bob", text="message signalé", lifetime=HOUR))
    deleted, _ = await store.append(item(author="bob", text="autre message", lifetime=DAY))
    frozen: list[dict[str, Any]] = []
    for message in (kept, deleted):
        case = new_case(f"message:{message.id}", message_id=message.id)
        data = {"message": {"id": message.id, "text": message.text, "seq": message.seq}}
        evidence = [Evidence(case.id, 0, "message", T0, data)]
        await store.file_report(case, new_report(case, "alice"), evidence)
        decision = new_decision(case, Action.DELETE_MESSAGE)
        await store.add_decision(decision)
        assert await store.add_appeal(new_appeal(decision))
        frozen.append({"case": case, "evidence": evidence, "decision": decision})
    assert await store.delete_message(deleted.id) == deleted
    assert await store.purge_expired(T0 + HOUR, 100) == 1
    assert await store.end_session("bob", T0 + HOUR)
    assert await store.purge_ended_sessions(T0 + DAY, 10) == 1
    assert await store.get_message(kept.id) is None
    assert await store.get_session("bob") is None
    for record in frozen:
        case = record["case"]
        assert await store.get_case(case.id) == case
        assert await store.evidence_of(case.id) == record["evidence"]
        assert [r.reporter for r in await store.reports_of(case.id)] == ["alice"]
        assert await store.decisions_of_case(case.id) == [record["decision"]]
        assert await store.appeal_of(record["decision"].id) is not None
    assert len(await store.cases_of_subject("bob", 10)) == 2
    assert len(await store.decisions_of_subject("bob", None, 10)) == 2


async def test_evidence_data_reads_back_as_json_data(store: FullStore) -> None:
    case = new_case()
    data: dict[str, Any] = {
        "text": '« Salut » 😀 \u0000 "quoted"',
        "n": 2**53,
        "ok": True,
        "none": None,
        "items": [{"seq": 1}, {"seq": 2}],
        "pair": ("a", "b"),  # a tuple reads back as a list, as from JSON
    }
    await store.file_report(case, None, [Evidence(case.id, 0, "message", T0, data)])
    (stored,) = await store.evidence_of(case.id)
    assert stored.data == {**data, "pair": ["a", "b"]}


# --- decisions ----------------------------------------------------------------------------------


async def test_decisions_read_back_and_list_per_case_oldest_first(store: FullStore) -> None:
    case, _ = await report(store)
    later = new_decision(case, Action.BAN, at=T0 + 20, expires_at=T0 + DAY)
    earlier = dataclasses.replace(
        new_decision(case, Action.DELETE_MESSAGE, at=T0 + 10),
        automated=True,
        moderator=None,
        subject_key=None,
    )
    await store.add_decision(later)
    await store.add_decision(earlier)
    assert await store.get_decision(later.id) == later
    assert await store.get_decision(earlier.id) == earlier
    assert await store.get_decision("D-unknown") is None
    assert await store.decisions_of_case(case.id) == [earlier, later]
    assert await store.decisions_of_case("C-unknown") == []


async def test_a_decision_needs_a_known_case(store: FullStore) -> None:
    case = new_case()  # never filed
    with pytest.raises(BROKEN_REFERENCE):
        await store.add_decision(new_decision(case))


async def test_decisions_of_subject_by_person_or_network_newest_first(store: FullStore) -> None:
    warn = await decided(store, Action.WARN, subject="bob", key="net-1", at=T0)
    mute = await decided(store, Action.MUTE, subject="bob", key="net-2", at=T0 + 10)
    ban = await decided(store, Action.BAN, subject="bob2", key="net-1", at=T0 + 20)
    await decided(store, Action.WARN, subject="carol", key="net-3", at=T0 + 30)
    assert await store.decisions_of_subject("bob", None, 10) == [mute, warn]
    assert await store.decisions_of_subject(None, "net-1", 10) == [ban, warn]
    assert await store.decisions_of_subject("bob", "net-1", 10) == [ban, mute, warn]
    assert await store.decisions_of_subject("bob", "net-1", 2) == [ban, mute]
    assert await store.decisions_of_subject(None, None, 10) == []
    assert await store.decisions_of_subject("nobody", "net-0", 10) == []


async def test_an_active_ban_is_found_by_person_network_or_decision(store: FullStore) -> None:
    ban = await decided(store, Action.BAN, subject="bob", key="net-bob", expires_at=T0 + DAY)
    for criteria in (
        {"person_id": "bob", "ip_key": None, "decision_id": None},
        {"person_id": None, "ip_key": "net-bob", "decision_id": None},
        {"person_id": None, "ip_key": None, "decision_id": ban.id},
        {"person_id": "someone", "ip_key": "net-other", "decision_id": ban.id},
    ):
        assert await store.active_ban(**criteria, now=T0 + HOUR) == ban, criteria
    assert (
        await store.active_ban(person_id="carol", ip_key="net-carol", decision_id="D-x", now=T0)
        is None
    )
    assert await store.active_ban(person_id=None, ip_key=None, decision_id=None, now=T0) is None


async def test_a_ban_ends_when_it_expires_or_is_lifted(store: FullStore) -> None:
    temporary = await decided(store, Action.BAN, subject="bob", key="k1", expires_at=T0 + HOUR)
    assert await store.active_ban(person_id="bob", ip_key=None, decision_id=None, now=T0) == (
        temporary
    )
    at_expiry = T0 + HOUR
    assert (
        await store.active_ban(person_id="bob", ip_key="k1", decision_id=None, now=at_expiry)
        is None
    )
    forever = await decided(store, Action.BAN, subject="carol", key="k2")
    assert await store.active_ban(person_id=None, ip_key="k2", decision_id=None, now=T0 + 10 * DAY)
    lifted = await store.lift_decision(forever.id, T0 + DAY, "appeal granted")
    assert lifted == dataclasses.replace(
        forever, lifted_at=T0 + DAY, lifted_reason="appeal granted"
    )
    assert (
        await store.active_ban(person_id="carol", ip_key="k2", decision_id=forever.id, now=T0)
        is None
    )


async def test_active_ban_ignores_other_actions_and_gives_the_newest(store: FullStore) -> None:
    await decided(store, Action.MUTE, subject="bob", key="k", expires_at=T0 + DAY)
    await decided(store, Action.KICK, subject="bob", key="k")
    assert await store.active_ban(person_id="bob", ip_key="k", decision_id=None, now=T0) is None
    older = await decided(store, Action.BAN, subject="bob", key="k", at=T0)
    newer = await decided(store, Action.BAN, subject="bob", key="k", at=T0 + 5)
    found = await store.active_ban(person_id="bob", ip_key=None, decision_id=None, now=T0 + 10)
    assert found == newer
    await store.lift_decision(newer.id, T0 + 20, "error")
    found = await store.active_ban(person_id="bob", ip_key=None, decision_id=None, now=T0 + 30)
    assert found == older


async def test_active_mute_follows_expiry_and_lifting(store: FullStore) -> None:
    await decided(store, Action.BAN, subject="bob")
    assert await store.active_mute("bob", T0) is None
    mute = await decided(store, Action.MUTE, subject="bob", expires_at=T0 + HOUR)
    assert await store.active_mute("bob", T0 + HOUR - 1) == mute
    assert await store.active_mute("bob", T0 + HOUR) is None
    assert await store.active_mute("carol", T0) is None
    again = await decided(store, Action.MUTE, subject="bob", at=T0 + 5, expires_at=T0 + DAY)
    assert await store.active_mute("bob", T0 + 10) == again
    await store.lift_decision(again.id, T0 + 20, "case dismissed on review")
    assert await store.active_mute("bob", T0 + 30) == mute


async def test_lift_decision_lifts_once(store: FullStore) -> None:
    decision = await decided(store, Action.MUTE, expires_at=T0 + DAY)
    lifted = await store.lift_decision(decision.id, T0 + HOUR, "appeal granted")
    assert lifted is not None
    assert lifted.lifted_at == T0 + HOUR
    assert await store.get_decision(decision.id) == lifted
    assert await store.lift_decision(decision.id, T0 + 2 * HOUR, "again") is None
    assert await store.get_decision(decision.id) == lifted
    assert await store.lift_decision("D-unknown", T0, "nothing") is None


# --- appeals ------------------------------------------------------------------------------------


async def test_one_appeal_per_decision(store: FullStore) -> None:
    decision = await decided(store)
    first = new_appeal(decision)
    assert await store.add_appeal(first) is True
    second = dataclasses.replace(new_appeal(decision), text="Deuxième essai")
    assert await store.add_appeal(second) is False
    assert await store.appeal_of(decision.id) == first
    assert await store.get_appeal(first.id) == first
    assert await store.get_appeal(second.id) is None
    assert await store.appeal_of("D-unknown") is None


async def test_an_appeal_needs_a_known_decision(store: FullStore) -> None:
    case, _ = await report(store)
    with pytest.raises(BROKEN_REFERENCE):
        await store.add_appeal(new_appeal(new_decision(case)))  # decision never added


async def test_pending_appeals_oldest_first_and_decided_once(store: FullStore) -> None:
    appeals = []
    for n in (3, 1, 2):
        appeal = new_appeal(await decided(store), at=T0 + n)
        assert await store.add_appeal(appeal)
        appeals.append(appeal)
    later, first, second = appeals
    assert await store.pending_appeals(10) == [first, second, later]
    assert await store.pending_appeals(1) == [first]
    granted = await store.decide_appeal(
        first.id, AppealStatus.GRANTED, "mod2", T0 + DAY, "Décision annulée."
    )
    assert granted == dataclasses.replace(
        first,
        status=AppealStatus.GRANTED,
        decided_by="mod2",
        decided_at=T0 + DAY,
        answer="Décision annulée.",
    )
    assert await store.get_appeal(first.id) == granted
    assert await store.decide_appeal(first.id, AppealStatus.REJECTED, "mod3", T0, "non") is None
    assert await store.get_appeal(first.id) == granted
    assert await store.decide_appeal("A-unknown", AppealStatus.REJECTED, "m", T0, "") is None
    assert await store.pending_appeals(10) == [second, later]


# --- moderator accounts -------------------------------------------------------------------------


async def test_moderators_read_back_by_id_and_login(store: FullStore) -> None:
    camille = new_moderator("camille")
    admin = dataclasses.replace(new_moderator("ana"), role=Role.ADMIN, locked_until=T0 + 5)
    await store.add_moderator(camille)
    await store.add_moderator(admin)
    assert await store.get_moderator(camille.id) == camille
    assert await store.moderator_by_login("ana") == admin
    assert await store.moderator_by_login("ANA") is None  # the caller lowercases; exact match
    assert await store.get_moderator("mod-unknown") is None
    assert await store.list_moderators() == [admin, camille]


async def test_a_login_is_taken_once(store: FullStore) -> None:
    first = new_moderator("camille")
    await store.add_moderator(first)
    with pytest.raises(ModeratorExists):
        await store.add_moderator(new_moderator("camille"))
    assert await store.list_moderators() == [first]


async def test_update_moderator_replaces_the_account(store: FullStore) -> None:
    camille = new_moderator("camille")
    other = new_moderator("dominique")
    await store.add_moderator(camille)
    await store.add_moderator(other)
    locked = dataclasses.replace(
        camille, failed_logins=5, locked_until=T0 + HOUR, disabled=True, login="camille2"
    )
    await store.update_moderator(locked)
    assert await store.get_moderator(camille.id) == locked
    assert await store.moderator_by_login("camille") is None
    with pytest.raises(ModeratorExists):
        await store.update_moderator(dataclasses.replace(locked, login="dominique"))
    assert await store.get_moderator(camille.id) == locked
    await store.update_moderator(new_moderator("ghost"))  # unknown id: nothing happens
    assert await store.moderator_by_login("ghost") is None


async def test_mod_sessions_expire_and_can_be_deleted(store: FullStore) -> None:
    camille, dominique = new_moderator("camille"), new_moderator("dominique")
    await store.add_moderator(camille)
    await store.add_moderator(dominique)
    sessions = [
        ModSession(bytes([n]) * 32, moderator.id, T0, T0 + HOUR)
        for n, moderator in enumerate((camille, camille, dominique))
    ]
    for session in sessions:
        await store.create_mod_session(session)
    first, second, theirs = sessions
    assert await store.mod_session(first.token_hash, T0 + HOUR - 1) == first
    assert await store.mod_session(first.token_hash, T0 + HOUR) is None  # expired
    assert await store.mod_session(b"\xff" * 32, T0) is None
    await store.delete_mod_session(first.token_hash)
    assert await store.mod_session(first.token_hash, T0) is None
    assert await store.mod_session(second.token_hash, T0) == second
    await store.delete_mod_sessions_of(camille.id)
    assert await store.mod_session(second.token_hash, T0) is None
    assert await store.mod_session(theirs.token_hash, T0) == theirs
    await store.delete_mod_session(b"\xfe" * 32)  # unknown: harmless


# --- audit log ----------------------------------------------------------------------------------


async def test_audit_assigns_increasing_ids_and_keeps_the_entry(store: FullStore) -> None:
    entry = await store.audit(
        ts=T0,
        actor="mod:mod1",
        action="case.decide",
        case_id="C-00000001",
        target="person:bob",
        reason="Spam répété",
        details={"action": "ban", "minutes": None, "rules": ("a", "b")},
    )
    assert entry.id >= 1
    assert (entry.actor, entry.action, entry.case_id, entry.target, entry.reason) == (
        "mod:mod1",
        "case.decide",
        "C-00000001",
        "person:bob",
        "Spam répété",
    )
    assert entry.details == {"action": "ban", "minutes": None, "rules": ["a", "b"]}
    ids = [entry.id] + [await audit(store, n=n) for n in range(4)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    (newest,) = await store.audit_log(1)
    assert newest == dataclasses.replace(
        entry, id=ids[-1], case_id=None, reason="", details={"n": 3}
    )
    assert (await store.audit_log(1, before_id=ids[1]))[0] == entry


async def test_audit_log_is_newest_first_and_pages_back(store: FullStore) -> None:
    assert await store.audit_log(10) == []
    ids = [await audit(store, n=n) for n in range(7)]
    page = await store.audit_log(3)
    assert [e.id for e in page] == ids[::-1][:3]
    assert [e.details["n"] for e in page] == [6, 5, 4]
    page = await store.audit_log(3, before_id=page[-1].id)
    assert [e.id for e in page] == ids[::-1][3:6]
    page = await store.audit_log(3, before_id=page[-1].id)
    assert [e.id for e in page] == ids[:1]
    assert await store.audit_log(3, before_id=ids[0]) == []
    assert await store.audit_log(0) == []
    assert [e.id for e in await store.audit_log(100)] == ids[::-1]


# --- room states --------------------------------------------------------------------------------


async def test_room_states_list_the_rooms_that_are_not_open(store: FullStore) -> None:
    assert await store.room_states() == {}
    await store.set_room_state("lyon", RoomState.FROZEN, "raid en cours", T0)
    await store.set_room_state("paris", RoomState.CLOSED, "fermeture", T0)
    assert await store.room_states() == {
        "lyon": (RoomState.FROZEN, "raid en cours"),
        "paris": (RoomState.CLOSED, "fermeture"),
    }
    await store.set_room_state("lyon", RoomState.CLOSED, "toujours", T0 + 1)
    await store.set_room_state("paris", RoomState.OPEN, "réouverture", T0 + 2)
    await store.set_room_state("nantes", RoomState.OPEN, "déjà ouverte", T0 + 3)
    assert await store.room_states() == {"lyon": (RoomState.CLOSED, "toujours")}


# --- availability -------------------------------------------------------------------------------


async def test_a_closed_store_refuses_moderation_calls(store: FullStore) -> None:
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.open_cases(10)
    with pytest.raises(StoreUnavailable):
        await report(store)
    with pytest.raises(StoreUnavailable):
        await audit(store)
    with pytest.raises(StoreUnavailable):
        await store.get_message("m1")
