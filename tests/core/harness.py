"""A harness for the core with no I/O: ChatService over MemoryStore, FakeClock, SequentialIds and a
Directory, with connections simulated the way ``web.node.Node`` carries out effects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import pytest

from causette import errors
from causette.config import Config, RoomConfig, default_rooms, load_config
from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.cases import Moderator, Role, RoomState
from causette.core.clock import FakeClock
from causette.core.directory import Directory
from causette.core.effects import (
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
    RoomStateChanged,
    SetHidden,
    SetMute,
    Subscribe,
    Unsubscribe,
)
from causette.core.models import Session, dm_stream
from causette.core.moderation import ModerationService
from causette.core.service import Actor, ChatService, EntryForm, Invalid
from causette.geo import Geo
from causette.ids import SequentialIds
from causette.safety.filters import TextFilter
from causette.store.memory import MemoryStore
from tests.support.config import with_safety

#: A room only people aged 25 and over may join.
OVER_25 = RoomConfig(slug="plus-25", name="25 ans et plus", min_age=25)

T = TypeVar("T")


@dataclass
class Person:
    """A visitor: their session and, while connected, the actor of their one connection."""

    session: Session
    token: str
    actor: Actor | None = None
    #: Plain channels the connection subscribed to (``lobby``).
    channels: set[str] = field(default_factory=set)
    #: ``bye`` codes the connection received (CloseConnection controls) before it was closed.
    closed_with: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def a(self) -> Actor:
        assert self.actor is not None, "not connected"
        return self.actor


class Harness:
    def __init__(self, config: Config, geo: Geo) -> None:
        self.config = config
        self.clock = FakeClock()
        self.ids = SequentialIds()
        self.store = MemoryStore(self.ids)
        self.directory = Directory()
        self.filters = TextFilter.load(config.safety.wordlists, builtin=True)
        self.service = ChatService(
            config, self.store, self.clock, self.ids, geo, self.directory, filters=self.filters
        )
        self.moderation = ModerationService(
            config, self.store, self.clock, self.ids, self.service, secret=b"k" * 32
        )
        self.by_id: dict[str, Person] = {}
        self.published: list[Publish] = []
        self.controls: list[Control] = []
        self._conn = 0

    # --- entering and connecting ----------------------------------------------------------

    def form(self, pseudonym: str = "Camille", **fields: Any) -> EntryForm:
        values: dict[str, Any] = {
            "pseudonym": pseudonym,
            "gender": "f",
            "age": 30,
            "postal_code": "75011",
            "commune": "",
            "accept_rules": True,
            "lang": "fr",
            # Each person on a network of their own unless a test says otherwise.
            "ip_key": f"net-{pseudonym}",
        }
        values.update(fields)
        return EntryForm(**values)

    async def enter(self, pseudonym: str, **fields: Any) -> Person:
        session, token = await self.service.enter(self.form(pseudonym, **fields))
        person = Person(session, token)
        self.by_id[session.id] = person
        return person

    async def refusals(self, pseudonym: str, **fields: Any) -> list[tuple[str, str | None]]:
        """The (code, field) of every problem the entry form is refused with."""
        with pytest.raises(Invalid) as info:
            await self.service.enter(self.form(pseudonym, **fields))
        return [(p.code, p.field) for p in info.value.problems]

    async def connect(self, person: Person, hello: cmd.Hello | None = None) -> list[Effect]:
        """Open a connection and say hello, as ``Node.greet`` does."""
        session = await self.store.get_session(person.id)
        assert session is not None
        assert session.live
        person.session = session
        self._conn += 1
        person.actor = Actor(session=session, conn_id=f"c{self._conn}", ip_key=session.ip_key)
        person.channels = set()
        effects = await self.service.connect(person.actor, hello or cmd.Hello())
        self.apply(person, effects)
        if not self.directory.is_here(person.id):
            rooms = sorted(s[2:] for s in person.a.streams if s.startswith("r:"))
            came = self.service.came_online(person.a, rooms)
            self.apply(person, came)
            effects = effects + came
        return effects

    async def visitor(self, pseudonym: str, **fields: Any) -> Person:
        person = await self.enter(pseudonym, **fields)
        await self.connect(person)
        return person

    def disconnect(self, person: Person) -> None:
        person.actor = None

    # --- commands -------------------------------------------------------------------------

    async def do(self, person: Person, command: cmd.AnyCommand) -> list[Effect]:
        effects = await self.service.handle(person.a, command)
        self.apply(person, effects)
        return effects

    async def fails(self, person: Person, command: cmd.AnyCommand) -> errors.CausetteError:
        with pytest.raises(errors.CausetteError) as info:
            await self.do(person, command)
        return info.value

    async def join(self, person: Person, room: str) -> list[Effect]:
        return await self.do(person, cmd.Join(room=room))

    async def send(
        self, person: Person, stream: str, text: str, local_id: str | None = None
    ) -> ev.Ack:
        self._conn += 1
        effects = await self.do(
            person, cmd.Send(stream=stream, text=text, local_id=local_id or f"l{self._conn}")
        )
        return one(replies(effects, ev.Ack))

    async def people(self, person: Person, **filters: Any) -> ev.PeopleList:
        """A people query that does not change what the connection watches."""
        filters.setdefault("watch", False)
        return one(replies(await self.do(person, cmd.People(**filters)), ev.PeopleList))

    async def names(self, person: Person, **filters: Any) -> list[str]:
        return [p.name for p in (await self.people(person, **filters)).items]

    async def moderator(self, login: str, role: Role = Role.MODERATOR) -> Moderator:
        """A moderator account (authentication is tested with the accounts module)."""
        moderator = Moderator(
            id="mod-" + login,
            login=login,
            password_hash="-",
            totp_secret="-",
            role=role,
            created_at=self.clock.now_ms(),
        )
        await self.store.add_moderator(moderator)
        return moderator

    async def report(
        self,
        reporter: Person,
        target: str,
        ident: str,
        category: str = "harassment",
        explanation: str = "",
    ) -> list[Effect]:
        return await self.do(
            reporter,
            cmd.Report(
                target=target,  # type: ignore[arg-type]
                id=ident,
                category=category,
                explanation=explanation,
                good_faith=True,
            ),
        )

    async def end(self, person: Person, reason: str = "quit") -> list[Effect]:
        effects = await self.service.end_session(person.session, reason=reason)
        self.apply(None, effects)
        return effects

    async def conversation_with_the_gone(self) -> tuple[Person, str]:
        """Alice writes to Bruno, then Bruno's session ends: Alice and their conversation."""
        alice = await self.visitor("Alice")
        bruno = await self.visitor("Bruno")
        stream = dm_stream(alice.id, bruno.id)
        await self.send(alice, stream, "Salut")
        await self.end(bruno)
        return alice, stream

    # --- carrying out effects, like the Node ----------------------------------------------

    def apply(self, person: Person | None, effects: Sequence[Effect]) -> None:
        for effect in effects:
            match effect:
                case Publish():
                    self.published.append(effect)
                case Control(_, op):
                    self.controls.append(effect)
                    self._control(op)
                case Attach(stream):
                    if person is not None and person.actor is not None:
                        person.actor.streams.add(stream)
                case Detach(stream):
                    if person is not None and person.actor is not None:
                        person.actor.streams.discard(stream)
                case Subscribe(channel):
                    if person is not None:
                        person.channels.add(channel)
                case Unsubscribe(channel):
                    if person is not None:
                        person.channels.discard(channel)
                case Reply():
                    pass

    def _control(self, op: object) -> None:
        match op:
            case Here(profile, rooms):
                self.directory.here(profile, rooms)
            case Gone(person):
                self.directory.gone(person)
            case RoomJoin(person, room):
                self.directory.join(person, room)
            case RoomLeave(person, room):
                self.directory.leave(person, room)
            case AttachStream(person, stream):
                target = self.by_id.get(person)
                if target is not None and target.actor is not None:
                    target.actor.streams.add(stream)
            case SetMute(person, until, decision):
                target = self.by_id.get(person)
                if target is not None and target.actor is not None:
                    target.actor.muted_until = until
                    target.actor.mute_decision = decision if until else ""
            case RoomStateChanged(room, state, reason):
                if state == RoomState.OPEN.value:
                    self.service.room_states.pop(room, None)
                else:
                    self.service.room_states[room] = (RoomState(state), reason)
            case SetHidden(person, other, hidden):
                target = self.by_id.get(person)
                if target is not None and target.actor is not None:
                    if hidden:
                        target.actor.hidden |= {other}
                    else:
                        target.actor.hidden -= {other}
            case CloseConnection(person, code, _, keep):
                target = self.by_id.get(person)
                if target is not None and target.actor and target.actor.conn_id != keep:
                    target.closed_with.append(code)
                    target.actor = None


# --- helpers to read effects -------------------------------------------------------------------


def replies(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [e.event for e in effects if isinstance(e, Reply) and isinstance(e.event, kind)]


def published(effects: Sequence[Effect], kind: type[T], channel: str | None = None) -> list[T]:
    return [
        e.event
        for e in effects
        if isinstance(e, Publish)
        and isinstance(e.event, kind)
        and (channel is None or e.channel == channel)
    ]


def controls(effects: Sequence[Effect], kind: type[T]) -> list[T]:
    return [e.op for e in effects if isinstance(e, Control) and isinstance(e.op, kind)]


def one(items: Sequence[T]) -> T:
    assert len(items) == 1, f"expected exactly one, got {items!r}"
    return items[0]


def core_config(*, protections: bool = False, **sections: dict[str, Any]) -> Config:
    config = load_config(None, env={}, overrides=with_safety(sections, protections))
    # Rooms are a list, not a table: add the age-restricted room by hand.
    return msgspec.structs.replace(config, rooms=[*default_rooms(), OVER_25])


#: ``make_harness(**sections)``: a harness with configuration sections overridden.
HarnessFactory = Callable[..., Harness]
