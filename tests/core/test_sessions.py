"""Sessions end on "Quitter" or after inactivity; purges forget expired messages and sessions."""

from __future__ import annotations

from causette.core import commands as cmd
from causette.core import events as ev
from causette.core.effects import LOBBY_CHANNEL, CloseConnection, Gone, Publish, RoomLeave
from causette.core.models import Message, PmPolicy, dm_stream
from tests.core.harness import Harness, HarnessFactory, controls, one, published, replies


async def test_ending_a_session_leaves_every_room_and_closes_its_connections(
    h: Harness,
) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    for room in ("general", "cuisine"):
        await h.join(alice, room)
    await h.join(bruno, "general")

    effects = await h.end(alice)
    leaves = [m for m in published(effects, Message) if m.kind == "leave"]
    assert sorted((m.stream, m.author) for m in leaves) == [
        ("r:cuisine", alice.id),
        ("r:general", alice.id),
    ]
    assert sorted(op.room for op in controls(effects, RoomLeave)) == ["cuisine", "general"]
    assert controls(effects, Gone) == [Gone(person=alice.id)]
    assert controls(effects, CloseConnection) == [
        CloseConnection(person=alice.id, code="quit", reconnect=False)
    ]
    assert alice.closed_with == ["quit"]
    lobby = [e.event for e in effects if isinstance(e, Publish) and e.channel == LOBBY_CHANNEL]
    assert lobby == [ev.Presence(remove=[alice.id])]

    session = await h.store.get_session(alice.id)
    assert session is not None
    assert not session.live
    assert await h.service.session_for_token(alice.token) is None
    assert await h.store.rooms_of(alice.id) == []
    assert h.directory.counts() == {"general": 1}
    assert not h.directory.is_here(alice.id)
    assert await h.names(bruno) == ["Bruno"]


async def test_ending_a_session_twice_does_nothing(h: Harness) -> None:
    alice = await h.visitor("Alice")
    await h.end(alice)
    assert await h.end(alice) == []


async def test_idle_sessions_without_a_connection_end(make_harness: HarnessFactory) -> None:
    h = make_harness(sessions={"idle_timeout_minutes": 15})
    idle = await h.visitor("Idle")
    connected = await h.visitor("Connected")
    recent = await h.visitor("Recent")
    await h.join(idle, "general")
    h.disconnect(idle)
    h.clock.advance(minutes=10)
    h.disconnect(recent)
    await h.store.touch_sessions([recent.id], h.clock.now_ms())  # left 10 minutes later
    h.clock.advance(minutes=5, ms=1)

    effects = await h.service.end_idle_sessions(connected={connected.id})
    h.apply(None, effects)
    assert controls(effects, CloseConnection) == [
        CloseConnection(person=idle.id, code="not_authenticated", reconnect=False)
    ]
    assert [m.kind for m in published(effects, Message, "r:general")] == ["leave"]
    for person, live in ((idle, False), (connected, True), (recent, True)):
        session = await h.store.get_session(person.id)
        assert session is not None
        assert session.live is live, person.session.profile.name
    # The freed pseudonym can be taken again.
    assert (await h.enter("Idle")).session.profile.name == "Idle"


async def test_a_session_idle_for_exactly_the_timeout_lives(make_harness: HarnessFactory) -> None:
    h = make_harness(sessions={"idle_timeout_minutes": 15})
    alice = await h.visitor("Alice")
    h.disconnect(alice)
    h.clock.advance(minutes=15)
    assert await h.service.end_idle_sessions(connected=set()) == []
    h.clock.advance(ms=1)
    assert controls(await h.service.end_idle_sessions(connected=set()), Gone)


async def test_purge_deletes_expired_messages_only(make_harness: HarnessFactory) -> None:
    h = make_harness(messages={"lifetime_minutes": 60})
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.join(alice, "general")  # seq 1, at t0
    await h.send(alice, "r:general", "vieux")  # seq 2, at t0
    await h.send(alice, dm_stream(alice.id, bruno.id), "privé")
    h.clock.advance(minutes=30)
    await h.send(alice, "r:general", "récent")  # seq 3, at t0 + 30 min
    h.clock.advance(minutes=30, ms=-1)
    assert await h.service.purge() == (0, 0)
    h.clock.advance(ms=1)  # t0 + 60 min: the first messages reach their lifetime
    assert await h.service.purge() == (3, 0)
    assert [m.text for m in await h.store.read("r:general", 0, 10)] == ["récent"]
    assert await h.store.read(dm_stream(alice.id, bruno.id), 0, 10) == []
    # Seqs go on after a purge: nothing is ever renumbered.
    assert (await h.send(alice, "r:general", "après")).seq == 4


async def test_purge_forgets_sessions_ended_longer_ago_than_the_lifetime(
    make_harness: HarnessFactory,
) -> None:
    h = make_harness(messages={"lifetime_minutes": 60})
    old = await h.visitor("Ancien")
    newer = await h.visitor("Nouveau")
    await h.end(old)
    h.clock.advance(minutes=30)
    await h.end(newer)
    h.clock.advance(minutes=30, ms=1)
    messages, sessions = await h.service.purge()
    assert sessions == 1
    assert messages == 0
    assert await h.store.get_session(old.id) is None
    assert await h.store.get_session(newer.id) is not None


async def test_prefs_change_the_pm_policy_and_the_language(h: Harness) -> None:
    alice = await h.visitor("Alice")
    effects = await h.do(alice, cmd.SetPrefs(pm_policy=PmPolicy.NOBODY))
    assert replies(effects, ev.Prefs) == [ev.Prefs(pm_policy=PmPolicy.NOBODY, lang="fr")]
    effects = await h.do(alice, cmd.SetPrefs(lang="en"))
    assert replies(effects, ev.Prefs) == [ev.Prefs(pm_policy=PmPolicy.NOBODY, lang="en")]
    assert alice.a.lang == "en"
    session = await h.store.get_session(alice.id)
    assert session is not None
    assert (session.pm_policy, session.lang) == (PmPolicy.NOBODY, "en")
    # An empty prefs command answers the current preferences.
    assert one(replies(await h.do(alice, cmd.SetPrefs()), ev.Prefs)) == ev.Prefs(
        pm_policy=PmPolicy.NOBODY, lang="en"
    )
    # They hold on the next connection.
    h.disconnect(alice)
    welcome = one(replies(await h.connect(alice), ev.Welcome))
    assert welcome.prefs == ev.Prefs(pm_policy=PmPolicy.NOBODY, lang="en")


async def test_the_pm_policy_takes_effect_at_once_for_others(h: Harness) -> None:
    alice = await h.visitor("Alice")
    bruno = await h.visitor("Bruno")
    await h.do(bruno, cmd.SetPrefs(pm_policy=PmPolicy.NOBODY))
    exc = await h.fails(alice, cmd.OpenDm(person=bruno.id))
    assert exc.code == "pm_refused"
    await h.do(bruno, cmd.SetPrefs(pm_policy=PmPolicy.EVERYONE))
    assert replies(await h.do(alice, cmd.OpenDm(person=bruno.id)), ev.Conversation)
