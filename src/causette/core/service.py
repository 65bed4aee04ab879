"""ChatService: the one action layer. Every state change goes through it.

``handle(actor, command)`` checks the rules, persists through the ``Store`` port and returns
effects (replies, publications, subscriptions) for the delivery layer to carry out. It does no
I/O of its own, knows no framework, and reads time from an injected clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from causette import errors
from causette.config import Config, RoomConfig
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import RoomState
from causette.core.directory import Directory, PeopleFilter
from causette.core.effects import (
    LOBBY_CHANNEL,
    PRESENCE_CHANNEL,
    Attach,
    AttachStream,
    CloseConnection,
    Control,
    Detach,
    Effect,
    Gone,
    Here,
    Publish,
    Reply,
    RoomJoin,
    RoomLeave,
    SetHidden,
    Subscribe,
    Unsubscribe,
    person_channel,
    publish_message,
)
from causette.core.identity import (
    check_message_text,
    is_reserved,
    normalize_pseudonym,
    pseudonym_key,
)
from causette.core.models import (
    Gender,
    Message,
    MessageKind,
    NewItem,
    PmPolicy,
    Profile,
    Session,
    dm_parties,
    dm_stream,
    room_slug,
    room_stream,
)
from causette.core.ports import AppendResult, Clock, FullStore
from causette.core.wording import clock_time, seconds, what
from causette.geo import Geo
from causette.ids import IdSource, token_hash
from causette.safety.filters import FilterAction, FilterResult, TextFilter, word_form
from causette.safety.ratelimit import Limiter

if TYPE_CHECKING:
    from causette.core.moderation import ModerationService

TYPING_MIN_INTERVAL_MS = 1000
RECENT_TEXTS = 50  # texts a person sent lately, kept to refuse floods of one text
#: The one empty set of hidden people, shared by everyone who hides nobody.
NOBODY: frozenset[str] = frozenset()


#: Called with a room send's effects, or what failed (``ChatService.start_room_send``).
SendDone = Callable[[list[Effect] | BaseException], None]


@dataclass(frozen=True, slots=True)
class _Accepted:
    """A send that passed the checks that need no store."""

    text: str
    slug: str | None  # None: a private conversation
    now: int
    folded: str
    verdict: FilterResult
    #: The word lists matched and a moderator may need to see it: the full (awaiting) path.
    screened: bool


class Invalid(errors.CausetteError):
    """Several problems with one request (the entry form): reported all at once."""

    code = "invalid"
    status = 422
    fr = "Certains champs sont à corriger."
    en = "Some fields need correcting."

    def __init__(self, problems: Sequence[errors.CausetteError]) -> None:
        super().__init__()
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class EntryForm:
    pseudonym: str
    gender: str
    age: int | None
    postal_code: str
    commune: str
    accept_rules: bool
    lang: str
    #: Keyed hash of the network the form came from, and the signed ban cookie if any.
    ip_key: str = ""
    ban_token: str = ""


@dataclass(slots=True)
class Actor:
    """A session acting through one connection, with the connection's view of its state."""

    session: Session
    conn_id: str
    #: Streams this connection is attached to (rooms joined, private conversations).
    streams: set[str] = field(default_factory=set)
    #: People hidden from this person's lists: those they blocked and those who blocked them.
    #: Replaced, never changed in place: most people hide nobody and share the empty one, and it
    #: goes into a ``Publish`` as it is.
    hidden: frozenset[str] = NOBODY
    watching_site: bool = False
    last_typing_ms: int = 0
    #: Keyed hash of the connection's network (per-network limits), never the address.
    ip_key: str = ""
    #: An active mute: no writing until then (0: none), and its decision code.
    muted_until: int = 0
    mute_decision: str = ""
    #: Recent (time, folded text) pairs, to refuse floods of the same message.
    recent: list[tuple[int, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def lang(self) -> str:
        return self.session.lang


class ChatService:
    def __init__(
        self,
        config: Config,
        store: FullStore,
        clock: Clock,
        ids: IdSource,
        geo: Geo,
        directory: Directory,
        *,
        limiter: Limiter | None = None,
        filters: TextFilter | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.ids = ids
        self.geo = geo
        self.directory = directory
        self.limiter = limiter if limiter is not None else Limiter()
        self.filters = filters if filters is not None else TextFilter([])
        #: Rooms not open (frozen or closed), kept current by RoomStateChanged controls.
        self.room_states: dict[str, tuple[RoomState, str]] = {}
        self._room_info_cache: dict[str, list[ev.RoomInfo]] = {}
        self._room_streams: set[str] = set()  # room streams known to exist in the store
        #: Set by ModerationService when it is created (reports, word-list cases, bans).
        self.moderation: ModerationService | None = None

    # --- entry and sessions -----------------------------------------------------------------

    async def enter(self, form: EntryForm) -> tuple[Session, str]:
        """Create a session from the entry form; return it and the cookie token."""
        site = self.config.site
        problems: list[errors.CausetteError] = []
        name = key = ""
        try:
            name = normalize_pseudonym(form.pseudonym)
            key = pseudonym_key(name)
            if is_reserved(key, site.reserved_pseudonyms, site.reserved_prefixes):
                raise errors.PseudonymReserved(field="pseudonym")
            if self.filters.check(name).action == FilterAction.BLOCK:
                raise errors.PseudonymReserved(field="pseudonym")
            # Checked now so that it is reported with the other problems; the insert below
            # still decides if two people race for the same name.
            if await self.store.pseudonym_in_use(key):
                raise errors.PseudonymTaken(field="pseudonym")
        except errors.CausetteError as exc:
            problems.append(exc)
        try:
            gender = Gender(form.gender)
        except ValueError:
            problems.append(errors.GenderInvalid(field="gender"))
        if form.age is None or not 0 < form.age <= 120:
            problems.append(errors.AgeInvalid(field="age", min=site.min_age, max=site.max_age))
        elif form.age < site.min_age:
            problems.append(errors.AgeTooYoung(field="age", min=site.min_age))
        elif form.age > site.max_age:
            problems.append(errors.AgeInvalid(field="age", min=site.min_age, max=site.max_age))
        communes = self.geo.postal(form.postal_code)
        place = None
        if not communes:
            problems.append(errors.PostalCodeInvalid(field="postal_code"))
        elif form.commune:
            place = self.geo.commune(form.postal_code, form.commune)
            if place is None:
                problems.append(errors.CommuneInvalid(field="commune"))
        elif len(communes) == 1:
            place = communes[0]
        else:
            problems.append(errors.CommuneInvalid(field="commune"))
        if not form.accept_rules:
            problems.append(errors.RulesNotAccepted(field="accept_rules"))
        if problems:
            raise Invalid(problems)
        if self.moderation is not None:
            await self.moderation.check_entry(
                ip_key=form.ip_key, ban_token=form.ban_token, lang=form.lang
            )
        safety = self.config.safety
        if form.ip_key and not self.limiter.take(
            "session-net:" + form.ip_key,
            safety.sessions_per_hour_per_network / 3600,
            safety.session_burst_per_network,
            self.clock.now_ms(),
        ):
            raise errors.TooManySessions()
        assert place is not None
        assert form.age is not None
        now = self.clock.now_ms()
        token = self.ids.token()
        person_id = self.ids.person_id()
        session = Session(
            id=person_id,
            token_hash=token_hash(token),
            profile=Profile(
                id=person_id,
                name=name,
                gender=gender,
                age=form.age,
                commune=place.name,
                dep=place.dep,
                region=place.region,
            ),
            pseudonym_key=key,
            postal_code=place.postal_code,
            commune_code=place.code,
            lang=form.lang if form.lang in ("fr", "en") else site.default_lang,
            pm_policy=PmPolicy.EVERYONE,
            created_at=now,
            last_seen=now,
            ip_key=form.ip_key,
        )
        try:
            await self.store.create_session(session)
        except errors.PseudonymTaken as exc:
            # The store does not know which form field the key came from: name it here.
            raise Invalid([errors.PseudonymTaken(field="pseudonym")]) from exc
        return session, token

    async def session_for_token(self, token: str) -> Session | None:
        if not token or len(token) > 100:
            return None
        return await self.store.session_by_token(token_hash(token))

    async def end_session(self, session: Session, *, reason: str) -> list[Effect]:
        """End a session ("Quitter" or inactivity): leave its rooms, free its pseudonym, close
        its connections everywhere. ``reason`` is the ``bye`` code sent to its connections."""
        if not await self.store.end_session(session.id, self.clock.now_ms()):
            return []
        effects: list[Effect] = []
        rooms = await self.store.rooms_of(session.id)
        for slug in rooms:
            effects.extend(await self._leave_room(session, slug))
        effects.extend(self.went_offline(session, rooms_left=frozenset(rooms)))
        # People in a conversation with this person learn it can no longer be answered.
        ended = dataclasses.replace(session, ended_at=self.clock.now_ms())
        for conv in await self.store.conversations_of(session.id):
            effects.append(
                Publish(
                    person_channel(conv.other),
                    ev.Conversation(conv=self._conv_info(conv.stream, ended, None)),
                )
            )
        effects.append(
            Control(
                person_channel(session.id),
                CloseConnection(person=session.id, code=reason, reconnect=False),
            )
        )
        return effects

    async def end_idle_sessions(self, connected: set[str]) -> list[Effect]:
        """End sessions without a connection for longer than the idle timeout."""
        cutoff = self.clock.now_ms() - self.config.sessions.idle_timeout_minutes * 60_000
        effects: list[Effect] = []
        for person_id in await self.store.idle_sessions(cutoff, limit=500):
            if person_id in connected:
                continue
            session = await self.store.get_session(person_id)
            if session is not None and session.live:
                effects.extend(await self.end_session(session, reason="not_authenticated"))
        return effects

    async def purge(self) -> tuple[int, int]:
        """Delete expired messages and long-ended sessions; return both counts."""
        now = self.clock.now_ms()
        messages = 0
        while True:
            n = await self.store.purge_expired(now, limit=1000)
            messages += n
            if n < 1000:
                break
        sessions = await self.store.purge_ended_sessions(now - self.config.lifetime_ms, limit=1000)
        return messages, sessions

    # --- connection lifecycle ---------------------------------------------------------------

    async def connect(self, actor: Actor, hello: cmd.Hello) -> list[Effect]:
        """A connection said hello: welcome it and attach it to each of its streams."""
        if hello.v != cmd.PROTOCOL_VERSION:
            raise errors.BadField(
                field="v", detail=f"unsupported protocol version {hello.v}, expected 1"
            )
        me = actor.session
        blocked = await self.store.blocked_by(me.id)
        blockers = await self.store.blockers_of(me.id)
        actor.hidden = frozenset((*blocked, *blockers)) or NOBODY
        decisions: list[ev.DecisionView] = []
        if self.moderation is not None:
            decisions = await self.moderation.decisions_about(me.id, me.lang)
            mute = await self.store.active_mute(me.id, self.clock.now_ms())
            if mute is not None and mute.expires_at is not None:
                actor.muted_until, actor.mute_decision = mute.expires_at, mute.id
        joined = await self.store.rooms_of(me.id)
        conversations = await self._conversations(me.id)
        blocked_people = await self._person_refs(blocked)
        welcome = ev.Welcome(
            v=cmd.PROTOCOL_VERSION,
            me=me.profile,
            prefs=ev.Prefs(pm_policy=me.pm_policy, lang=me.lang),
            rooms=self._room_infos(me.lang),
            joined=joined,
            conversations=conversations,
            blocked=blocked_people,
            limits=ev.Limits(
                max_chars=self.config.messages.max_chars,
                lifetime_ms=self.config.lifetime_ms,
                max_rooms=self.config.sessions.max_rooms,
                max_frame_bytes=self.config.limits.max_frame_bytes,
            ),
            now=self.clock.now_ms(),
            online=self.directory.online_count(),
            decisions=decisions,
        )
        effects: list[Effect] = [Reply(welcome)]
        for stream in [room_stream(slug) for slug in joined] + [c.stream for c in conversations]:
            effects.append(Attach(stream, hello.streams.get(stream)))
        return effects

    def came_online(self, actor: Actor, rooms: Sequence[str]) -> list[Effect]:
        profile = actor.session.profile
        hidden = actor.hidden
        effects: list[Effect] = [
            Control(PRESENCE_CHANNEL, Here(profile=profile, rooms=list(rooms)))
        ]
        for slug in rooms:
            effects.append(
                Publish(room_stream(slug), ev.Members(room=slug, add=[profile]), exclude=hidden)
            )
        effects.append(Publish(LOBBY_CHANNEL, ev.Presence(add=[profile]), exclude=hidden))
        return effects

    def went_offline(
        self, session: Session, *, rooms_left: frozenset[str] = frozenset()
    ) -> list[Effect]:
        """Presence effects of a person no longer connected. ``rooms_left``: rooms whose
        ``members`` removal was already published (the person left them)."""
        rooms = self.directory.rooms_of(session.id) - rooms_left
        effects: list[Effect] = [Control(PRESENCE_CHANNEL, Gone(person=session.id))]
        for slug in sorted(rooms):
            effects.append(Publish(room_stream(slug), ev.Members(room=slug, remove=[session.id])))
        effects.append(Publish(LOBBY_CHANNEL, ev.Presence(remove=[session.id])))
        return effects

    # --- commands ---------------------------------------------------------------------------

    async def handle(self, actor: Actor, command: cmd.AnyCommand) -> list[Effect]:
        match command:
            case cmd.Send():
                return await self._send(actor, command)
            case cmd.Typing():
                return self._typing(actor, command)
            case cmd.Read():
                return await self._read(actor, command)
            case cmd.Join():
                return await self._join(actor, command.room)
            case cmd.Leave():
                return await self._leave(actor, command.room)
            case cmd.History():
                return await self._history(actor, command)
            case cmd.People():
                return self._people(actor, command)
            case cmd.OpenDm():
                return await self._open_dm_command(actor, command.person)
            case cmd.Block():
                return await self._block(actor, command.person)
            case cmd.Unblock():
                return await self._unblock(actor, command.person)
            case cmd.SetPrefs():
                return await self._prefs(actor, command)
            case cmd.Report():
                if self.moderation is None:
                    raise errors.InternalError()
                return await self.moderation.report(actor, command)
            case cmd.Hello():
                raise errors.AlreadyHello()
        raise errors.UnknownType(type=type(command).__name__)  # pragma: no cover - exhaustive

    def start_room_send(
        self, actor: Actor, command: cmd.Send, done: SendDone
    ) -> Coroutine[Any, Any, list[Effect]] | None:
        """A room message on the message path (decision 8): no task, no await. The checks run
        now and raise as ``handle`` would. Then either the message is on its way to the store
        and ``done`` will get the effects, or the exception, in the loop turn of the store's
        answer; or, for a text the word lists want a moderator to see, the coroutine returned
        finishes the send as ``handle`` does, and ``done`` is never called."""
        accepted = self._accept_send(actor, command)
        if accepted.slug is None or accepted.screened:
            return self._send_accepted(actor, command, accepted)
        text, local_id = accepted.text, command.local_id
        item = self._new_item(command.stream, "text", actor.session, text, local_id)

        def stored(result: AppendResult) -> None:
            if isinstance(result, BaseException):
                done(result)
                return
            try:
                effects = self._sent(actor, command, accepted, result[0], result[1])
            except errors.CausetteError as error:
                done(error)
                return
            done(effects)

        self.store.append_then(item, stored)
        return None

    async def _send(self, actor: Actor, command: cmd.Send) -> list[Effect]:
        return await self._send_accepted(actor, command, self._accept_send(actor, command))

    def _accept_send(self, actor: Actor, command: cmd.Send) -> _Accepted:
        """Every check of a send that needs no store, in the order people meet them; the text
        is counted for floods as soon as it passes (sends in flight together count too)."""
        text = check_message_text(command.text, self.config.messages.max_chars)
        stream = command.stream
        now = self.clock.now_ms()
        slug = room_slug(stream)
        if slug is not None:
            if stream not in actor.streams:
                if self.config.room(slug) is None:
                    raise errors.RoomUnknown(field="stream")
                raise errors.RoomNotJoined(field="stream")
            state, _ = self.room_states.get(slug, (RoomState.OPEN, ""))
            if state == RoomState.FROZEN:
                raise errors.RoomFrozen(field="stream")
            if state == RoomState.CLOSED:
                raise errors.RoomClosed(field="stream")
        folded = word_form(text)  # once: for floods of one text and for the word lists
        self._check_may_write(actor, folded, now)
        actor.recent.append((now, folded))
        verdict = self.filters.check(text, folded)
        screened = verdict.action is not None and self.moderation is not None
        return _Accepted(text, slug, now, folded, verdict, screened)

    async def _send_accepted(
        self, actor: Actor, command: cmd.Send, accepted: _Accepted
    ) -> list[Effect]:
        stream = command.stream
        effects: list[Effect] = []
        other: str | None = None
        verdict, text, local_id = accepted.verdict, accepted.text, command.local_id
        held = verdict.action in (FilterAction.BLOCK, FilterAction.HOLD)
        held = held and self.moderation is not None
        if accepted.slug is None:
            other = self._dm_other(actor, stream)
            if stream not in actor.streams:
                effects.extend(await self._open_dm(actor, other, stream))
            elif other in actor.hidden:
                raise errors.PrivateMessageRefused(field="stream")
            elif held:  # nothing is appended, so the append cannot check the other person
                await self._check_can_still_write(actor, other)
        if held:
            assert self.moderation is not None
            effects.extend(await self.moderation.screen(actor, stream, text, local_id, verdict))
            return effects
        # In a conversation the append checks that the other session still lives, and raises
        # the author's read mark to the message, in its own write: no round trip for either.
        item = self._new_item(stream, "text", actor.session, text, local_id, other)
        try:
            msg, dup = await self.store.append(item)
        except errors.PersonUnknown:
            raise errors.PersonUnknown(field="stream") from None
        effects.extend(self._sent(actor, command, accepted, msg, dup))
        if dup:
            return effects
        if verdict.action == FilterAction.FLAG and self.moderation is not None:
            effects.extend(await self.moderation.flagged(actor, msg, verdict))
        if other is not None and msg.seq == 1:
            # the conversation's first message: the other person learns of it
            effects.append(
                Publish(
                    person_channel(other),
                    ev.Conversation(
                        conv=ev.ConvInfo(
                            stream=stream,
                            other=actor.session.profile,
                            unread=0,
                            last_seq=0,
                            last_ts=0,
                        )
                    ),
                )
            )
            effects.append(
                Control(person_channel(other), AttachStream(person=other, stream=stream))
            )
        return effects

    @staticmethod
    def _sent(
        actor: Actor, command: cmd.Send, accepted: _Accepted, msg: Message, dup: bool
    ) -> list[Effect]:
        """The stored message's acknowledgement and, unless it was a retry, its publication."""
        stream = command.stream
        if dup and msg.stream != stream:
            raise errors.BadField(
                field="local_id", detail="local_id already used for another message"
            )
        ack = ev.Ack(
            local_id=command.local_id, stream=stream, seq=msg.seq, id=msg.id, ts=msg.ts, dup=dup
        )
        if dup:
            actor.recent.remove((accepted.now, accepted.folded))  # a retry is not another text
            return [Reply(ack)]
        return [Reply(ack), publish_message(msg)]

    def _check_may_write(self, actor: Actor, folded: str, now: int) -> None:
        """Mutes, message rates (per person, slower for new sessions, per network) and floods
        of the same text. All in memory: nothing here touches the store."""
        if actor.muted_until > now:
            raise errors.Muted(
                decision=actor.mute_decision,
                until=clock_time(actor.muted_until),
                details={"decision": actor.mute_decision, "until": actor.muted_until},
            )
        safety = self.config.safety
        limiter = self.limiter
        # One bucket per regime: a bucket keeps the rate it was made with.
        if self._is_new(actor, now):
            rate, burst = safety.new_session_message_rate, safety.new_session_message_burst
            key = "msg-new:" + actor.id
        else:
            rate, burst = safety.message_rate, safety.message_burst
            key = "msg:" + actor.id
        if not limiter.take(key, rate, burst, now):
            raise errors.RateLimited(
                what=what("messages", actor.lang),
                seconds=seconds(limiter.retry_after_ms(key)),
            )
        if actor.ip_key:
            net = "msg-net:" + actor.ip_key
            if not limiter.take(
                net, safety.network_message_rate, safety.network_message_burst, now
            ):
                raise errors.RateLimited(
                    what=what("messages", actor.lang),
                    seconds=seconds(limiter.retry_after_ms(net)),
                )
        window = now - safety.duplicate_window_seconds * 1000
        recent = actor.recent  # in time order: the expired ones are at the front
        expired = 0
        while expired < len(recent) and recent[expired][0] < window:
            expired += 1
        del recent[: max(expired, len(recent) - RECENT_TEXTS)]
        if [x for _, x in recent].count(folded) >= safety.duplicate_max:
            raise errors.DuplicateMessage(field="text")

    def _is_new(self, actor: Actor, now: int) -> bool:
        return now - actor.session.created_at < self.config.safety.new_session_minutes * 60_000

    async def publish_released(
        self, author: Session, stream: str, text: str, local_id: str
    ) -> list[Effect]:
        """Publish a message a moderator released after holding it (the author is told by the
        message appearing, with its original local id so the page replaces its held copy)."""
        msg, dup = await self._append(stream, "text", author, text, local_id)
        if dup:
            return []
        ack = ev.Ack(local_id=local_id, stream=stream, seq=msg.seq, id=msg.id, ts=msg.ts)
        return [publish_message(msg), Publish(person_channel(author.id), ack)]

    def _typing(self, actor: Actor, command: cmd.Typing) -> list[Effect]:
        parties = dm_parties(command.stream)
        if command.stream not in actor.streams or parties is None:
            raise errors.StreamUnknown(field="stream")
        if any(p in actor.hidden for p in parties):
            return []  # blocked either way: the other person must not see them typing
        now = self.clock.now_ms()
        if now - actor.last_typing_ms < TYPING_MIN_INTERVAL_MS:
            return []  # a typing notice is a hint: extra ones are dropped silently
        actor.last_typing_ms = now
        notice = ev.TypingNotice(stream=command.stream, person=actor.id)
        return [Publish(command.stream, notice, exclude=frozenset({actor.id}))]

    async def _read(self, actor: Actor, command: cmd.Read) -> list[Effect]:
        if command.stream not in actor.streams:
            raise errors.StreamUnknown(field="stream")
        if dm_parties(command.stream) is not None:
            await self.store.mark_read(actor.id, command.stream, command.seq)
        return []

    async def _history(self, actor: Actor, command: cmd.History) -> list[Effect]:
        if command.stream not in actor.streams:
            raise errors.StreamUnknown(field="stream")
        start = max(0, command.before - command.limit - 1)
        items = [
            m
            for m in await self.store.read(command.stream, start, command.limit + 1)
            if m.seq < command.before
        ][-command.limit :]
        first = await self.store.first_seq(command.stream)
        more = bool(items) and first is not None and first < items[0].seq
        return [Reply(ev.HistoryPage(stream=command.stream, items=items, more=more))]

    async def _join(self, actor: Actor, slug: str) -> list[Effect]:
        room = self._room(slug)
        min_age = self.config.room_min_age(room)
        if actor.session.profile.age < min_age:
            raise errors.RoomAgeRestricted(field="room", min=min_age)
        stream = room_stream(slug)
        if stream in actor.streams:
            return [Reply(ev.Joined(room=slug))]
        if self.room_states.get(slug, (RoomState.OPEN, ""))[0] == RoomState.CLOSED:
            raise errors.RoomClosed(field="room")
        safety = self.config.safety
        if not self.limiter.take(
            "join:" + actor.id, safety.joins_per_minute / 60, safety.join_burst, self.clock.now_ms()
        ):
            raise errors.RateLimited(
                what=what("joins", actor.lang),
                seconds=seconds(self.limiter.retry_after_ms("join:" + actor.id)),
            )
        joined = await self.store.rooms_of(actor.id)
        if slug not in joined and len(joined) >= self.config.sessions.max_rooms:
            raise errors.TooManyRooms(field="room", max=self.config.sessions.max_rooms)
        effects: list[Effect] = [Reply(ev.Joined(room=slug))]
        if await self.store.add_member(slug, actor.id, self.clock.now_ms()):
            if stream not in self._room_streams:  # streams are never deleted: once is enough
                await self.store.ensure_stream(stream, self.clock.now_ms())
                self._room_streams.add(stream)
            msg, _ = await self._append(stream, "join", actor.session, "", None)
            effects.append(Attach(stream))
            effects.append(publish_message(msg))
            effects.append(
                Publish(
                    stream,
                    ev.Members(room=slug, add=[actor.session.profile]),
                    exclude=actor.hidden,
                )
            )
            effects.append(Control(PRESENCE_CHANNEL, RoomJoin(person=actor.id, room=slug)))
        else:
            effects.append(Attach(stream))
        return effects

    async def _leave(self, actor: Actor, slug: str) -> list[Effect]:
        self._room(slug)
        stream = room_stream(slug)
        if stream not in actor.streams:
            raise errors.RoomNotJoined(field="room")
        effects: list[Effect] = [Reply(ev.Left(room=slug)), Detach(stream)]
        effects.extend(await self._leave_room(actor.session, slug))
        return effects

    async def _leave_room(self, session: Session, slug: str) -> list[Effect]:
        if not await self.store.remove_member(slug, session.id):
            return []
        stream = room_stream(slug)
        msg, _ = await self._append(stream, "leave", session, "", None)
        return [
            publish_message(msg),
            Publish(stream, ev.Members(room=slug, remove=[session.id])),
            Control(PRESENCE_CHANNEL, RoomLeave(person=session.id, room=slug)),
        ]

    def _people(self, actor: Actor, command: cmd.People) -> list[Effect]:
        if command.scope == "room":
            self._room(command.room)
        flt = PeopleFilter(
            scope=command.scope,
            room=command.room,
            gender=command.gender,
            age_band=command.age_band,
            dep=command.dep,
            region=command.region,
        )
        items, total = self.directory.query(
            flt,
            hidden=actor.hidden,
            near=actor.session.profile if command.near else None,
            limit=command.limit,
        )
        effects: list[Effect] = [
            Reply(ev.PeopleList(scope=command.scope, room=command.room, items=items, total=total))
        ]
        watch_site = command.scope == "site" and command.watch
        if watch_site and not actor.watching_site:
            actor.watching_site = True
            effects.append(Subscribe(LOBBY_CHANNEL))
        elif not watch_site and actor.watching_site:
            actor.watching_site = False
            effects.append(Unsubscribe(LOBBY_CHANNEL))
        return effects

    async def _open_dm_command(self, actor: Actor, person: str) -> list[Effect]:
        if person == actor.id:
            raise errors.PrivateMessageSelf(field="person")
        stream = dm_stream(actor.id, person)
        if stream in actor.streams:
            conv = await self.store.get_conversation(actor.id, stream)
            other = await self.store.get_session(person)
            if conv is None or other is None:  # pragma: no cover - attached implies both exist
                raise errors.PersonUnknown(field="person")
            return [Reply(ev.Conversation(conv=self._conv_info(conv.stream, other, conv)))]
        return await self._open_dm(actor, person, stream)

    async def _open_dm(self, actor: Actor, other_id: str, stream: str) -> list[Effect]:
        """Check that the actor may write to ``other_id`` and open the conversation for them."""
        if other_id == actor.id:
            raise errors.PrivateMessageSelf(field="person")
        # Three independent reads asked together: on SQLite the store's thread answers them
        # in one hand-off, which costs more than the reads (decision 14).
        other, blocked, conv = await asyncio.gather(
            self.store.get_session(other_id),
            self.store.is_blocked_either_way(actor.id, other_id),
            self.store.get_conversation(other_id, stream),
        )
        if other is None or not other.live:
            raise errors.PersonUnknown(field="person")
        if other_id in actor.hidden or blocked:
            raise errors.PrivateMessageRefused(field="person")
        now = self.clock.now_ms()
        if conv is None or conv.opened_by != other_id:
            await self._check_policy(actor, other)
            await self._check_new_session_pm(actor, other_id, now)
            safety = self.config.safety
            key = "conv:" + actor.id
            if conv is None and not self.limiter.take(
                key, safety.conversations_per_hour / 3600, safety.conversation_burst, now
            ):
                raise errors.RateLimited(
                    what=what("conversations", actor.lang),
                    seconds=seconds(self.limiter.retry_after_ms(key)),
                )
        mine = await self.store.open_conversation(stream, actor.id, other_id, now)  # and its stream
        return [
            Reply(ev.Conversation(conv=self._conv_info(stream, other, mine))),
            Attach(stream),
        ]

    async def _check_new_session_pm(self, actor: Actor, other_id: str, now: int) -> None:
        """Slow mode: a new session writes privately only to people it talked with in a room
        (both wrote in a room they share) or who wrote to it first."""
        if not self._is_new(actor, now):
            return
        rooms = [s for s in actor.streams if s.startswith("r:")]
        since = actor.session.created_at
        mine = await self.store.posted_in(actor.id, rooms, since) if rooms else set()
        if mine and await self.store.posted_in(other_id, sorted(mine), since):
            return
        raise errors.NewSessionPrivateMessage(
            field="person", minutes=self.config.safety.new_session_minutes
        )

    async def _check_policy(self, actor: Actor, other: Session) -> None:
        policy = other.pm_policy
        if policy == PmPolicy.EVERYONE:
            return
        if policy == PmPolicy.SHARED_ROOM:
            mine = set(await self.store.rooms_of(actor.id))
            if mine.intersection(await self.store.rooms_of(other.id)):
                return
        raise errors.PrivateMessageRefused(field="person")

    async def _check_can_still_write(self, actor: Actor, other_id: str) -> None:
        """An open conversation stays writable while the other session lives and no block."""
        if other_id in actor.hidden:
            raise errors.PrivateMessageRefused(field="stream")
        other = await self.store.get_session(other_id)
        if other is None or not other.live:
            raise errors.PersonUnknown(field="stream")

    async def _block(self, actor: Actor, person: str) -> list[Effect]:
        if person == actor.id:
            raise errors.BlockSelf(field="person")
        if await self.store.get_session(person) is None:
            raise errors.PersonUnknown(field="person")
        blocked = await self.store.blocked_by(actor.id)
        if person not in blocked and len(blocked) >= self.config.sessions.max_blocks:
            raise errors.TooManyBlocks(field="person", max=self.config.sessions.max_blocks)
        await self.store.block(actor.id, person, self.clock.now_ms())
        actor.hidden |= {person}
        return [
            Reply(
                ev.Blocked(people=await self._person_refs(await self.store.blocked_by(actor.id)))
            ),
            Reply(ev.Presence(remove=[person])),
            Control(person_channel(person), SetHidden(person=person, other=actor.id, hidden=True)),
        ]

    async def _unblock(self, actor: Actor, person: str) -> list[Effect]:
        await self.store.unblock(actor.id, person)
        still_hidden = await self.store.is_blocked_either_way(actor.id, person)
        if not still_hidden:
            actor.hidden -= {person}
        return [
            Reply(
                ev.Blocked(people=await self._person_refs(await self.store.blocked_by(actor.id)))
            ),
            Control(
                person_channel(person),
                SetHidden(person=person, other=actor.id, hidden=still_hidden),
            ),
        ]

    async def _prefs(self, actor: Actor, command: cmd.SetPrefs) -> list[Effect]:
        session = actor.session
        policy = command.pm_policy or session.pm_policy
        lang = command.lang or session.lang
        if (policy, lang) != (session.pm_policy, session.lang):
            await self.store.set_prefs(session.id, policy, lang)
            actor.session = dataclasses.replace(session, pm_policy=policy, lang=lang)
        return [Reply(ev.Prefs(pm_policy=policy, lang=lang))]

    # --- helpers ----------------------------------------------------------------------------

    def _room(self, slug: str) -> RoomConfig:
        room = self.config.room(slug)
        if room is None:
            raise errors.RoomUnknown(field="room")
        return room

    def _dm_other(self, actor: Actor, stream: str) -> str:
        parties = dm_parties(stream)
        if parties is None or actor.id not in parties:
            raise errors.StreamUnknown(field="stream")
        a, b = parties
        if a == b:
            raise errors.PrivateMessageSelf(field="stream")
        if dm_stream(a, b) != stream:
            raise errors.StreamUnknown(field="stream")
        return b if a == actor.id else a

    async def _append(
        self, stream: str, kind: MessageKind, author: Session, text: str, local_id: str | None
    ) -> tuple[Message, bool]:
        return await self.store.append(self._new_item(stream, kind, author, text, local_id))

    def _new_item(
        self,
        stream: str,
        kind: MessageKind,
        author: Session,
        text: str,
        local_id: str | None,
        recipient: str | None = None,
    ) -> NewItem:
        now = self.clock.now_ms()
        return NewItem(
            stream=stream,
            id=self.ids.message_id(),
            kind=kind,
            author=author.id,
            name=author.profile.name,
            text=text,
            ts=now,
            expires_at=now + self.config.lifetime_ms,
            local_id=local_id,
            read_by_author=recipient is not None,
            recipient=recipient,
        )

    def _room_infos(self, lang: str) -> list[ev.RoomInfo]:
        counts = self.directory.counts()
        states = self.room_states
        out = []
        for info in self._static_room_infos(lang):
            count = counts.get(info.slug, 0)
            state = states.get(info.slug)
            if state is not None:
                info = msgspec.structs.replace(
                    info, count=count, state=state[0].value, state_reason=state[1]
                )
            elif count:
                info = msgspec.structs.replace(info, count=count)
            out.append(info)
        return out

    def _static_room_infos(self, lang: str) -> list[ev.RoomInfo]:
        """What the configuration says of each room, in ``lang``: built once per language
        (a welcome lists every room)."""
        infos = self._room_info_cache.get(lang)
        if infos is None:
            english = lang == "en"
            infos = self._room_info_cache[lang] = [
                ev.RoomInfo(
                    slug=r.slug,
                    name=(r.name_en or r.name) if english else r.name,
                    description=(r.description_en or r.description) if english else r.description,
                    rules=(r.rules_en or r.rules) if english else r.rules,
                    min_age=self.config.room_min_age(r),
                    adult=r.adult,
                    regions=list(r.regions),
                    count=0,
                    state=RoomState.OPEN.value,
                    state_reason="",
                )
                for r in self.config.rooms
            ]
        return infos

    def room_infos(self, lang: str) -> list[ev.RoomInfo]:
        return self._room_infos(lang)

    async def _conversations(self, person_id: str) -> list[ev.ConvInfo]:
        states = [
            c
            for c in await self.store.conversations_of(person_id)
            if c.opened_by == person_id or c.last_seq > 0
        ]
        others = {s.id: s for s in await self.store.get_sessions([c.other for c in states])}
        out: list[ev.ConvInfo] = []
        for c in states:
            other = others.get(c.other)
            if other is not None:
                out.append(self._conv_info(c.stream, other, c))
        return out

    @staticmethod
    def _conv_info(stream: str, other: Session, state: object | None) -> ev.ConvInfo:
        from causette.core.models import ConversationState

        unread = last_seq = last_ts = 0
        if isinstance(state, ConversationState):
            unread, last_seq, last_ts = state.unread, state.last_seq, state.last_ts
        return ev.ConvInfo(
            stream=stream,
            other=other.profile,
            unread=unread,
            last_seq=last_seq,
            last_ts=last_ts,
            gone=not other.live,
        )

    async def _person_refs(self, ids: Sequence[str]) -> list[ev.PersonRef]:
        if not ids:
            return []
        sessions = {s.id: s for s in await self.store.get_sessions(ids)}
        return [ev.PersonRef(id=i, name=sessions[i].profile.name) for i in ids if i in sessions]
