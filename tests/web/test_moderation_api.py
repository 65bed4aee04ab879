"""The moderators' console API (/mod/api/…) and its live socket (/mod/ws), against the running
app: accounts with password + TOTP, the queue, decisions carried out on visitors at once,
appeals reviewed by another moderator, the audit log for admins."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from typing import Any

import aiohttp
import pyotp
import pytest
from yarl import URL

from causette.core.cases import Role
from causette.core.clock import FakeClock
from causette.web.keys import ACCOUNTS, NODE
from tests.conftest import RunningServer, ServerFactory
from tests.support.client import Event, ProtocolClient

PASSWORD = "une phrase de passe solide"
ENTRY = {"gender": "f", "age": 30, "postal_code": "75011", "accept_rules": True}


class Mod:
    """A moderator's browser: its own cookie jar, the site's Origin, the console API."""

    def __init__(self, server: RunningServer, login: str, secret: str) -> None:
        self.server = server
        self.base = server.url
        self.login_name = login
        self.secret = secret
        self.id = ""
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    def code(self) -> str:
        """The current TOTP code, at the server's time (which a test may drive)."""
        return pyotp.TOTP(self.secret).at(self.server.app[NODE].clock.now_ms() // 1000)

    async def post(
        self, path: str, body: Any = None, *, origin: str | None = None, raw: bytes | None = None
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = {"Origin": origin if origin is not None else self.base}
        kwargs: dict[str, Any] = {}
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        elif body is not None:
            kwargs["json"] = body
        async with self.http.post(self.base + path, headers=headers, **kwargs) as resp:
            data = await resp.json() if resp.status != 204 else None
            return resp.status, data, resp

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.json()

    async def log_in(self, password: str = PASSWORD, code: str | None = None) -> tuple[int, Any]:
        body = {"login": self.login_name, "password": password, "code": code or self.code()}
        status, data, _ = await self.post("/mod/api/login", body)
        if status == 200:
            self.id = data["moderator"]["id"]
        return status, data

    async def connect(self, origin: str | None = None) -> Event:
        self.ws = await self.http.ws_connect(
            self.base.replace("http", "ws", 1) + "/mod/ws",
            origin=origin if origin is not None else self.base,
        )
        self._reader = asyncio.create_task(self._read(self.ws))
        return await self.expect("ready")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = json.loads(msg.data)
                assert isinstance(frame, list), f"server frames are arrays, got {frame!r}"
                for event in frame:
                    self.events.put_nowait(event)

    async def expect(self, what: str | Any, timeout: float = 5.0) -> Event:
        match = (lambda e: e["type"] == what) if isinstance(what, str) else what
        async with asyncio.timeout(timeout):
            while True:
                event = await self.events.get()
                if match(event):
                    return event

    async def decide(self, case: str, **body: Any) -> tuple[int, Any]:
        status, data, _ = await self.post(f"/mod/api/cases/{case}/decide", body)
        return status, data

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader
        await self.http.close()


@pytest.fixture
async def mods() -> Any:
    made: list[Mod] = []
    yield made
    for m in made:
        await m.close()


async def new_mod(
    server: RunningServer, mods: list[Mod], login: str, role: Role = Role.MODERATOR
) -> Mod:
    enrolment = await server.app[ACCOUNTS].add(login, PASSWORD, role, by="test")
    m = Mod(server, login, enrolment.secret)
    mods.append(m)
    return m


async def logged_in(
    server: RunningServer, mods: list[Mod], login: str, role: Role = Role.MODERATOR
) -> Mod:
    m = await new_mod(server, mods, login, role)
    status, data = await m.log_in()
    assert status == 200, data
    return m


async def report(client: ProtocolClient, target: str, ident: str, category: str) -> str:
    await client.send(
        {
            "type": "report",
            "target": target,
            "id": ident,
            "category": category,
            "explanation": "Voir ce message, s'il vous plaît.",
            "good_faith": True,
        }
    )
    answer = await client.expect(lambda e: e["type"] in ("reported", "error"))
    assert answer["type"] == "reported", answer
    return str(answer["case"])


async def reported_message(
    server: RunningServer, text: str, category: str = "harassment"
) -> tuple[ProtocolClient, ProtocolClient, str]:
    """Alice says ``text`` in #general; Bruno reports it. Returns (alice, bruno, case code)."""
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    ack = await alice.say("r:general", text)
    return alice, bruno, await report(bruno, "message", ack["id"], category)


async def audit_actions(server: RunningServer) -> list[str]:
    return [e.action for e in await server.app[NODE].store.audit_log(1000)]


# --- accounts --------------------------------------------------------------------------------


async def test_login_gives_a_strict_console_cookie_and_logout_ends_it(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await new_mod(server, mods, "camille")
    status, data, resp = await m.post(
        "/mod/api/login", {"login": "Camille", "password": PASSWORD, "code": m.code()}
    )
    assert status == 200
    assert data["moderator"]["login"] == "camille"
    assert data["moderator"]["role"] == "moderator"
    assert set(data["moderator"]) == {"id", "login", "role"}
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("causette_mod=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/mod", "Max-Age=43200"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS it is Secure (see below)
    assert resp.headers["Cache-Control"] == "no-store"
    # The visitors' session cookie is not the console's.
    assert m.http.cookie_jar.filter_cookies(URL(m.base + "/")).get("causette_mod") is None
    status, data = await m.get("/mod/api/me")
    assert (status, data["moderator"]["login"]) == (200, "camille")
    status, _, resp = await m.post("/mod/api/logout")
    assert status == 204
    assert "causette_mod=" in resp.headers["Set-Cookie"]
    status, data = await m.get("/mod/api/me")
    assert (status, data["errors"][0]["code"]) == (401, "moderator_required")
    assert {"login", "logout"} <= set(await audit_actions(server))


async def test_the_console_cookie_is_secure_over_tls(
    start_server: ServerFactory, mods: list[Mod]
) -> None:
    server: RunningServer = await start_server(server={"trust_proxy_headers": True})
    m = await new_mod(server, mods, "camille")
    body = {"login": "camille", "password": PASSWORD, "code": m.code()}
    origin = "https://" + URL(server.url).authority
    async with m.http.post(
        server.url + "/mod/api/login",
        json=body,
        headers={"Origin": origin, "X-Forwarded-Proto": "https"},
    ) as resp:
        assert resp.status == 200
        assert "Secure" in resp.headers["Set-Cookie"]


async def test_five_failures_lock_the_account(server: RunningServer, mods: list[Mod]) -> None:
    m = await new_mod(server, mods, "camille")
    for _ in range(4):
        status, data = await m.log_in(password="pas le bon mot de passe")
        assert (status, data["errors"][0]["code"]) == (401, "login_failed")
    # A right password with a wrong code fails the same way, and counts: now locked, but
    # whoever lacks the password or the code cannot tell (no way to probe which logins exist).
    status, data = await m.log_in(code="000000" if m.code() != "000000" else "111111")
    assert (status, data["errors"][0]["code"]) == (401, "login_failed")
    status, data = await m.log_in(password="pas le bon mot de passe")
    assert (status, data["errors"][0]["code"]) == (401, "login_failed")
    # The moderator, with the right password and code, learns the account is locked, and waits.
    status, data = await m.log_in()
    assert (status, data["errors"][0]["code"]) == (423, "account_locked")
    assert data["errors"][0]["retryable"] is True
    assert "15 minutes" in data["errors"][0]["message"]
    actions = await audit_actions(server)
    assert actions.count("login.failed") == 5
    assert "login.locked" in actions


async def test_an_unknown_login_takes_the_same_path(server: RunningServer, mods: list[Mod]) -> None:
    m = await new_mod(server, mods, "camille")
    started = time.monotonic()
    status, known = await m.log_in(password="pas le bon mot de passe")
    known_time = time.monotonic() - started
    stranger = Mod(server, "personne", m.secret)
    mods.append(stranger)
    started = time.monotonic()
    status2, unknown = await stranger.log_in()
    unknown_time = time.monotonic() - started
    assert (status, known) == (status2, unknown)
    assert known["errors"][0]["code"] == "login_failed"
    assert "field" not in known["errors"][0]  # nothing says which part was wrong
    # Both verify a password hash (Argon2): neither answers much faster.
    assert unknown_time > known_time / 4
    entries = await server.app[NODE].store.audit_log(10)
    assert [e.action for e in entries[:2]] == ["login.failed", "login.failed"]
    assert PASSWORD not in json.dumps([e.reason for e in entries])


async def test_login_bodies_are_checked(server: RunningServer, mods: list[Mod]) -> None:
    m = await new_mod(server, mods, "camille")
    status, data, _ = await m.post("/mod/api/login", {"login": "camille", "password": PASSWORD})
    error = data["errors"][0]
    assert (status, error["code"], error["field"]) == (400, "bad_request", "code")
    status, data, _ = await m.post("/mod/api/login", raw=b"{not json")
    assert (status, data["errors"][0]["code"]) == (400, "bad_request")
    status, data, _ = await m.post(
        "/mod/api/login", {"login": "camille", "password": 123, "code": "1"}
    )
    assert (status, data["errors"][0]["field"]) == (400, "password")
    status, data, _ = await m.post(
        "/mod/api/login", {"login": "", "password": PASSWORD, "code": "123456"}
    )
    assert (status, data["errors"][0]["field"]) == (400, "login")
    async with m.http.post(
        m.base + "/mod/api/login", data="login=camille", headers={"Origin": m.base}
    ) as resp:
        assert resp.status == 400


async def test_login_attempts_are_limited_per_network(
    server: RunningServer, mods: list[Mod]
) -> None:
    guesser = Mod(server, "personne", pyotp.random_base32())
    mods.append(guesser)
    for _ in range(10):
        status, data = await guesser.log_in(password="devinette-numero-1")
        assert status == 401
    status, data = await guesser.log_in(password="devinette-numero-2")
    error = data["errors"][0]
    assert (status, error["code"], error["retryable"]) == (429, "rate_limited", True)
    # The limit is per network, whatever the account: a real moderator here waits too.
    m = await new_mod(server, mods, "camille")
    status, _ = await m.log_in()
    assert status == 429


async def test_other_origins_are_refused(server: RunningServer, mods: list[Mod]) -> None:
    m = await new_mod(server, mods, "camille")
    body = {"login": "camille", "password": PASSWORD, "code": m.code()}
    status, data, resp = await m.post("/mod/api/login", body, origin="https://evil.example")
    assert (status, data["errors"][0]["code"]) == (403, "origin_forbidden")
    assert "Set-Cookie" not in resp.headers
    async with m.http.post(server.url + "/mod/api/login", json=body) as resp:  # no Origin
        assert resp.status == 403
    assert (await m.log_in())[0] == 200
    alice, _bruno, case = await reported_message(server, "insulte")
    for path, payload in [
        (f"/mod/api/cases/{case}/decide", {"action": "warn", "facts": "Un avertissement."}),
        (f"/mod/api/cases/{case}/dismiss", {"reason": "Rien à redire."}),
        ("/mod/api/appeals/x/decide", {"grant": True, "answer": "Accordé, désolé."}),
        ("/mod/api/logout", None),
    ]:
        status, data, _ = await m.post(path, payload, origin="http://localhost:1")
        assert (status, data["errors"][0]["code"]) == (403, "origin_forbidden"), path
    assert (await m.get("/mod/api/me"))[0] == 200  # logout was refused
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await m.connect(origin="https://evil.example")
    assert refused.value.status == 403
    nobody = Mod(server, "nobody", m.secret)
    mods.append(nobody)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await nobody.connect()
    assert refused.value.status == 401
    # Visitors' cookies open nothing here.
    async with alice.http.get(server.url + "/mod/api/queue") as resp:
        assert resp.status == 401


async def test_the_console_page(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.url + "/mod") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        text = await resp.text()
        assert '<html lang="fr">' in text
        assert "{{" not in text
        assert "/static/mod/main.js" in text
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.url + "/mod?lang=en") as resp,
    ):
        assert '<html lang="en">' in await resp.text()


# --- queue and cases -------------------------------------------------------------------------


async def test_the_queue_puts_the_most_severe_first_then_the_oldest(
    start_server: ServerFactory, mods: list[Mod]
) -> None:
    clock = FakeClock()
    server: RunningServer = await start_server(clock=clock)
    m = await logged_in(server, mods, "camille")
    alice = await server.visitor("Alice")
    bruno = await server.visitor("Bruno")
    await alice.join("general")
    await bruno.join("general")
    cases = {}
    for text, category in [
        ("pub", "spam_scam"),
        ("insulte 1", "harassment"),
        ("menace", "threat"),
        ("insulte 2", "hate"),
    ]:
        ack = await alice.say("r:general", text)
        cases[text] = await report(bruno, "message", ack["id"], category)
        clock.advance(seconds=5)
    status, data = await m.get("/mod/api/queue")
    assert status == 200
    order = [c["id"] for c in data["cases"]]
    assert order == [cases["menace"], cases["insulte 1"], cases["insulte 2"], cases["pub"]]
    first = data["cases"][0]
    assert (first["severity"], first["category"], first["target_kind"]) == (1, "threat", "message")
    assert (first["subject_name"], first["reporters"], first["automated"]) == ("Alice", 1, False)
    assert data["appeals"] == 0


async def test_a_report_appears_live_on_the_console_socket(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    ready = await m.connect()
    assert ready["moderator"]["login"] == "camille"
    started = time.monotonic()
    alice, bruno, case = await reported_message(server, "une menace", "threat")
    event = await m.expect("case", timeout=1.0)
    assert time.monotonic() - started < 2.0
    assert event["case"]["id"] == case
    assert (event["case"]["status"], event["case"]["category"]) == ("open", "threat")
    # What the console sends is ignored; the socket stays open.
    assert m.ws is not None
    await m.ws.send_str('{"type": "hello"}')
    await report(alice, "person", bruno.me["id"], "harassment")
    assert (await m.expect("case"))["case"]["target_kind"] == "person"


async def test_the_case_view_shows_reports_evidence_and_networks_as_keyed_hashes(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    alice, _bruno, case = await reported_message(server, "le message signalé")
    await alice.say("r:general", "un message après")
    carla = await server.visitor("Carla")
    await carla.join("general")
    await report(carla, "message", (await alice.say("r:general", "x"))["id"], "spam_scam")
    status, detail = await m.get(f"/mod/api/cases/{case}")
    assert status == 200
    assert detail["case"]["id"] == case
    [rep] = detail["reports"]
    assert (rep["reporter_name"], rep["category"]) == ("Bruno", "harassment")
    assert len(rep["reporter_key"]) == 32
    kinds = [e["kind"] for e in detail["evidence"]]
    assert kinds[:2] == ["message", "context"]
    assert "profile" in kinds
    assert detail["evidence"][0]["data"]["text"] == "le message signalé"
    assert len(detail["subject_key"]) == 32
    # Everyone here comes from 127.0.0.1: the other sessions of that network, by hash only.
    assert {s["name"] for s in detail["same_network"]} >= {"Bruno", "Carla"}
    assert "127.0.0.1" not in json.dumps(detail)
    assert (detail["decisions"], detail["history"]) == ([], [])
    status, data = await m.get("/mod/api/cases/C-NOTACASE")
    assert (status, data["errors"][0]["code"]) == (404, "case_unknown")
    status, data = await m.get("/mod/api/nothing/here")
    assert (status, data["errors"][0]["code"]) == (404, "not_found")


async def test_every_decision_is_validated(server: RunningServer, mods: list[Mod]) -> None:
    m = await logged_in(server, mods, "camille")
    alice, bruno, case = await reported_message(server, "provocation")
    person_case = await report(alice, "person", bruno.me["id"], "harassment")
    facts = "Des insultes répétées dans le salon Général."
    refused: list[tuple[str, dict[str, Any], int, str, str | None]] = [
        (case, {"action": "warn", "facts": "court"}, 422, "decision_invalid", "facts"),
        (case, {"action": "warn", "facts": "x" * 2001}, 422, "decision_invalid", "facts"),
        (case, {"action": "warn", "facts": "          "}, 422, "decision_invalid", "facts"),
        (case, {"action": "shadow_ban", "facts": facts}, 422, "decision_invalid", "action"),
        (case, {"action": "block_message", "facts": facts}, 422, "decision_invalid", "action"),
        (case, {"action": "mute", "facts": facts}, 422, "decision_invalid", "minutes"),
        (case, {"action": "mute", "facts": facts, "minutes": 0}, 422, "decision_invalid",
         "minutes"),
        (case, {"action": "ban", "facts": facts, "minutes": -5}, 422, "decision_invalid",
         "minutes"),
        (case, {"action": "warn", "facts": facts, "category": "nope"}, 422, "decision_invalid",
         "category"),
        (case, {"action": "release", "facts": facts}, 422, "decision_invalid", "action"),
        (person_case, {"action": "freeze_room", "facts": facts}, 422, "decision_invalid",
         "action"),
        (person_case, {"action": "delete_message", "facts": facts}, 422, "decision_invalid",
         "action"),
        (case, {"action": "warn", "facts": facts, "minutes": "10"}, 400, "bad_request", "minutes"),
        (case, {"action": "warn", "facts": facts, "extra": 1}, 400, "bad_request", "extra"),
        (case, {"facts": facts}, 400, "bad_request", "action"),
        ("C-NOTACASE", {"action": "warn", "facts": facts}, 404, "case_unknown", None),
    ]  # fmt: skip
    for target, body, want_status, want_code, want_field in refused:
        status, data = await m.decide(target, **body)
        error = data["errors"][0]
        assert (status, error["code"], error.get("field")) == (
            want_status,
            want_code,
            want_field,
        ), body
    status, data, _ = await m.post(f"/mod/api/cases/{case}/decide", raw=b"[1, 2")
    assert (status, data["errors"][0]["code"]) == (400, "bad_request")
    status, data, _ = await m.post(f"/mod/api/cases/{case}/dismiss", {"reason": "  "})
    assert (status, data["errors"][0]["code"]) == (422, "decision_invalid")
    # Nothing happened to anyone, and the case is still open.
    assert [c["id"] for c in (await m.get("/mod/api/queue"))[1]["cases"]] == [case, person_case]
    # A valid decision closes it; a second one is refused.
    status, data = await m.decide(case, action="delete_message", facts=facts)
    assert (status, data["case"]["status"], data["case"]["outcome"]) == (200, "closed", "actioned")
    removed = await bruno.expect("removed")
    assert removed["stream"] == "r:general"
    status, data = await m.decide(case, action="warn", facts=facts)
    assert (status, data["errors"][0]["code"]) == (409, "case_closed")


async def test_a_dismissal_leaves_the_queue_and_tells_the_reporter(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    await m.connect()
    _alice, bruno, case = await reported_message(server, "rien de grave")
    await m.expect("case")
    status, data, _ = await m.post(
        f"/mod/api/cases/{case}/dismiss", {"reason": "Aucune règle enfreinte."}
    )
    assert (status, data["case"]["outcome"]) == (200, "dismissed")
    live = await m.expect(lambda e: e["type"] == "case" and e["case"]["status"] == "closed")
    assert live["case"]["id"] == case
    outcome = await bruno.expect("case_outcome")
    assert (outcome["case"], outcome["outcome"]) == (case, "dismissed")
    assert (await m.get("/mod/api/queue"))[1]["cases"] == []
    assert "case.dismiss" in await audit_actions(server)


async def test_a_ban_excludes_at_once_and_an_appeal_granted_by_another_moderator_lifts_it(
    server: RunningServer, mods: list[Mod]
) -> None:
    camille = await logged_in(server, mods, "camille")
    dominique = await logged_in(server, mods, "dominique")
    await camille.connect()
    alice, _bruno, case = await reported_message(server, "je vais te retrouver", "threat")
    await camille.expect("case")

    started = time.monotonic()
    status, data = await camille.decide(
        case, action="ban", facts="Menace envers une autre personne du salon Général."
    )
    assert (status, data["case"]["status"]) == (200, "closed")
    notice = await alice.expect("decision", timeout=1.0)
    decision = notice["decision"]
    assert (decision["action"], decision["automated"], decision["expires_at"]) == (
        "ban",
        False,
        None,
    )
    assert notice["ban_token"]
    bye = await alice.expect("bye", timeout=1.0)
    assert (bye["code"], bye["reconnect"]) == ("excluded", False)
    assert alice.events.index(notice) < alice.events.index(bye)
    await alice.wait_closed(timeout=1.0)
    assert time.monotonic() - started < 1.5
    closed = await camille.expect(lambda e: e["type"] == "case" and e["case"]["id"] == case)
    assert closed["case"]["status"] == "closed"
    assert (await camille.get("/mod/api/queue"))[1]["cases"] == []

    # The person cannot enter again from this network.
    again = server.client()
    status, body = await again.post("/api/session", {"pseudonym": "Alice2", **ENTRY})
    assert (status, body["errors"][0]["code"]) == (403, "banned")

    # The decision is in the case view, with who took it.
    status, detail = await dominique.get(f"/mod/api/cases/{case}")
    [taken] = detail["decisions"]
    assert (taken["id"], taken["moderator_login"], taken["appeal"]) == (
        decision["id"],
        "camille",
        None,
    )

    # The person appeals over HTTP; the console learns it live.
    status, view = await alice.post(
        f"/api/decisions/{decision['id']}/appeal", {"text": "Je plaisantais avec un ami."}
    )
    assert (status, view["appeal"]["status"]) == (201, "pending")
    event = await camille.expect("appeal")
    assert (event["decision"], event["status"]) == (decision["id"], "pending")
    assert (await camille.get("/mod/api/queue"))[1]["appeals"] == 1
    status, listed = await camille.get("/mod/api/appeals")
    [item] = listed["appeals"]
    assert item["text"] == "Je plaisantais avec un ami."
    assert (item["decision"]["id"], item["decision"]["moderator"]) == (decision["id"], "camille")
    assert (item["decision"]["facts"], item["case"]["id"]) == (decision["facts"], case)
    assert item["mine"] is True
    assert (await dominique.get("/mod/api/appeals"))[1]["appeals"][0]["mine"] is False

    # The author of the decision cannot review it.
    answer = {"grant": True, "answer": "Recours accordé après relecture."}
    status, data, _ = await camille.post(f"/mod/api/appeals/{item['id']}/decide", answer)
    assert (status, data["errors"][0]["code"]) == (403, "same_moderator")
    status, data, _ = await dominique.post(
        f"/mod/api/appeals/{item['id']}/decide", {"grant": True, "answer": "court"}
    )
    assert (status, data["errors"][0]["code"], data["errors"][0]["field"]) == (
        422,
        "decision_invalid",
        "answer",
    )
    status, data, _ = await dominique.post(f"/mod/api/appeals/{item['id']}/decide", answer)
    assert (status, data["appeal"]["status"]) == (200, "granted")
    granted = await camille.expect(lambda e: e["type"] == "appeal" and e["status"] == "granted")
    assert granted["decision"] == decision["id"]
    assert (await camille.get("/mod/api/appeals"))[1]["appeals"] == []
    status, data, _ = await dominique.post(f"/mod/api/appeals/{item['id']}/decide", answer)
    assert (status, data["errors"][0]["code"]) == (409, "case_closed")

    # Lifted: the person may enter again, and reads the answer.
    status, view = await alice.get(f"/api/decisions/{decision['id']}")
    assert (view["lifted"], view["appeal"]["status"]) == (True, "granted")
    assert view["appeal"]["answer"] == answer["answer"]
    await again.enter("Alice2")
    actions = await audit_actions(server)
    assert {"case.decide", "appeal.open", "appeal.decide"} <= set(actions)


async def test_a_mute_from_the_console_applies_at_once(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    alice, _bruno, case = await reported_message(server, "provocation")
    status, _ = await m.decide(
        case, action="mute", minutes=60, facts="Provocations répétées.", category="hate"
    )
    assert status == 200
    notice = (await alice.expect("decision"))["decision"]
    assert (notice["action"], notice["category"]) == ("mute", "hate")
    assert notice["expires_at"] - notice["created_at"] == 60 * 60_000
    refused = await alice.say("r:general", "encore")
    assert (refused["type"], refused["code"]) == ("error", "muted")


# --- the socket follows the session -----------------------------------------------------------


async def test_logging_out_closes_the_console_socket(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    await m.connect()
    status, _, _ = await m.post("/mod/api/logout")
    assert status == 204
    bye = await m.expect("bye", timeout=1.0)
    assert (bye["code"], bye["reconnect"]) == ("moderator_required", False)
    assert m._reader is not None
    async with asyncio.timeout(1.0):
        await m._reader
    assert m.ws is not None
    assert m.ws.close_code == 1008


# --- audit log -------------------------------------------------------------------------------


async def test_the_audit_log_is_for_admins_and_exports_parse(
    server: RunningServer, mods: list[Mod]
) -> None:
    m = await logged_in(server, mods, "camille")
    admin = await logged_in(server, mods, "root", Role.ADMIN)
    _alice, _bruno, case = await reported_message(server, "insulte")
    assert (await m.decide(case, action="warn", facts="Un avertissement pour l'insulte."))[0] == 200
    for path in ("/mod/api/audit", "/mod/api/audit.csv", "/mod/api/audit.json"):
        status, data = await m.get(path)
        assert (status, data["errors"][0]["code"]) == (403, "admin_required"), path
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(server.url + "/mod/api/audit") as resp,
    ):
        assert resp.status == 401

    status, data = await admin.get("/mod/api/audit")
    assert status == 200
    entries = data["entries"]
    assert entries[0]["action"] == "case.decide"  # newest first
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    decided = next(e for e in entries if e["action"] == "case.decide")
    assert (decided["case_id"], decided["actor"]) == (case, "mod:" + m.id)
    assert decided["details"]["action"] == "warn"
    # Pages go back in time.
    status, page = await admin.get("/mod/api/audit?limit=2")
    assert len(page["entries"]) == 2
    status, older = await admin.get(f"/mod/api/audit?limit=2&before={page['before']}")
    assert older["entries"][0]["id"] < page["entries"][-1]["id"]
    status, data = await admin.get("/mod/api/audit?limit=abc")
    assert (status, data["errors"][0]["field"]) == (400, "limit")
    status, data = await admin.get("/mod/api/audit?limit=100000")
    assert status == 400

    async with admin.http.get(server.url + "/mod/api/audit.csv") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/csv"
        assert resp.headers["Content-Disposition"].startswith("attachment;")
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert rows[0]["id"] == "1"  # oldest first
    assert any(r["action"] == "case.decide" and r["case_id"] == case for r in rows)
    assert json.loads(next(r for r in rows if r["action"] == "case.decide")["details"])
    async with admin.http.get(server.url + "/mod/api/audit.json") as resp:
        assert resp.status == 200
        exported = json.loads(await resp.text())
    assert [e["id"] for e in exported] == sorted(e["id"] for e in exported)
    assert {"audit.export"} <= {e["action"] for e in exported}
    assert "audit.export" in await audit_actions(server)
