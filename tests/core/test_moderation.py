"""Reports, cases, decisions with statements of reasons, bans, appeals and room states, in the
core (no I/O)."""

from __future__ import annotations

import pytest

from causette import errors
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import Action, CaseStatus, Moderator, Outcome, Role, RoomState
from causette.core.effects import CloseConnection, SetMute
from causette.core.models import dm_stream
from causette.core.moderation import AppealEvent
from tests.core.harness import (
    Harness,
    HarnessFactory,
    Person,
    controls,
    one,
    published,
    replies,
)


async def room_of(h: Harness, *names: str, **fields: object) -> list[Person]:
    people = [await h.visitor(name, **fields) for name in names]
    for p in people:
        await h.join(p, "general")
    return people


async def reported(
    h: Harness, reporter: Person, target: str, ident: str, category: str = "harassment"
) -> ev.Reported:
    return one(replies(await h.report(reporter, target, ident, category), ev.Reported))


# --- reports ---------------------------------------------------------------------------------


async def test_a_report_freezes_the_message_and_its_context(h: Harness) -> None:
    alice, bruno, carla = await room_of(h, "Alice", "Bruno", "Carla")
    before = [await h.send(bruno, "r:general", f"avant {i}") for i in range(3)]
    bad = await h.send(bruno, "r:general", "message insultant")
    await h.send(alice, "r:general", "après")
    answer = await reported(h, carla, "message", bad.id)
    assert answer.case.startswith("C-")
    assert not answer.joined
    case = await h.store.get_case(answer.case)
    assert case is not None
    assert (case.subject, case.message_id, case.room, case.reporters) == (
        bruno.id,
        bad.id,
        "general",
        1,
    )
    evidence = {e.kind: e.data for e in await h.store.evidence_of(case.id)}
    assert evidence["message"]["text"] == "message insultant"
    context = [m["text"] for m in evidence["context"]["items"]]
    assert [b for b in ("avant 0", "avant 1", "avant 2", "après") if b in context] == [
        "avant 0",
        "avant 1",
        "avant 2",
        "après",
    ]
    assert evidence["profile"]["name"] == "Bruno"
    assert before
    # The messages expire and are purged: the evidence stays.
    h.clock.advance(minutes=h.config.messages.lifetime_minutes + 1)
    await h.service.purge()
    assert await h.store.get_message(bad.id) is None
    kept = {e.kind: e.data for e in await h.store.evidence_of(case.id)}
    assert kept["message"]["text"] == "message insultant"


async def test_reporting_the_same_thing_joins_the_open_case(h: Harness) -> None:
    alice, bruno, carla = await room_of(h, "Alice", "Bruno", "Carla")
    bad = await h.send(alice, "r:general", "spam spam")
    first = await reported(h, bruno, "message", bad.id, "spam_scam")
    again = await reported(h, bruno, "message", bad.id, "spam_scam")
    other = await reported(h, carla, "message", bad.id, "child_safety")
    assert first.case == again.case == other.case
    assert (again.joined, other.joined) == (True, True)
    case = await h.store.get_case(first.case)
    assert case is not None
    # Two people, and the most severe category decides the place in the queue.
    assert (case.reporters, case.category, case.severity) == (2, "child_safety", 1)


