"""The moderators' console: a thin web layer over ``ModerationService`` and ``Accounts``.

- ``/mod``: the console page; ``/mod/api/…``: JSON (errors as ``{"errors": [...]}`` like the
  rest of the site); ``/mod/ws``: a read-only WebSocket on which the console receives the live
  ``case`` and ``appeal`` events of ``MOD_CHANNEL`` (frames are JSON arrays, as on ``/ws``).
- A console session is the ``causette_mod`` cookie (HttpOnly, SameSite=Strict, Path=/mod,
  Secure over TLS), separate from visitors' sessions; only a hash of its token is stored.
- Every POST checks its ``Origin``; bodies are decoded into strict msgspec Structs. Decisions,
  dismissals, appeals, logins and exports are written to the audit log (by the service and
  ``Accounts`` for the first ones, here for the exports).
- Moderators never see an address: networks appear as keyed hashes only.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import secrets
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any

import msgspec
from aiohttp import WSMsgType, web

from causette import errors
from causette.core import events as ev
from causette.core.cases import Action, AuditEntry, Moderator, Role
from causette.core.effects import MOD_CHANNEL
from causette.core.moderation import CaseSummary
from causette.core.wording import seconds
from causette.ids import token_hash
from causette.safety.accounts import SESSION_HOURS, Accounts
from causette.safety.categories import CATEGORIES
from causette.web.fanout import Connection
from causette.web.http import (
    _require_same_origin,
    error_answer,
    is_secure,
    json_errors,
    json_response,
    network_key,
    not_found,
    pick_lang,
    read_json,
)
from causette.web.keys import ACCOUNTS, CONFIG, CONSOLE, MODERATION, NODE, PAGES
from causette.web.node import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_TRY_AGAIN, Node
from causette.web.protocol import encode

log = logging.getLogger(__name__)

COOKIE = "causette_mod"
COOKIE_PATH = "/mod"
#: Login attempts per network (in addition to the per-account lock-out): a burst, then one a
#: minute. Behind one address a whole team can still log in; a guesser cannot go on.
LOGIN_BURST = 10
LOGIN_RATE = 1 / 60
#: How often a live console connection re-checks its session (expiry, logout, disabled).
SESSION_CHECK_SECONDS = 60.0
QUEUE_LIMIT = 500
APPEALS_LIMIT = 200
AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX = 100, 500
EXPORT_PAGE = 1000
#: Actions a moderator may choose (``block_message`` is only ever automated).
DECISION_ACTIONS = {a.value: a for a in Action if a != Action.BLOCK_MESSAGE}
_LOGIN_WHAT = {"fr": "trop d'essais de connexion", "en": "too many login attempts"}


# --- bodies ----------------------------------------------------------------------------------


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    login: Annotated[str, msgspec.Meta(max_length=100)]
    password: Annotated[str, msgspec.Meta(max_length=1024)]
    code: Annotated[str, msgspec.Meta(max_length=16)]


class DecideBody(msgspec.Struct, forbid_unknown_fields=True):
    action: Annotated[str, msgspec.Meta(max_length=40)]
    # Longer than the service accepts: it answers ``decision_invalid`` with the real bounds.
    facts: Annotated[str, msgspec.Meta(max_length=20_000)]
    category: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    minutes: int | None = None


class DismissBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=20_000)]


class AppealDecisionBody(msgspec.Struct, forbid_unknown_fields=True):
    grant: bool
    answer: Annotated[str, msgspec.Meta(max_length=20_000)]


# --- the console's state -----------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class ModSocket:
    """A live console connection on this node."""

    ws: web.WebSocketResponse
    conn: Connection
    moderator: Moderator
    token_hash: bytes
    closing: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


class Console:
    """The page template and the live connections of the console on this node."""

    def __init__(self) -> None:
        templates = resources.files("causette.web").joinpath("templates")
        self.page = templates.joinpath("mod.html").read_text("utf-8")
        self.sockets: dict[str, ModSocket] = {}

    def close(self, sock: ModSocket, code: str, *, reconnect: bool, node: Node) -> None:
        """Say ``bye`` (after what is already queued) and close, in the background."""
        if sock.closing:
            return
        sock.closing = True
        message = errors.by_code(code)().message("fr")
        node.hub.send(sock.conn, encode(ev.Bye(code=code, message=message, reconnect=reconnect)))
        node.hub.flush()
        close_code = CLOSE_GOING_AWAY if code == errors.ShuttingDown.code else CLOSE_POLICY
        task = asyncio.ensure_future(sock.ws.close(code=close_code, message=code.encode()))
        sock.tasks.add(task)
        task.add_done_callback(sock.tasks.discard)

    def close_session(self, hashed: bytes, node: Node) -> None:
        for sock in list(self.sockets.values()):
            if sock.token_hash == hashed:
                self.close(sock, errors.ModeratorRequired.code, reconnect=False, node=node)


# --- helpers ---------------------------------------------------------------------------------


def _moderator_view(m: Moderator) -> dict[str, str]:
    return {"id": m.id, "login": m.login, "role": m.role.value}


async def current_moderator(request: web.Request) -> Moderator | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    return await request.app[ACCOUNTS].session(token)


async def require_moderator(request: web.Request) -> Moderator:
    moderator = await current_moderator(request)
    if moderator is None:
        raise errors.ModeratorRequired()
    return moderator


async def require_admin(request: web.Request) -> Moderator:
    moderator = await require_moderator(request)
    if moderator.role != Role.ADMIN:
        raise errors.AdminRequired()
    return moderator


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, request.app[CONFIG]),
        path=COOKIE_PATH,
        max_age=SESSION_HOURS * 3600,
    )


def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(field=name, detail=f"{name} must be a whole number") from None


async def _logins(node: Node, ids: set[str]) -> dict[str, str]:
    """Moderator id → login, for showing who decided."""
    out: dict[str, str] = {}
    for mod_id in ids:
        m = await node.store.get_moderator(mod_id)
        if m is not None:
            out[mod_id] = m.login
    return out


async def _case_summary(request: web.Request, case_id: str) -> CaseSummary:
    case = await request.app[NODE].store.get_case(case_id)
    if case is None:
        raise errors.CaseUnknown()
    return request.app[MODERATION].summary(case)


# --- page ------------------------------------------------------------------------------------


async def console_page(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    lang = pick_lang(request, request.app[CONFIG])
    return web.Response(
        text=pages.render(request.app[CONSOLE].page, lang),
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


async def console_slash(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/mod")


# --- accounts --------------------------------------------------------------------------------


async def login(request: web.Request) -> web.Response:
    _require_same_origin(request)
    config = request.app[CONFIG]
    node: Node = request.app[NODE]
    lang = pick_lang(request, config)
    key = "mod-login-net:" + network_key(request)
    if not node.limiter.take(key, LOGIN_RATE, LOGIN_BURST, node.clock.now_ms()):
        log.info("mod_login_rate_limited")
        raise errors.RateLimited(
            what=_LOGIN_WHAT.get(lang, _LOGIN_WHAT["fr"]),
            seconds=seconds(node.limiter.retry_after_ms(key)),
        )
    body = await read_json(request, LoginBody)
    for name in ("login", "password", "code"):
        if not getattr(body, name).strip():
            raise errors.BadRequest(field=name, detail=f"{name} is required")
    try:
        moderator, token = await request.app[ACCOUNTS].login(body.login, body.password, body.code)
    except errors.CausetteError as exc:
        log.info("mod_login_refused", extra={"code": exc.code})
        raise
    log.info("mod_login")
    response = json_response({"moderator": _moderator_view(moderator)})
    _set_cookie(request, response, token)
    return response


async def logout(request: web.Request) -> web.Response:
    _require_same_origin(request)
    token = request.cookies.get(COOKIE, "")
    if token and len(token) <= 100:
        await request.app[ACCOUNTS].logout(token)
        request.app[CONSOLE].close_session(token_hash(token), request.app[NODE])
    response = web.Response(status=204, headers={"Cache-Control": "no-store"})
    response.del_cookie(COOKIE, path=COOKIE_PATH)
    return response


async def me(request: web.Request) -> web.Response:
    moderator = await require_moderator(request)
    return json_response({"moderator": _moderator_view(moderator)})


async def categories(request: web.Request) -> web.Response:
    """The report categories (the grounds of decisions), most severe first."""
    await require_moderator(request)
    return json_response(
        {
            "categories": [
                {"code": c.code, "severity": c.severity, "fr": c.fr, "en": c.en}
                for c in sorted(CATEGORIES.values(), key=lambda c: c.severity)
            ],
            "actions": list(DECISION_ACTIONS),
        }
    )


# --- queue and cases -------------------------------------------------------------------------


async def queue(request: web.Request) -> web.Response:
    await require_moderator(request)
    store = request.app[NODE].store
    moderation = request.app[MODERATION]
    cases = await store.open_cases(QUEUE_LIMIT)
    appeals = await store.pending_appeals(1000)
    return json_response({"cases": [moderation.summary(c) for c in cases], "appeals": len(appeals)})


async def case_detail(request: web.Request) -> web.Response:
    await require_moderator(request)
    node: Node = request.app[NODE]
    detail = await request.app[MODERATION].case_detail(request.match_info["id"])
    out: dict[str, Any] = msgspec.to_builtins(detail)
    # Reporters' pseudonyms (the reports already hold their keyed network hashes, nothing more).
    reporter_ids = sorted({str(r["reporter"]) for r in out["reports"]})
    names = {s.id: s.profile.name for s in await node.store.get_sessions(reporter_ids)}
    for report in out["reports"]:
        report["reporter_name"] = names.get(str(report["reporter"]), "")
    decided = out["decisions"] + out["history"]
    logins = await _logins(node, {str(d["moderator"]) for d in decided if d.get("moderator")})
    for d in decided:
        d["moderator_login"] = logins.get(str(d.get("moderator") or ""), None)
        appeal = await node.store.appeal_of(str(d["id"]))
        d["appeal"] = (
            {"status": appeal.status.value, "created_at": appeal.created_at}
            if appeal is not None
            else None
        )
    return json_response(out)


async def decide(request: web.Request) -> web.Response:
    _require_same_origin(request)
    moderator = await require_moderator(request)
    body = await read_json(request, DecideBody)
    action = DECISION_ACTIONS.get(body.action)
    if action is None:
        raise errors.DecisionInvalid(field="action", detail="unknown action")
    case_id = request.match_info["id"]
    node: Node = request.app[NODE]
    effects = await request.app[MODERATION].decide(
        moderator,
        case_id,
        action,
        facts=body.facts,
        category=body.category or None,
        minutes=body.minutes,
    )
    await node.run(effects)
    log.info("mod_decision", extra={"action": action.value})
    return json_response({"case": await _case_summary(request, case_id)})


async def dismiss(request: web.Request) -> web.Response:
    _require_same_origin(request)
    moderator = await require_moderator(request)
    body = await read_json(request, DismissBody)
    case_id = request.match_info["id"]
    node: Node = request.app[NODE]
    effects = await request.app[MODERATION].dismiss(moderator, case_id, body.reason)
    await node.run(effects)
    log.info("mod_dismissal")
    return json_response({"case": await _case_summary(request, case_id)})


# --- appeals ---------------------------------------------------------------------------------


async def appeals(request: web.Request) -> web.Response:
    moderator = await require_moderator(request)
    node: Node = request.app[NODE]
    store = node.store
    moderation = request.app[MODERATION]
    items: list[dict[str, Any]] = []
    pending = await store.pending_appeals(APPEALS_LIMIT)
    decisions = {a.id: await store.get_decision(a.decision_id) for a in pending}
    logins = await _logins(node, {d.moderator for d in decisions.values() if d and d.moderator})
    for appeal in pending:
        decision = decisions[appeal.id]
        if decision is None:
            continue
        case = await store.get_case(decision.case_id)
        category = CATEGORIES.get(decision.category, CATEGORIES["other"])
        items.append(
            {
                "id": appeal.id,
                "text": appeal.text,
                "created_at": appeal.created_at,
                "status": appeal.status.value,
                "decision": {
                    "id": decision.id,
                    "action": decision.action.value,
                    "facts": decision.facts,
                    "category": category.code,
                    "category_label": category.fr,
                    "automated": decision.automated,
                    "moderator": logins.get(decision.moderator or "", None),
                    "created_at": decision.created_at,
                    "expires_at": decision.expires_at,
                    "lifted": decision.lifted_at is not None,
                },
                "case": moderation.summary(case) if case is not None else None,
                # The author of a decision cannot review its appeal: the console says so.
                "mine": decision.moderator == moderator.id,
            }
        )
    return json_response({"appeals": items})


async def decide_appeal(request: web.Request) -> web.Response:
    _require_same_origin(request)
    moderator = await require_moderator(request)
    body = await read_json(request, AppealDecisionBody)
    appeal_id = request.match_info["id"]
    node: Node = request.app[NODE]
    effects = await request.app[MODERATION].decide_appeal(
        moderator, appeal_id, grant=body.grant, answer=body.answer
    )
    await node.run(effects)
    log.info("mod_appeal_decided", extra={"granted": body.grant})
    settled = await node.store.get_appeal(appeal_id)
    assert settled is not None
    return json_response(
        {
            "appeal": {
                "id": settled.id,
                "decision": settled.decision_id,
                "status": settled.status.value,
                "decided_at": settled.decided_at,
                "answer": settled.answer,
            }
        }
    )


# --- audit log (admins) ----------------------------------------------------------------------


async def audit(request: web.Request) -> web.Response:
    await require_admin(request)
    limit = _int_param(request, "limit", AUDIT_PAGE_DEFAULT) or AUDIT_PAGE_DEFAULT
    if not 1 <= limit <= AUDIT_PAGE_MAX:
        raise errors.BadRequest(field="limit", detail=f"limit is 1 to {AUDIT_PAGE_MAX}")
    before = _int_param(request, "before", None)
    node: Node = request.app[NODE]
    entries = await node.store.audit_log(limit, before)
    logins = await _logins(node, {e.actor[4:] for e in entries if e.actor.startswith("mod:")})
    rows: list[dict[str, Any]] = []
    for e in entries:
        row = msgspec.to_builtins(e)
        row["actor_login"] = logins.get(e.actor[4:]) if e.actor.startswith("mod:") else None
        rows.append(row)
    return json_response(
        {
            "entries": rows,
            # Where the next (older) page starts; null at the beginning of the log.
            "before": entries[-1].id if len(entries) == limit and entries[-1].id > 1 else None,
        }
    )


async def _all_entries(request: web.Request) -> list[AuditEntry]:
    store = request.app[NODE].store
    entries: list[AuditEntry] = []
    before: int | None = None
    while True:
        page = await store.audit_log(EXPORT_PAGE, before)
        if not page:
            break
        entries.extend(page)
        before = page[-1].id
    entries.reverse()  # oldest first in an export
    return entries


async def _export(request: web.Request, fmt: str) -> tuple[list[AuditEntry], str]:
    admin = await require_admin(request)
    await request.app[MODERATION].audit(
        f"mod:{admin.id}", "audit.export", f"moderator:{admin.login}", fmt
    )
    entries = await _all_entries(request)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(request.app[NODE].clock.now_ms() / 1000))
    return entries, f"causette-audit-{stamp}.{fmt}"


def _attachment(body: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=content_type,
        charset="utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


def _csv_cell(value: str) -> str:
    """A spreadsheet must not run text as a formula (CSV injection): such cells get a quote."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


