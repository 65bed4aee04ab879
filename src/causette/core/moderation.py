"""ModerationService: reports, cases, decisions with statements of reasons, appeals, and the
automatic protections that open cases. Part of the one action layer: like ``ChatService`` it
checks the rules, persists through the ports and returns effects; it does no I/O of its own.

- A report (DSA art. 16) freezes the reported content and its context as evidence and gives the
  reporter a case code; reporting the same target again joins the open case.
- A decision (art. 17) tells the person concerned what was decided, the facts, the ground (rule
  and law), whether it was automated, and how to appeal, with a code. Nothing is silent.
- An appeal (art. 20) is decided by another moderator than the one who acted; granting it
  lifts the decision.
- Every moderator action is written to the append-only audit log.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import msgspec

from causette import errors
from causette.config import Config
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import (
    PERSONAL_ACTIONS,
    Action,
    Appeal,
    AppealStatus,
    Case,
    CaseStatus,
    Decision,
    Evidence,
    Moderator,
    Outcome,
    Report,
    RoomState,
    TargetKind,
)
from causette.core.effects import (
    MOD_CHANNEL,
    PRESENCE_CHANNEL,
    Control,
    Effect,
    Publish,
    Reply,
    RoomStateChanged,
    SetMute,
    person_channel,
)
from causette.core.models import Message, Session, dm_parties, room_slug, room_stream
from causette.core.ports import Clock, FullStore
from causette.core.wording import seconds, until_text, what
from causette.errors import Text
from causette.ids import IdSource
from causette.safety.categories import CATEGORIES, Category
from causette.safety.filters import FilterResult

if TYPE_CHECKING:
    from causette.core.service import Actor, ChatService

SYSTEM = "system"
FACTS_MIN, FACTS_MAX = 10, 2000
APPEAL_MAX = 2000
MUTE_MAX_MINUTES = 30 * 24 * 60
BAN_MAX_MINUTES = 366 * 24 * 60
DAY_MS = 24 * 3600 * 1000


# --- what moderators see (console protocol) -------------------------------------------------


class CaseSummary(msgspec.Struct, frozen=True):
    id: str
    status: str
    category: str
    category_label: str
    severity: int
    target_kind: str
    subject: str | None
    subject_name: str
    room: str | None
    reporters: int
    automated: bool
    created_at: int
    updated_at: int
    outcome: str | None = None


class CaseEvent(ev.Event, tag="case", frozen=True):
    """A case appeared or changed (the console updates its queue without reloading)."""

    case: CaseSummary


class AppealEvent(ev.Event, tag="appeal", frozen=True):
    appeal: str
    decision: str
    status: str


class CaseDetail(msgspec.Struct, frozen=True):
    case: CaseSummary
    reports: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    decisions: list[dict[str, Any]]
    #: Earlier decisions about the same person or network (sanction history).
    history: list[dict[str, Any]]
    #: Other sessions created from the subject's network: keyed hashes only, never an address.
    same_network: list[dict[str, Any]]
    subject_key: str


# --- the service ---------------------------------------------------------------------------


class ModerationService:
    def __init__(
        self,
        config: Config,
        store: FullStore,
        clock: Clock,
        ids: IdSource,
        chat: ChatService,
        secret: bytes,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.ids = ids
        self.chat = chat
        self.secret = secret
        chat.moderation = self

    # --- reports (visitors) -------------------------------------------------------------------

    async def report(self, actor: Actor, command: cmd.Report) -> list[Effect]:
        category = CATEGORIES.get(command.category)
        if category is None:
            raise errors.ReportInvalid(
                field="category", detail=Text("catégorie inconnue", "unknown category")
            )
        if not command.good_faith:
            raise errors.ReportInvalid(
                field="good_faith",
                detail=Text(
                    "la déclaration de bonne foi est requise",
                    "the good-faith statement is required",
                ),
            )
        safety = self.config.safety
        now = self.clock.now_ms()
        if not self.chat.limiter.take(
            "report:" + actor.id, safety.reports_per_hour / 3600, safety.report_burst, now
        ):
            raise errors.RateLimited(
                what=what("reports", actor.lang),
                seconds=seconds(self.chat.limiter.retry_after_ms("report:" + actor.id)),
            )
        explanation = command.explanation.strip()
        case, evidence = await self._target(actor, command, category, now)
        report = Report(
            id=self.ids.message_id(),
            case_id=case.id,
            reporter=actor.id,
            reporter_key=actor.session.ip_key,
            category=category.code,
            explanation=explanation,
            good_faith=True,
            created_at=now,
        )
        stored, joined = await self.store.file_report(case, report, evidence)
        effects: list[Effect] = [
            Reply(ev.Reported(case=stored.id, target=command.target, id=command.id, joined=joined)),
            Publish(MOD_CHANNEL, CaseEvent(case=self.summary(stored))),
        ]
        if stored.subject is not None:
            effects.extend(await self._maybe_auto_mute(stored))
        return effects

    async def _target(
        self, actor: Actor, command: cmd.Report, category: Category, now: int
    ) -> tuple[Case, list[Evidence]]:
        """The case a report is about, and the evidence to freeze with it."""
        case_id = self.ids.code("C")
        captured: list[tuple[str, dict[str, Any]]] = []
        subject: Session | None = None
        room = stream = message_id = None
        if command.target == "message":
            msg = await self.store.get_message(command.id)
            if msg is None or msg.stream not in actor.streams or msg.kind != "text":
                raise errors.ReportTargetGone(field="id")
            stream, message_id = msg.stream, msg.id
            room = room_slug(msg.stream)
            subject = await self.store.get_session(msg.author)
            context_size = self.config.safety.evidence_context
            around = await self.store.read(
                msg.stream, max(0, msg.seq - context_size - 1), context_size + 6
            )
            captured.append(("message", _builtins(msg)))
            captured.append(("context", {"stream": msg.stream, "items": _builtins(around)}))
            key = f"message:{msg.id}"
            kind = TargetKind.MESSAGE
        elif command.target == "person":
            subject = await self.store.get_session(command.id)
            if subject is None or subject.id == actor.id:
                raise errors.ReportTargetGone(field="id")
            shared = [s for s in actor.streams if _involves(s, subject.id, actor.id)]
            for s in shared[:5]:
                recent = [m for m in await self.store.latest(s, 100, now) if m.author == subject.id]
                if recent:
                    captured.append(("context", {"stream": s, "items": _builtins(recent[-20:])}))
            key = f"person:{subject.id}"
            kind = TargetKind.PERSON
        else:
            room_config = self.config.room(command.id)
            if room_config is None:
                raise errors.ReportTargetGone(field="id")
            room, stream = room_config.slug, room_stream(room_config.slug)
            latest = await self.store.latest(stream, 30, now)
            captured.append(("room", {"slug": room, "name": room_config.name}))
            captured.append(("context", {"stream": stream, "items": _builtins(latest)}))
            key = f"room:{room}"
            kind = TargetKind.ROOM
        if subject is not None:
            captured.append(("profile", _profile_evidence(subject)))
        case = Case(
            id=case_id,
            created_at=now,
            updated_at=now,
            status=CaseStatus.OPEN,
            category=category.code,
            severity=category.severity,
            target_kind=kind,
            target_key=key,
            subject=subject.id if subject is not None else None,
            subject_name=subject.profile.name if subject is not None else "",
            room=room,
            stream=stream,
            message_id=message_id,
            reporters=1,
            automated=False,
        )
        evidence = [
            Evidence(case_id=case_id, n=n, kind=k, captured_at=now, data=data)
            for n, (k, data) in enumerate(captured)
        ]
        return case, evidence

    async def _maybe_auto_mute(self, case: Case) -> list[Effect]:
        """Reports from several distinct networks about one person mute them, pending review."""
        safety = self.config.safety
        if not safety.auto_mute_reporters or case.subject is None:
            return []
        now = self.clock.now_ms()
        since = now - safety.auto_mute_window_minutes * 60_000
        networks = await self.store.reporter_networks_against(case.subject, since)
        if networks < safety.auto_mute_reporters:
            return []
        if await self.store.active_mute(case.subject, now) is not None:
            return []
        subject = await self.store.get_session(case.subject)
        if subject is None or not subject.live:
            return []
        facts = (
            f"{networks} personnes différentes vous ont signalé·e en moins de "
            f"{safety.auto_mute_window_minutes} minutes. Par précaution, vous ne pouvez plus "
            f"écrire pendant {safety.auto_mute_minutes} minutes, le temps qu'un membre de "
            "l'équipe de modération examine ces signalements."
        )
        decision, effects = await self._decide(
            case,
            Action.MUTE,
            subject,
            facts=facts,
            category=CATEGORIES[case.category],
            moderator=None,
            minutes=safety.auto_mute_minutes,
        )
        await self._audit(
            SYSTEM,
            "decision.automated",
            case.id,
            f"decision:{decision.id}",
            "auto-mute after reports",
            {"networks": networks},
        )
        return effects

    # --- automated cases from the word lists ------------------------------------------------

    async def screen(
        self, actor: Actor, stream: str, text: str, local_id: str, result: FilterResult
    ) -> list[Effect]:
        """A word list matched a message being sent. ``block``: refused with a statement;
        ``hold``: kept for review; ``flag`` is handled after publication (``flagged``)."""
        from causette.safety.filters import FilterAction

        now = self.clock.now_ms()
        category = _worst(result)
        held = result.action == FilterAction.HOLD
        draft = {
            "stream": stream,
            "text": text,
            "local_id": local_id,
            "author": actor.id,
            "name": actor.session.profile.name,
            "ts": now,
            "rules": [r.source for r in result.rules],
        }
        case = self._automated_case(
            actor.session,
            key=f"{'held' if held else 'blocked'}:{actor.id}:{local_id}",
            category=category,
            stream=stream,
            now=now,
        )
        evidence = [
            Evidence(case.id, 0, "held" if held else "blocked", now, draft),
            Evidence(case.id, 1, "profile", now, _profile_evidence(actor.session)),
        ]
        stored, _ = await self.store.file_report(case, None, evidence)
        effects: list[Effect] = [Publish(MOD_CHANNEL, CaseEvent(case=self.summary(stored)))]
        if held:
            effects.insert(
                0, Reply(ev.Held(local_id=local_id, stream=stream, case=stored.id, message=text))
            )
            return effects
        # Blocked: the refusal is the statement (automated, the rule, how to contest).
        error = errors.MessageBlocked(
            field="text", category=category.label(actor.lang), details={"case": stored.id}
        )
        effects.insert(0, Reply(ev.error_event(error, actor.lang, local_id)))
        await self._audit(
            SYSTEM,
            "message.blocked",
            stored.id,
            f"person:{actor.id}",
            category.code,
            {"rules": draft["rules"]},
        )
        return effects

    async def flagged(self, actor: Actor, msg: Message, result: FilterResult) -> list[Effect]:
        """A published message matched a ``flag`` rule: open a case for moderators."""
        now = self.clock.now_ms()
        category = _worst(result)
        case = self._automated_case(
            actor.session, key=f"message:{msg.id}", category=category, stream=msg.stream, now=now
        )
        case = dataclasses.replace(case, message_id=msg.id, target_kind=TargetKind.MESSAGE)
        context = await self.store.read(
            msg.stream,
            max(0, msg.seq - self.config.safety.evidence_context - 1),
            self.config.safety.evidence_context + 1,
        )
        evidence = [
            Evidence(case.id, 0, "message", now, _builtins(msg)),
            Evidence(
                case.id, 1, "context", now, {"stream": msg.stream, "items": _builtins(context)}
            ),
            Evidence(case.id, 2, "profile", now, _profile_evidence(actor.session)),
            Evidence(case.id, 3, "rules", now, {"rules": [r.source for r in result.rules]}),
        ]
        stored, _ = await self.store.file_report(case, None, evidence)
        return [Publish(MOD_CHANNEL, CaseEvent(case=self.summary(stored)))]

    def _automated_case(
        self, subject: Session, *, key: str, category: Category, stream: str, now: int
    ) -> Case:
        return Case(
            id=self.ids.code("C"),
            created_at=now,
            updated_at=now,
            status=CaseStatus.OPEN,
            category=category.code,
            severity=category.severity,
            target_kind=TargetKind.MESSAGE,
            target_key=key,
            subject=subject.id,
            subject_name=subject.profile.name,
            room=room_slug(stream),
            stream=stream,
            message_id=None,
            reporters=0,
            automated=True,
        )

    # --- decisions (moderators) ---------------------------------------------------------------

    async def decide(
        self,
        moderator: Moderator,
        case_id: str,
        action: Action,
        *,
        facts: str,
        category: str | None = None,
        minutes: int | None = None,
    ) -> list[Effect]:
        """A moderator acts on an open case; the case is then closed as actioned."""
        case = await self._open_case(case_id)
        facts = facts.strip()
        if not FACTS_MIN <= len(facts) <= FACTS_MAX:
            raise errors.DecisionInvalid(
                field="facts",
                detail=Text(
                    f"décrivez les faits en {FACTS_MIN} à {FACTS_MAX} caractères",
                    f"describe the facts in {FACTS_MIN} to {FACTS_MAX} characters",
                ),
            )
        ground = CATEGORIES.get(category or case.category)
        if ground is None:
            raise errors.DecisionInvalid(
                field="category", detail=Text("catégorie inconnue", "unknown category")
            )
        if action == Action.MUTE and (minutes is None or not 1 <= minutes <= MUTE_MAX_MINUTES):
            raise errors.DecisionInvalid(
                field="minutes",
                detail=Text("une mise en sourdine a besoin d'une durée", "a mute needs a duration"),
            )
        if action == Action.BAN and minutes is not None and not 1 <= minutes <= BAN_MAX_MINUTES:
            raise errors.DecisionInvalid(
                field="minutes",
                detail=Text("une exclusion dure au plus un an", "a ban lasts up to a year"),
            )
        effects: list[Effect] = []
        actor = f"mod:{moderator.id}"
        if action in (Action.FREEZE_ROOM, Action.CLOSE_ROOM, Action.REOPEN_ROOM):
            if case.room is None:
                raise errors.DecisionInvalid(
                    field="action",
                    detail=Text(
                        "ce dossier ne concerne pas un salon", "this case is not about a room"
                    ),
                )
            state = {
                Action.FREEZE_ROOM: RoomState.FROZEN,
                Action.CLOSE_ROOM: RoomState.CLOSED,
                Action.REOPEN_ROOM: RoomState.OPEN,
            }[action]
            effects.extend(await self.set_room_state(case.room, state, facts))
        elif action in (Action.RELEASE, Action.REFUSE):
            effects.extend(await self._settle_held(moderator, case, action, facts, ground))
        else:
            if case.subject is None or action not in PERSONAL_ACTIONS:
                raise errors.DecisionInvalid(
                    field="action", detail=Text("pas pour ce dossier", "not for this case")
                )
            subject = await self.store.get_session(case.subject)
            if subject is None:
                raise errors.DecisionInvalid(
                    field="action", detail=Text("la personne est inconnue", "the person is unknown")
                )
            if action == Action.DELETE_MESSAGE and case.message_id is None:
                raise errors.DecisionInvalid(
                    field="action",
                    detail=Text(
                        "ce dossier ne concerne pas un message", "this case has no message"
                    ),
                )
            _, more = await self._decide(
                case,
                action,
                subject,
                facts=facts,
                category=ground,
                moderator=moderator,
                minutes=minutes,
            )
            effects.extend(more)
        closed = await self.store.close_case(
            case.id, Outcome.ACTIONED, moderator.id, self.clock.now_ms()
        )
        await self._audit(
            actor,
            "case.decide",
            case.id,
            _target(case),
            facts,
            {"action": action.value, "category": ground.code, "minutes": minutes},
        )
        effects.extend(await self._closed(closed or case))
        return effects

    async def dismiss(self, moderator: Moderator, case_id: str, reason: str) -> list[Effect]:
        """No rule was broken. A held message is then published; an automated mute pending
        this review is lifted."""
        case = await self._open_case(case_id)
        reason = reason.strip()
        if not reason:
            raise errors.DecisionInvalid(
                field="reason",
                detail=Text(
                    "dites pourquoi le dossier est classé", "say why the case is dismissed"
                ),
            )
        effects: list[Effect] = []
        if case.target_key.startswith("held:"):
            effects.extend(await self._publish_held(case))
        for decision in await self.store.decisions_of_case(case.id):
            if decision.automated and decision.action == Action.MUTE and decision.lifted_at is None:
                effects.extend(await self._lift(decision, "case dismissed on review", notify=True))
        closed = await self.store.close_case(
            case.id, Outcome.DISMISSED, moderator.id, self.clock.now_ms()
        )
        await self._audit(f"mod:{moderator.id}", "case.dismiss", case.id, _target(case), reason, {})
        effects.extend(await self._closed(closed or case))
        return effects

    async def _decide(
        self,
        case: Case,
        action: Action,
        subject: Session,
        *,
        facts: str,
        category: Category,
        moderator: Moderator | None,
        minutes: int | None,
    ) -> tuple[Decision, list[Effect]]:
        """Record a decision about a person and carry out its effect; tell them why."""
        now = self.clock.now_ms()
        expires = now + minutes * 60_000 if minutes is not None else None
        if action in (Action.WARN, Action.DELETE_MESSAGE, Action.KICK, Action.REFUSE):
            expires = None
        decision = Decision(
            id=self.ids.code("D"),
            case_id=case.id,
            action=action,
            subject=subject.id,
            subject_key=subject.ip_key or None,
            room=case.room,
            stream=case.stream,
            message_id=case.message_id,
            facts=facts,
            category=category.code,
            automated=moderator is None,
            moderator=moderator.id if moderator is not None else None,
            created_at=now,
            expires_at=expires,
        )
        await self.store.add_decision(decision)
        notice = Publish(
            person_channel(subject.id),
            ev.DecisionNotice(
                decision=self.view(decision, None, subject.lang),
                ban_token=self.ban_token(decision.id) if action == Action.BAN else "",
            ),
        )
        effects: list[Effect] = []
        if action == Action.DELETE_MESSAGE and case.message_id is not None:
            removed = await self.store.delete_message(case.message_id)
            if removed is not None:
                effects.append(
                    Publish(
                        removed.stream,
                        ev.Removed(stream=removed.stream, seq=removed.seq, id=removed.id),
                    )
                )
        if action == Action.MUTE and expires is not None:
            effects.append(
                Control(
                    person_channel(subject.id),
                    SetMute(person=subject.id, until=expires, decision=decision.id),
                )
            )
        effects.append(notice)
        if action in (Action.KICK, Action.BAN) and subject.live:
            reason = errors.Kicked.code if action == Action.KICK else errors.Excluded.code
            effects.extend(await self.chat.end_session(subject, reason=reason))
        return decision, effects

    async def set_room_state(self, slug: str, state: RoomState, reason: str) -> list[Effect]:
        if self.config.room(slug) is None:
            raise errors.RoomUnknown(field="room")
        await self.store.set_room_state(slug, state, reason, self.clock.now_ms())
        return [
            Control(PRESENCE_CHANNEL, RoomStateChanged(room=slug, state=state.value, reason=reason))
        ]

    async def _settle_held(
        self, moderator: Moderator, case: Case, action: Action, facts: str, ground: Category
    ) -> list[Effect]:
        if not case.target_key.startswith("held:"):
            raise errors.DecisionInvalid(
                field="action",
                detail=Text("aucun message retenu dans ce dossier", "no held message in this case"),
            )
        if action == Action.RELEASE:
            return await self._publish_held(case)
        subject = await self.store.get_session(case.subject or "")
        if subject is None:
            return []
        _, effects = await self._decide(
            case,
            Action.REFUSE,
            subject,
            facts=facts,
            category=ground,
            moderator=moderator,
            minutes=None,
        )
        return effects

    async def _publish_held(self, case: Case) -> list[Effect]:
        """Publish a held message now, as its author sent it (if they are still here)."""
        held = next((e for e in await self.store.evidence_of(case.id) if e.kind == "held"), None)
        if held is None:
            return []
        author = await self.store.get_session(str(held.data["author"]))
        if author is None or not author.live:
            return []
        return await self.chat.publish_released(
            author, str(held.data["stream"]), str(held.data["text"]), str(held.data["local_id"])
        )

    async def _closed(self, case: Case) -> list[Effect]:
        """Tell the reporters what became of their case, and the moderators' queues."""
        effects: list[Effect] = [Publish(MOD_CHANNEL, CaseEvent(case=self.summary(case)))]
        outcome = case.outcome.value if case.outcome is not None else ""
        for reporter in {r.reporter for r in await self.store.reports_of(case.id)}:
            effects.append(
                Publish(person_channel(reporter), ev.CaseOutcome(case=case.id, outcome=outcome))
            )
        return effects

    async def _open_case(self, case_id: str) -> Case:
        case = await self.store.get_case(case_id)
        if case is None:
            raise errors.CaseUnknown()
        if case.status != CaseStatus.OPEN:
            raise errors.CaseClosed()
        return case

    # --- appeals ------------------------------------------------------------------------------

    async def appeal(self, decision_id: str, text: str) -> tuple[Appeal, list[Effect]]:
        """Contest a decision (anyone holding its code: the code is the capability)."""
        decision = await self.store.get_decision(decision_id)
        if decision is None or decision.subject is None:
            raise errors.CaseUnknown()
        text = text.strip()
        if not 1 <= len(text) <= APPEAL_MAX:
            raise errors.AppealInvalid(
                field="text",
                detail=Text(f"de 1 à {APPEAL_MAX} caractères", f"1 to {APPEAL_MAX} characters"),
            )
        now = self.clock.now_ms()
        if decision.lifted_at is not None:
            raise errors.AppealNotPossible(
                detail=Text("elle a déjà été levée", "it has already been lifted")
            )
        if now > self._appeal_until(decision):
            raise errors.AppealNotPossible(
                detail=Text("le délai de recours est passé", "the appeal period is over")
            )
        appeal = Appeal(
            id=self.ids.message_id(),
            decision_id=decision.id,
            text=text,
            created_at=now,
            status=AppealStatus.PENDING,
        )
        if not await self.store.add_appeal(appeal):
            raise errors.AppealNotPossible(
                detail=Text("elle a déjà été contestée", "it has already been appealed")
            )
        await self._audit(
            "visitor",
            "appeal.open",
            decision.case_id,
            f"decision:{decision.id}",
            "",
            {"appeal": appeal.id},
        )
        return appeal, [
            Publish(
                MOD_CHANNEL,
                AppealEvent(appeal=appeal.id, decision=decision.id, status=appeal.status.value),
            )
        ]

    async def decide_appeal(
        self, moderator: Moderator, appeal_id: str, *, grant: bool, answer: str
    ) -> list[Effect]:
        appeal = await self.store.get_appeal(appeal_id)
        if appeal is None:
            raise errors.CaseUnknown()
        if appeal.status != AppealStatus.PENDING:
            raise errors.CaseClosed()
        decision = await self.store.get_decision(appeal.decision_id)
        if decision is None:
            raise errors.CaseUnknown()
        if decision.moderator == moderator.id:
            raise errors.SameModerator()
        answer = answer.strip()
        if not FACTS_MIN <= len(answer) <= FACTS_MAX:
            raise errors.DecisionInvalid(
                field="answer",
                detail=Text(
                    f"expliquez la réponse en {FACTS_MIN} à {FACTS_MAX} caractères",
                    f"explain the outcome in {FACTS_MIN} to {FACTS_MAX} characters",
                ),
            )
        now = self.clock.now_ms()
        status = AppealStatus.GRANTED if grant else AppealStatus.REJECTED
        settled = await self.store.decide_appeal(appeal.id, status, moderator.id, now, answer)
        if settled is None:
            raise errors.CaseClosed()
        effects: list[Effect] = []
        if grant:
            effects.extend(await self._lift(decision, "appeal granted"))
        await self._audit(
            f"mod:{moderator.id}",
            "appeal.decide",
            decision.case_id,
            f"decision:{decision.id}",
            answer,
            {"granted": grant},
        )
        current = await self.store.get_decision(decision.id) or decision
        subject = await self.store.get_session(decision.subject or "")
        lang = subject.lang if subject is not None else "fr"
        effects.append(
            Publish(
                person_channel(decision.subject or ""),
                ev.DecisionNotice(decision=self.view(current, settled, lang)),
            )
        )
        effects.append(
            Publish(
                MOD_CHANNEL,
                AppealEvent(appeal=appeal.id, decision=decision.id, status=status.value),
            )
        )
        return effects

    async def _lift(self, decision: Decision, reason: str, *, notify: bool = False) -> list[Effect]:
        """Lift a decision; with ``notify`` the person is also sent the updated statement (an
        appeal sends its own, with the answer)."""
        lifted = await self.store.lift_decision(decision.id, self.clock.now_ms(), reason)
        if lifted is None or decision.subject is None:
            return []
        effects: list[Effect] = []
        if decision.action == Action.MUTE:
            effects.append(
                Control(
                    person_channel(decision.subject),
                    SetMute(person=decision.subject, until=0, decision=decision.id),
                )
            )
        if notify:
            subject = await self.store.get_session(decision.subject)
            lang = subject.lang if subject is not None else "fr"
            effects.append(
                Publish(
                    person_channel(decision.subject),
                    ev.DecisionNotice(decision=self.view(lifted, None, lang)),
                )
            )
        return effects

    def _appeal_until(self, decision: Decision) -> int:
        return decision.created_at + self.config.safety.appeal_days * DAY_MS

    # --- entry --------------------------------------------------------------------------------

    async def check_entry(self, *, ip_key: str, ban_token: str, lang: str = "fr") -> None:
        """Refuse entry to someone banned: by their network or their signed ban cookie."""
        decision_id = self.verify_ban_token(ban_token) if ban_token else None
        ban = await self.store.active_ban(
            person_id=None,
            ip_key=ip_key or None,
            decision_id=decision_id,
            now=self.clock.now_ms(),
        )
        if ban is not None:
            raise errors.Banned(
                decision=ban.id,
                until=until_text(ban.expires_at, lang),
                details={"decision": ban.id, "ban_token": self.ban_token(ban.id)},
            )

    def ban_token(self, decision_id: str) -> str:
        """The signed value of the ban cookie: only this instance can have made it."""
        mac = hmac.new(self.secret, b"ban:" + decision_id.encode(), hashlib.sha256)
        return f"{decision_id}.{mac.hexdigest()[:32]}"

    def verify_ban_token(self, token: str) -> str | None:
        decision_id, _, _ = token.partition(".")
        if not decision_id or not hmac.compare_digest(self.ban_token(decision_id), token):
            return None
        return decision_id

    # --- views --------------------------------------------------------------------------------

    def summary(self, case: Case) -> CaseSummary:
        category = CATEGORIES.get(case.category, CATEGORIES["other"])
        return CaseSummary(
            id=case.id,
            status=case.status.value,
            category=case.category,
            category_label=category.fr,
            severity=case.severity,
            target_kind=case.target_kind.value,
            subject=case.subject,
            subject_name=case.subject_name,
            room=case.room,
            reporters=case.reporters,
            automated=case.automated,
            created_at=case.created_at,
            updated_at=case.updated_at,
            outcome=case.outcome.value if case.outcome is not None else None,
        )

    def view(self, decision: Decision, appeal: Appeal | None, lang: str) -> ev.DecisionView:
        category = CATEGORIES.get(decision.category, CATEGORIES["other"])
        return ev.DecisionView(
            id=decision.id,
            case=decision.case_id,
            action=decision.action.value,
            facts=decision.facts,
            category=category.code,
            category_label=category.label(lang),
            ground=category.ground(lang),
            automated=decision.automated,
            created_at=decision.created_at,
            expires_at=decision.expires_at,
            appeal_until=self._appeal_until(decision),
            appeal=(
                ev.AppealView(
                    status=appeal.status.value,
                    created_at=appeal.created_at,
                    decided_at=appeal.decided_at,
                    answer=appeal.answer,
                )
                if appeal is not None
                else None
            ),
            lifted=decision.lifted_at is not None,
        )

    async def decision_view(self, decision_id: str, lang: str) -> ev.DecisionView:
        decision = await self.store.get_decision(decision_id)
        if decision is None:
            raise errors.CaseUnknown()
        return self.view(decision, await self.store.appeal_of(decision.id), lang)

    async def case_status(self, case_id: str, lang: str) -> dict[str, Any]:
        """What a reporter may see of their case: no personal data."""
        case = await self.store.get_case(case_id)
        if case is None:
            raise errors.CaseUnknown()
        category = CATEGORIES.get(case.category, CATEGORIES["other"])
        return {
            "case": case.id,
            "status": case.status.value,
            "outcome": case.outcome.value if case.outcome is not None else None,
            "category": category.code,
            "category_label": category.label(lang),
            "created_at": case.created_at,
            "decided_at": case.decided_at,
        }

    async def decisions_about(self, person_id: str, lang: str) -> list[ev.DecisionView]:
        """Every decision about this person, oldest first (the page shows those it has not shown
        yet: a decision taken while they were reconnecting is not lost)."""
        decisions = await self.store.decisions_of_subject(person_id, None, 50)
        return [self.view(d, await self.store.appeal_of(d.id), lang) for d in reversed(decisions)]

    async def case_detail(self, case_id: str) -> CaseDetail:
        case = await self.store.get_case(case_id)
        if case is None:
            raise errors.CaseUnknown()
        subject = await self.store.get_session(case.subject) if case.subject else None
        key = subject.ip_key if subject is not None else ""
        history = await self.store.decisions_of_subject(case.subject, key or None, 50)
        same = await self.store.sessions_with_key(key, 20) if key else []
        return CaseDetail(
            case=self.summary(case),
            reports=[_builtins(r) for r in await self.store.reports_of(case.id)],
            evidence=[_builtins(e) for e in await self.store.evidence_of(case.id)],
            decisions=[_builtins(d) for d in await self.store.decisions_of_case(case.id)],
            history=[_builtins(d) for d in history if d.case_id != case.id],
            same_network=[
                {"id": s.id, "name": s.profile.name, "created_at": s.created_at, "live": s.live}
                for s in same
                if s.id != case.subject
            ],
            subject_key=key,
        )

    async def _audit(
        self,
        actor: str,
        action: str,
        case_id: str | None,
        target: str,
        reason: str,
        details: dict[str, Any],
    ) -> None:
        await self.store.audit(
            ts=self.clock.now_ms(),
            actor=actor,
            action=action,
            case_id=case_id,
            target=target,
            reason=reason,
            details=details,
        )

    async def audit(
        self,
        actor: str,
        action: str,
        target: str,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """For actions outside cases (moderator accounts, logins)."""
        await self._audit(actor, action, None, target, reason, details or {})


# --- helpers ---------------------------------------------------------------------------------


def _builtins(value: Any) -> Any:
    out = msgspec.to_builtins(value)
    if isinstance(value, Message) and isinstance(out, dict):
        out.pop("type", None)
    return out


def _profile_evidence(session: Session) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(session.profile)
    data["ip_key"] = session.ip_key
    data["created_at"] = session.created_at
    data["ended_at"] = session.ended_at
    return data


def _involves(stream: str, person: str, viewer: str) -> bool:
    parties = dm_parties(stream)
    if parties is not None:
        return person in parties and viewer in parties
    return stream.startswith("r:")


def _target(case: Case) -> str:
    return case.target_key


def _worst(result: FilterResult) -> Category:
    codes = result.categories or ["other"]
    return min((CATEGORIES.get(c, CATEGORIES["other"]) for c in codes), key=lambda c: c.severity)