async def test_a_report_needs_a_category_good_faith_and_a_visible_target(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    carla = await h.visitor("Carla")  # not in the room
    msg = await h.send(alice, "r:general", "bonjour")
    bad_category = await h.fails(
        bruno, cmd.Report(target="message", id=msg.id, category="nope", good_faith=True)
    )
    assert (bad_category.code, bad_category.field) == ("report_invalid", "category")
    no_faith = await h.fails(bruno, cmd.Report(target="message", id=msg.id, category="hate"))
    assert (no_faith.code, no_faith.field) == ("report_invalid", "good_faith")
    unseen = await h.fails(
        carla, cmd.Report(target="message", id=msg.id, category="hate", good_faith=True)
    )
    assert unseen.code == "report_target_gone"
    itself = await h.fails(
        alice, cmd.Report(target="person", id=alice.id, category="hate", good_faith=True)
    )
    assert itself.code == "report_target_gone"


async def test_a_private_message_can_be_reported_by_its_recipient(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    stream = dm_stream(alice.id, bruno.id)
    msg = await h.send(alice, stream, "On se voit ce soir chez toi ? donne l'adresse")
    answer = await reported(h, bruno, "message", msg.id, "ambush")
    case = await h.store.get_case(answer.case)
    assert case is not None
    assert (case.category, case.severity, case.stream) == ("ambush", 2, stream)


async def test_the_queue_puts_child_safety_and_threats_first(h: Harness) -> None:
    alice, bruno, carla = await room_of(h, "Alice", "Bruno", "Carla")
    for category in ("spam_scam", "threat", "harassment", "child_safety"):
        msg = await h.send(alice, "r:general", f"message {category}")
        h.clock.advance(seconds=1)
        await reported(h, bruno, "message", msg.id, category)
    order = [c.category for c in await h.store.open_cases(10)]
    assert order == ["threat", "child_safety", "harassment", "spam_scam"]
    assert carla


# --- decisions -------------------------------------------------------------------------------


async def test_a_warning_tells_the_person_why_and_the_reporter_what_happened(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "t'es nul")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    modo = await h.moderator("modo")
    effects = await h.moderation.decide(
        modo, case_id, Action.WARN, facts="Message insultant envers Bruno dans Général."
    )
    notice = one(published(effects, ev.DecisionNotice, "p:" + alice.id)).decision
    assert notice.action == "warn"
    assert notice.facts == "Message insultant envers Bruno dans Général."
    assert notice.automated is False
    assert notice.case == case_id
    assert "222-33-2-2" in notice.ground  # the rule and the law relied on
    assert notice.appeal_until == notice.created_at + 183 * 24 * 3600 * 1000
    outcome = one(published(effects, ev.CaseOutcome, "p:" + bruno.id))
    assert (outcome.case, outcome.outcome) == (case_id, "actioned")
    case = await h.store.get_case(case_id)
    assert case is not None
    assert (case.status, case.outcome, case.decided_by) == (
        CaseStatus.CLOSED,
        Outcome.ACTIONED,
        modo.id,
    )
    audit = (await h.store.audit_log(10))[0]
    assert (audit.actor, audit.action, audit.case_id) == (f"mod:{modo.id}", "case.decide", case_id)
    with pytest.raises(errors.CaseClosed):
        await h.moderation.decide(modo, case_id, Action.WARN, facts="Deuxième fois ici.")


async def test_deleting_a_message_removes_it_for_everyone(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "numéro de carte 4970 …")
    case_id = (await reported(h, bruno, "message", msg.id, "spam_scam")).case
    modo = await h.moderator("modo")
    effects = await h.moderation.decide(
        modo, case_id, Action.DELETE_MESSAGE, facts="Données bancaires publiées dans un salon."
    )
    removed = one(published(effects, ev.Removed, "r:general"))
    assert (removed.id, removed.seq) == (msg.id, msg.seq)
    assert await h.store.get_message(msg.id) is None
    assert one(published(effects, ev.DecisionNotice, "p:" + alice.id)).decision.action == (
        "delete_message"
    )


async def test_a_mute_stops_writing_until_it_ends(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "flood")
    case_id = (await reported(h, bruno, "message", msg.id, "spam_scam")).case
    modo = await h.moderator("modo")
    effects = await h.moderation.decide(
        modo, case_id, Action.MUTE, minutes=30, facts="Messages répétés pour vendre un produit."
    )
    h.apply(None, effects)
    mute = one(controls(effects, SetMute))
    assert mute.until == h.clock.t + 30 * 60_000
    assert isinstance(
        await h.fails(alice, cmd.Send(stream="r:general", text="encore", local_id="e")),
        errors.Muted,
    )
    # A reconnection does not escape it: the welcome carries the statement, the mute holds.
    await h.connect(alice)
    assert isinstance(
        await h.fails(alice, cmd.Send(stream="r:general", text="encore", local_id="e")),
        errors.Muted,
    )
    h.clock.advance(minutes=31)
    await h.send(alice, "r:general", "c'est fini")


async def test_a_kick_ends_the_session_but_the_person_may_come_back(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "provocation")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    modo = await h.moderator("modo")
    effects = await h.moderation.decide(modo, case_id, Action.KICK, facts="Provocations répétées.")
    h.apply(None, effects)
    close = one(controls(effects, CloseConnection))
    assert (close.person, close.code, close.reconnect) == (alice.id, "kicked", False)
    session = await h.store.get_session(alice.id)
    assert session is not None
    assert not session.live
    await h.enter("Alice")


async def test_a_ban_refuses_entry_by_network_and_by_cookie(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "menace")
    case_id = (await reported(h, bruno, "message", msg.id, "threat")).case
    modo = await h.moderator("modo")
    effects = await h.moderation.decide(modo, case_id, Action.BAN, facts="Menace de mort.")
    h.apply(None, effects)
    assert one(controls(effects, CloseConnection)).code == "excluded"
    decision = one(published(effects, ev.DecisionNotice, "p:" + alice.id)).decision
    assert (decision.action, decision.expires_at) == ("ban", None)
    # Same network: refused, with the decision to read and appeal.
    with pytest.raises(errors.Banned) as info:
        await h.enter("Alicia", ip_key=alice.session.ip_key)
    assert info.value.details["decision"] == decision.id
    token = info.value.details["ban_token"]
    assert h.moderation.verify_ban_token(token) == decision.id
    # Another network, but the browser kept the ban cookie: refused too.
    with pytest.raises(errors.Banned):
        await h.enter("Alicia", ip_key="net-elsewhere", ban_token=token)
    # A forged cookie is ignored; someone else entirely enters.
    await h.enter("Alicia", ip_key="net-elsewhere", ban_token=decision.id + ".0000")
    await h.enter("Zoé", ip_key="net-other")


async def test_a_temporary_ban_ends(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "insulte")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    modo = await h.moderator("modo")
    h.apply(
        None,
        await h.moderation.decide(
            modo, case_id, Action.BAN, minutes=60, facts="Insultes répétées."
        ),
    )
    with pytest.raises(errors.Banned):
        await h.enter("Alice", ip_key=alice.session.ip_key)
    h.clock.advance(minutes=61)
    await h.enter("Alice", ip_key=alice.session.ip_key)


async def test_a_decision_taken_while_disconnected_is_shown_on_return(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "hmm")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    h.disconnect(alice)
    await h.moderation.decide(
        await h.moderator("modo"), case_id, Action.WARN, facts="Un avertissement en votre absence."
    )
    welcome = one(replies(await h.connect(alice), ev.Welcome))
    assert [(d.action, d.facts) for d in welcome.decisions] == [
        ("warn", "Un avertissement en votre absence.")
    ]


async def test_a_ban_refusal_speaks_the_persons_language(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "menace")
    case_id = (await reported(h, bruno, "message", msg.id, "threat")).case
    modo = await h.moderator("modo")
    h.apply(
        None,
        await h.moderation.decide(
            modo, case_id, Action.BAN, minutes=60, facts="Menace envers une personne du salon."
        ),
    )
    with pytest.raises(errors.Banned) as info:
        await h.enter("Alice2", ip_key=alice.session.ip_key, lang="en")
    assert "until" in info.value.message("en")
    assert "jusqu" not in info.value.message("en")


async def test_decisions_need_facts_and_a_duration_for_mutes(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "x")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    modo = await h.moderator("modo")
    with pytest.raises(errors.DecisionInvalid) as info:
        await h.moderation.decide(modo, case_id, Action.WARN, facts="court")
    assert info.value.field == "facts"
    with pytest.raises(errors.DecisionInvalid) as info:
        await h.moderation.decide(modo, case_id, Action.MUTE, facts="Des faits assez longs.")
    assert info.value.field == "minutes"
    with pytest.raises(errors.CaseUnknown):
        await h.moderation.decide(modo, "C-NOPE", Action.WARN, facts="Des faits assez longs.")


async def test_dismissing_reviews_and_lifts_an_automated_mute(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(protections=True, safety={"new_session_minutes": 0})
    target, *reporters = await room_of(h, "Cible", "Alice", "Bruno", "Carla")
    for reporter in reporters:
        effects = await h.report(reporter, "person", target.id)
    assert target.a.muted_until > h.clock.t
    case_id = one(replies(effects, ev.Reported)).case
    modo = await h.moderator("modo")
    review = await h.moderation.dismiss(modo, case_id, "Signalements concertés, sans fondement.")
    h.apply(None, review)
    assert one(controls(review, SetMute)).until == 0
    assert target.a.muted_until == 0
    # The person is told, not left waiting for the end of a mute that no longer applies.
    lifted = one(published(review, ev.DecisionNotice, "p:" + target.id)).decision
    assert (lifted.action, lifted.automated, lifted.lifted) == ("mute", True, True)
    await h.send(target, "r:general", "merci")
    assert {o.case for o in published(review, ev.CaseOutcome)} == {case_id}


# --- appeals -------------------------------------------------------------------------------


async def banned(h: Harness) -> tuple[Person, str, Moderator]:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "message contesté")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    modo = await h.moderator("modo1")
    effects = await h.moderation.decide(modo, case_id, Action.BAN, facts="Harcèlement supposé.")
    h.apply(None, effects)
    decision = one(published(effects, ev.DecisionNotice, "p:" + alice.id)).decision
    return alice, decision.id, modo


async def test_an_appeal_is_decided_by_another_moderator_and_lifts_the_ban(h: Harness) -> None:
    alice, decision_id, first = await banned(h)
    appeal, effects = await h.moderation.appeal(decision_id, "Je plaisantais avec un ami.")
    assert appeal.status.value == "pending"
    # Moderators see the appeal arrive in their queue.
    queued = one(published(effects, AppealEvent, "mod"))
    assert (queued.appeal, queued.decision) == (appeal.id, decision_id)
    with pytest.raises(errors.SameModerator):
        await h.moderation.decide_appeal(
            first, appeal.id, grant=True, answer="Je me corrige moi-même."
        )
    second = await h.moderator("modo2")
    granted = await h.moderation.decide_appeal(
        second, appeal.id, grant=True, answer="Le contexte montre une plaisanterie entre amis."
    )
    view = one(published(granted, ev.DecisionNotice, "p:" + alice.id)).decision
    assert view.lifted
    assert view.appeal is not None
    assert (view.appeal.status, view.appeal.answer) == (
        "granted",
        "Le contexte montre une plaisanterie entre amis.",
    )
    await h.enter("Alice", ip_key=alice.session.ip_key)  # the ban no longer holds
    assert [e.action for e in await h.store.audit_log(10)][:2] == ["appeal.decide", "appeal.open"]


async def test_a_rejected_appeal_keeps_the_decision(h: Harness) -> None:
    alice, decision_id, _ = await banned(h)
    appeal, _ = await h.moderation.appeal(decision_id, "Ce n'était pas moi.")
    second = await h.moderator("modo2", Role.ADMIN)
    await h.moderation.decide_appeal(
        second, appeal.id, grant=False, answer="Les preuves montrent le contraire."
    )
    with pytest.raises(errors.Banned):
        await h.enter("Alice", ip_key=alice.session.ip_key)
    view = await h.moderation.decision_view(decision_id, "fr")
    assert view.appeal is not None
    assert view.appeal.status == "rejected"


async def test_one_appeal_per_decision_within_six_months(h: Harness) -> None:
    _, decision_id, _ = await banned(h)
    await h.moderation.appeal(decision_id, "Premier recours.")
    with pytest.raises(errors.AppealNotPossible):
        await h.moderation.appeal(decision_id, "Deuxième recours.")
    _, late_decision, _ = await banned_again(h)
    h.clock.advance(minutes=184 * 24 * 60)
    with pytest.raises(errors.AppealNotPossible):
        await h.moderation.appeal(late_decision, "Trop tard ?")
    with pytest.raises(errors.CaseUnknown):
        await h.moderation.appeal("D-NOPE", "?")
    with pytest.raises(errors.AppealInvalid) as info:
        await h.moderation.appeal(late_decision, "   ")
    assert "caractères" in info.value.message("fr")


async def banned_again(h: Harness) -> tuple[Person, str, Moderator]:
    carla, denis = await room_of(h, "Carla", "Denis")
    msg = await h.send(carla, "r:general", "autre message")
    case_id = (await reported(h, denis, "message", msg.id)).case
    modo = await h.moderator("modo3")
    effects = await h.moderation.decide(modo, case_id, Action.WARN, facts="Avertissement simple.")
    return carla, one(published(effects, ev.DecisionNotice, "p:" + carla.id)).decision.id, modo


# --- rooms -----------------------------------------------------------------------------------


async def test_freezing_and_closing_a_room(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    carla = await h.visitor("Carla")
    case_id = (await reported(h, bruno, "room", "general", "hate")).case
    modo = await h.moderator("modo")
    h.apply(
        None,
        await h.moderation.decide(
            modo, case_id, Action.FREEZE_ROOM, facts="Raid haineux en cours dans le salon."
        ),
    )
    error = await h.fails(alice, cmd.Send(stream="r:general", text="hello", local_id="f"))
    assert error.code == "room_frozen"
    infos = {r.slug: (r.state, r.state_reason) for r in h.service.room_infos("fr")}
    assert infos["general"] == ("frozen", "Raid haineux en cours dans le salon.")
    await h.join(carla, "general")  # readable: one may still join
    h.apply(None, await h.moderation.set_room_state("general", RoomState.CLOSED, "Fermé."))
    denis = await h.visitor("Denis")
    assert (await h.fails(denis, cmd.Join(room="general"))).code == "room_closed"


async def test_the_reporter_and_the_person_see_only_their_side(h: Harness) -> None:
    alice, bruno = await room_of(h, "Alice", "Bruno")
    msg = await h.send(alice, "r:general", "hmm")
    case_id = (await reported(h, bruno, "message", msg.id)).case
    status = await h.moderation.case_status(case_id, "en")
    assert status == {
        "case": case_id,
        "status": "open",
        "outcome": None,
        "category": "harassment",
        "category_label": "Harassment",
        "created_at": h.clock.t,
        "decided_at": None,
    }
    with pytest.raises(errors.CaseUnknown):
        await h.moderation.case_status("C-UNKNOWN1", "fr")