async def audit_csv(request: web.Request) -> web.Response:
    entries, filename = await _export(request, "csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "ts", "actor", "action", "case_id", "target", "reason", "details"])
    for e in entries:
        writer.writerow(
            [
                e.id,
                e.ts,
                _csv_cell(e.actor),
                _csv_cell(e.action),
                _csv_cell(e.case_id or ""),
                _csv_cell(e.target),
                _csv_cell(e.reason),
                msgspec.json.encode(e.details).decode(),
            ]
        )
    return _attachment(buffer.getvalue().encode(), "text/csv", filename)


async def audit_json(request: web.Request) -> web.Response:
    entries, filename = await _export(request, "json")
    body = msgspec.json.format(msgspec.json.encode(entries)) + b"\n"
    return _attachment(body, "application/json", filename)


# --- live queue ------------------------------------------------------------------------------


async def _admit(request: web.Request, node: Node) -> Moderator:
    """The moderator a console WebSocket may open for, or the reason it may not (raised)."""
    if node.shutting_down:
        raise errors.ShuttingDown()
    _require_same_origin(request)
    moderator = await current_moderator(request)
    if moderator is None:
        raise errors.ModeratorRequired()
    return moderator


async def websocket(request: web.Request) -> web.StreamResponse:
    """Read-only: the console receives ``case`` and ``appeal`` events; what it sends is
    ignored. The first frame holds ``ready`` once the subscription is live (the console loads
    the queue then, so nothing falls between the load and the live flow)."""
    config = request.app[CONFIG]
    node: Node = request.app[NODE]
    console = request.app[CONSOLE]
    token = request.cookies.get(COOKIE, "")
    try:
        moderator = await _admit(request, node)
    except Exception as exc:
        return error_answer(request, exc)  # before the upgrade: an HTTP answer
    ws = web.WebSocketResponse(
        heartbeat=config.limits.heartbeat_seconds, max_msg_size=4096, compress=False
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None:  # the peer left during the handshake
        return ws
    conn_id = secrets.token_urlsafe(9)
    # Not a person: the connection is never registered by person, only on the mod channel.
    conn = Connection(
        conn_id,
        f"mod:{moderator.id}:{conn_id}",
        transport,
        lambda c: _overflow(console, c),
    )
    sock = ModSocket(ws=ws, conn=conn, moderator=moderator, token_hash=token_hash(token))
    console.sockets[conn_id] = sock
    watcher = asyncio.ensure_future(_watch(request.app, sock, token))
    try:
        await node.hub.subscribe(conn, MOD_CHANNEL)
        ready = {"type": "ready", "moderator": _moderator_view(moderator)}
        node.hub.send(conn, msgspec.json.encode(ready))
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
            # Anything else the console sends is ignored: this socket only listens.
    finally:
        watcher.cancel()
        console.sockets.pop(conn_id, None)
        node.hub.remove(conn)
        for task in list(sock.tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return ws


def _overflow(console: Console, conn: Connection) -> None:
    """A console that cannot keep up is cut (what was queued is dropped); it reconnects and
    loads its queue again."""
    conn.closed = True
    sock = console.sockets.get(conn.id)
    if sock is None or sock.closing:
        return
    sock.closing = True
    log.info("mod_console_too_slow")
    task = asyncio.ensure_future(sock.ws.close(code=CLOSE_TRY_AGAIN, message=b"too_slow"))
    sock.tasks.add(task)
    task.add_done_callback(sock.tasks.discard)


async def _watch(app: web.Application, sock: ModSocket, token: str) -> None:
    """Close the connection once its session is over (expired, password changed, disabled)."""
    while not sock.closing:
        await asyncio.sleep(SESSION_CHECK_SECONDS)
        try:
            alive = await app[ACCOUNTS].session(token)
        except errors.StoreUnavailable:
            continue
        if alive is None:
            app[CONSOLE].close(sock, errors.ModeratorRequired.code, reconnect=False, node=app[NODE])


# --- wiring ----------------------------------------------------------------------------------


def add_routes(app: web.Application) -> None:
    """Register the console. Call after the app's own startup hook: this one uses its store."""
    app[CONSOLE] = Console()

    async def startup(app: web.Application) -> None:
        node = app[NODE]
        app[ACCOUNTS] = Accounts(node.store, node.clock, app[CONFIG].site.name)

    async def shutdown(app: web.Application) -> None:
        console = app[CONSOLE]
        if NODE not in app:
            return
        for sock in list(console.sockets.values()):
            console.close(sock, errors.ShuttingDown.code, reconnect=True, node=app[NODE])

    app.on_startup.append(startup)
    app.on_shutdown.append(shutdown)
    app.router.add_get("/mod", json_errors(console_page), name="mod")
    app.router.add_get("/mod/", json_errors(console_slash))
    app.router.add_get("/mod/ws", websocket, name="mod_ws")
    app.router.add_post("/mod/api/login", json_errors(login))
    app.router.add_post("/mod/api/logout", json_errors(logout))
    app.router.add_get("/mod/api/me", json_errors(me))
    app.router.add_get("/mod/api/categories", json_errors(categories))
    app.router.add_get("/mod/api/queue", json_errors(queue))
    app.router.add_get("/mod/api/cases/{id}", json_errors(case_detail))
    app.router.add_post("/mod/api/cases/{id}/decide", json_errors(decide))
    app.router.add_post("/mod/api/cases/{id}/dismiss", json_errors(dismiss))
    app.router.add_get("/mod/api/appeals", json_errors(appeals))
    app.router.add_post("/mod/api/appeals/{id}/decide", json_errors(decide_appeal))
    app.router.add_get("/mod/api/audit", json_errors(audit))
    app.router.add_get("/mod/api/audit.csv", json_errors(audit_csv))
    app.router.add_get("/mod/api/audit.json", json_errors(audit_json))
    # Last: anything else under /mod/api answers a JSON ``not_found`` like /api does.
    app.router.add_route("*", "/mod/api/{tail:.*}", json_errors(not_found))
