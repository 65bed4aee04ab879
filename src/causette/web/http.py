"""HTTP: pages, entry, session, geography, health. Thin: parse, call the service, encode."""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, TypeVar, cast

import msgspec
from aiohttp import web

from causette import errors
from causette.config import Config
from causette.core.models import Session
from causette.core.service import EntryForm, Invalid
from causette.core.wording import seconds, what
from causette.geo import Geo
from causette.safety.ipkeys import ip_key
from causette.web.keys import CONFIG, GEO, MODERATION, NODE, PAGES, SECRET, SERVICE
from causette.web.node import Node

log = logging.getLogger(__name__)

LANG_COOKIE = "causette_lang"
BAN_COOKIE = "causette_ban"
BAN_COOKIE_MAX_AGE = 366 * 24 * 3600

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


# --- request helpers -------------------------------------------------------------------------


def is_secure(request: web.Request, config: Config) -> bool:
    if config.server.trust_proxy_headers:
        proto = request.headers.get("X-Forwarded-Proto", "")
        if proto:
            return proto.split(",")[0].strip().lower() == "https"
    return request.secure


def client_address(request: web.Request, config: Config) -> str:
    """The peer's address; behind a trusted proxy, the last hop it added to X-Forwarded-For
    (earlier entries are whatever the client claimed). Used only to compute keyed hashes."""
    if config.server.trust_proxy_headers:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    return request.remote or ""


def network_key(request: web.Request) -> str:
    """The keyed hash of the client's network (IPv4 address or IPv6 /64); "" if unknown."""
    address = client_address(request, request.app[CONFIG])
    try:
        return ip_key(request.app[SECRET], address)
    except ValueError:
        return ""


def origin_allowed(request: web.Request, config: Config) -> bool:
    origin = request.headers.get("Origin")
    if not origin:
        return False
    scheme = "https" if is_secure(request, config) else "http"
    return origin == f"{scheme}://{request.host}" or origin in config.server.allowed_origins


def pick_lang(request: web.Request, config: Config, explicit: str | None = None) -> str:
    for candidate in (explicit, request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in ("fr", "en"):
            return candidate
    ranked: list[tuple[float, str]] = []
    for part in request.headers.get("Accept-Language", "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.split("-")[0].strip().lower()
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if primary in ("fr", "en"):
            ranked.append((q, primary))
    if ranked:
        return max(ranked, key=lambda t: t[0])[1]
    return config.site.default_lang


async def current_session(request: web.Request) -> Session | None:
    config = request.app[CONFIG]
    token = request.cookies.get(config.sessions.cookie_name, "")
    return await request.app[SERVICE].session_for_token(token)


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(data),
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def error_response(exc: errors.CausetteError, lang: str) -> web.Response:
    problems = exc.problems if isinstance(exc, Invalid) else [exc]
    status = exc.status
    if isinstance(exc, Invalid) and len(problems) == 1:
        status = problems[0].status
    return json_response({"errors": [p.to_dict(lang) for p in problems]}, status=status)


_T = TypeVar("_T", bound=msgspec.Struct)


async def read_json(request: web.Request, kind: type[_T]) -> _T:
    """The request's JSON body as ``kind``, or a ``bad_request`` naming the field at fault."""
    if request.content_type != "application/json":
        raise errors.BadRequest(detail="Content-Type must be application/json")
    raw = await request.read()
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        where = text.rsplit(" - at `$.", 1)
        name = where[1].rstrip("`") if len(where) == 2 else None
        if name is None and "field `" in text:
            name = text.split("field `", 1)[1].split("`", 1)[0]
        raise errors.BadRequest(field=name, detail=text) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(detail="the body is not valid JSON") from exc


# --- every answer ----------------------------------------------------------------------------
# No middleware: aiohttp keeps a middleware's coroutine frame (and one of its own) alive for as
# long as its handler runs, that is for each WebSocket's whole life. The headers are added when
# any answer is prepared (WebSocket upgrades and aiohttp's own 404s included), errors are turned
# into JSON by a wrapper around each HTTP handler; the WebSocket handlers answer their refusals
# themselves (``error_answer``).

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def add_security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every answer carries the security headers, except a WebSocket's
    upgrade (they say nothing to a WebSocket, and its answer's headers live as long as it)."""
    if isinstance(response, web.WebSocketResponse):
        return
    response.headers.update(SECURITY_HEADERS)
    app_request = cast(web.Request, request)  # the signal is the application's: a Request
    if is_secure(app_request, app_request.app[CONFIG]):
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer for what a handler raised; aiohttp's own HTTP exceptions go on."""
    config = request.app[CONFIG]
    if isinstance(exc, errors.CausetteError):
        return error_response(exc, pick_lang(request, config))
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return error_response(errors.BodyTooLarge(), pick_lang(request, config))
    if isinstance(exc, web.HTTPException):
        raise exc
    log.error("request_failed", extra={"route": _route(request)}, exc_info=exc)
    return error_response(errors.InternalError(), pick_lang(request, config))


def json_errors(handler: Handler) -> Handler:
    """``handler``, with what it raises answered as JSON errors (``error_answer``)."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            return error_answer(request, exc)

    return answer


async def not_found(request: web.Request) -> web.Response:
    raise errors.NotFound()


def _route(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "?"


# --- pages -----------------------------------------------------------------------------------


class Pages:
    """The page templates, read once. Only two placeholders are filled: the language and the
    site name (escaped); everything else is static."""

    def __init__(self, config: Config) -> None:
        self.config = config
        templates = resources.files("causette.web").joinpath("templates")
        self.index = templates.joinpath("index.html").read_text("utf-8")
        self.rules_page = templates.joinpath("rules.html").read_text("utf-8")
        self.decision = templates.joinpath("decision.html").read_text("utf-8")
        self.case = templates.joinpath("case.html").read_text("utf-8")
        self.rules = {lang: _read_rules(config, lang) for lang in ("fr", "en")}

    def render(self, template: str, lang: str, **extra: str) -> str:
        out = template.replace("{{lang}}", lang).replace(
            "{{site_name}}", html.escape(self.config.site.name)
        )
        for key, value in extra.items():
            out = out.replace("{{" + key + "}}", value)
        return out


def _read_rules(config: Config, lang: str) -> str:
    path = config.site.rules_file_en if lang == "en" else config.site.rules_file
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    data = resources.files("causette").joinpath("data", f"rules.{lang}.txt")
    text = data.read_text("utf-8").strip()
    return text.replace("{min_age}", str(config.site.min_age))


def _html_paragraphs(text: str) -> str:
    return "\n".join(
        f"<p>{html.escape(block.strip()).replace(chr(10), '<br>')}</p>"
        for block in text.split("\n\n")
        if block.strip()
    )


async def index(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    lang = pick_lang(request, request.app[CONFIG])
    return web.Response(
        text=pages.render(pages.index, lang),
        content_type="text/html",
        headers={"Cache-Control": "no-cache"},
    )


async def rules_page(request: web.Request) -> web.Response:
    pages = request.app[PAGES]
    lang = pick_lang(request, request.app[CONFIG])
    body = _html_paragraphs(pages.rules[lang])
    return web.Response(
        text=pages.render(pages.rules_page, lang, rules=body), content_type="text/html"
    )


# --- API -------------------------------------------------------------------------------------


async def decision_page(request: web.Request) -> web.Response:
    """The statement of reasons and the appeal form (the page reads the code from its URL)."""
    pages = request.app[PAGES]
    lang = pick_lang(request, request.app[CONFIG])
    return web.Response(text=pages.render(pages.decision, lang), content_type="text/html")


async def case_page(request: web.Request) -> web.Response:
    """What became of a report (the page reads the case code from its URL)."""
    pages = request.app[PAGES]
    lang = pick_lang(request, request.app[CONFIG])
    return web.Response(text=pages.render(pages.case, lang), content_type="text/html")


async def site_info(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    pages = request.app[PAGES]
    lang = pick_lang(request, config)
    rooms = request.app[SERVICE].room_infos(lang)
    return json_response(
        {
            "name": config.site.name,
            "min_age": config.site.min_age,
            "max_age": config.site.max_age,
            "default_lang": config.site.default_lang,
            "rules": pages.rules,
            "rooms": rooms,
            "max_chars": config.messages.max_chars,
            "lifetime_ms": config.lifetime_ms,
        }
    )


async def geo_postal(request: web.Request) -> web.Response:
    geo: Geo = request.app[GEO]
    code = request.match_info["code"]
    communes = geo.postal(code)
    if not communes:
        # Not found (404), not an invalid form (the error's own status, 422, is for entry).
        exc = errors.PostalCodeInvalid(field="postal_code")
        lang = pick_lang(request, request.app[CONFIG])
        return json_response({"errors": [exc.to_dict(lang)]}, status=404)
    return json_response(
        {
            "postal_code": code,
            "communes": [
                {
                    "code": c.code,
                    "name": c.name,
                    "dep": c.dep,
                    "dep_name": c.dep_name,
                    "region": c.region,
                    "region_name": c.region_name,
                    "former": list(c.former),
                }
                for c in communes
            ],
        }
    )


async def geo_areas(request: web.Request) -> web.Response:
    geo: Geo = request.app[GEO]
    response = json_response(
        {
            "departements": [
                {"code": code, "name": name, "region": region}
                for code, name, region in geo.departements()
            ],
            "regions": [{"code": code, "name": name} for code, name in geo.regions()],
            "attribution": geo.attribution,
        }
    )
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


class EntryBody(msgspec.Struct):
    # ``None`` is accepted everywhere (an empty form field), so that one null cannot hide the
    # other fields' problems: the service reports them all at once.
    pseudonym: str | None = None
    gender: str | None = None
    age: int | None = None
    postal_code: str | None = None
    commune: str | None = None
    accept_rules: bool | None = None
    lang: str | None = None


_entry_decoder = msgspec.json.Decoder(EntryBody)
_FIELD_ERRORS: dict[str, type[errors.CausetteError]] = {
    "pseudonym": errors.PseudonymLength,
    "gender": errors.GenderInvalid,
    "postal_code": errors.PostalCodeInvalid,
    "commune": errors.CommuneInvalid,
    "accept_rules": errors.RulesNotAccepted,
}


def _require_same_origin(request: web.Request) -> None:
    if not origin_allowed(request, request.app[CONFIG]):
        raise errors.OriginForbidden()


async def enter(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    _require_same_origin(request)
    if request.content_type != "application/json":
        raise errors.BadRequest(detail="Content-Type must be application/json")
    raw = await request.read()
    lang = pick_lang(request, config)
    try:
        body = _entry_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _entry_type_error(str(exc), config) from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(detail="the body is not valid JSON") from exc
    lang = pick_lang(request, config, body.lang or None)
    form = EntryForm(
        pseudonym=body.pseudonym or "",
        gender=body.gender or "",
        age=body.age,
        postal_code=body.postal_code or "",
        commune=body.commune or "",
        accept_rules=bool(body.accept_rules),
        lang=lang,
        ip_key=network_key(request),
        ban_token=request.cookies.get(BAN_COOKIE, ""),
    )
    node: Node = request.app[NODE]
    if node.shutting_down:
        raise errors.ShuttingDown()
    try:
        session, token = await request.app[SERVICE].enter(form)
    except errors.Banned as exc:
        # The refusal carries the signed ban cookie: the refusal holds without the network.
        ban_token = exc.details.pop("ban_token", "")
        response = error_response(exc, lang)
        if ban_token:
            _set_ban_cookie(request, response, ban_token)
        log.info("entry_refused_banned")
        return response
    except errors.CausetteError as exc:
        return error_response(exc, lang)
    response = json_response({"me": session.profile, "lang": session.lang}, status=201)
    _set_session_cookie(request, response, token)
    log.info("session_created")
    return response


def _entry_type_error(text: str, config: Config) -> errors.CausetteError:
    field = text.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in text else ""
    if field == "age":
        return errors.AgeInvalid(field="age", min=config.site.min_age, max=config.site.max_age)
    if field in _FIELD_ERRORS:
        cls = _FIELD_ERRORS[field]
        if cls is errors.PseudonymLength:
            return cls(field=field, min=2, max=20)
        return cls(field=field)
    return errors.BadRequest(detail=text)


def _set_session_cookie(request: web.Request, response: web.Response, token: str) -> None:
    config = request.app[CONFIG]
    response.set_cookie(
        config.sessions.cookie_name,
        token,
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, config),
        path="/",
    )


def _set_ban_cookie(request: web.Request, response: web.Response, value: str) -> None:
    response.set_cookie(
        BAN_COOKIE,
        value,
        httponly=True,
        samesite="Strict",
        secure=is_secure(request, request.app[CONFIG]),
        path="/",
        max_age=BAN_COOKIE_MAX_AGE,
    )


class ClaimBody(msgspec.Struct):
    token: str


async def claim_ban_cookie(request: web.Request) -> web.Response:
    """The page of a person just banned hands back the token it received with the decision;
    the server turns it into an HttpOnly cookie. Only the banned person's own connection ever
    received the token, so nobody can plant a ban cookie on someone else."""
    _require_same_origin(request)
    body = await read_json(request, ClaimBody)
    moderation = request.app[MODERATION]
    if moderation.verify_ban_token(body.token) is None:
        raise errors.BadRequest(detail="invalid token")
    response = web.Response(status=204)
    _set_ban_cookie(request, response, body.token)
    return response


async def decision(request: web.Request) -> web.Response:
    """A statement of reasons, for whoever holds its code (the person it concerns)."""
    config = request.app[CONFIG]
    lookups = request.app[NODE].limiter
    key = "lookup-net:" + network_key(request)
    if not lookups.take(key, 1.0, 30, request.app[NODE].clock.now_ms()):
        raise errors.RateLimited(
            what=what("lookups", pick_lang(request, request.app[CONFIG])),
            seconds=seconds(lookups.retry_after_ms(key)),
        )
    view = await request.app[MODERATION].decision_view(
        request.match_info["code"], pick_lang(request, config)
    )
    return json_response(view)


class AppealBody(msgspec.Struct):
    text: str


async def appeal(request: web.Request) -> web.Response:
    _require_same_origin(request)
    node: Node = request.app[NODE]
    key = "appeal-net:" + network_key(request)
    if not node.limiter.take(key, 10 / 3600, 5, node.clock.now_ms()):
        raise errors.RateLimited(
            what=what("appeals", pick_lang(request, request.app[CONFIG])),
            seconds=seconds(node.limiter.retry_after_ms(key)),
        )
    body = await read_json(request, AppealBody)
    moderation = request.app[MODERATION]
    code = request.match_info["code"]
    _, effects = await moderation.appeal(code, body.text)
    await node.run(effects)
    view = await moderation.decision_view(code, pick_lang(request, request.app[CONFIG]))
    return json_response(view, status=201)


async def case_status(request: web.Request) -> web.Response:
    """What became of a report, for whoever holds the case code (the reporter)."""
    node: Node = request.app[NODE]
    key = "lookup-net:" + network_key(request)
    if not node.limiter.take(key, 1.0, 30, node.clock.now_ms()):
        raise errors.RateLimited(
            what=what("lookups", pick_lang(request, request.app[CONFIG])),
            seconds=seconds(node.limiter.retry_after_ms(key)),
        )
    status = await request.app[MODERATION].case_status(
        request.match_info["code"], pick_lang(request, request.app[CONFIG])
    )
    return json_response(status)


async def whoami(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        raise errors.NotAuthenticated()
    return json_response({"me": session.profile, "lang": session.lang})


async def leave_site(request: web.Request) -> web.Response:
    """ "Quitter": end the session everywhere and forget the cookie."""
    _require_same_origin(request)
    config = request.app[CONFIG]
    session = await current_session(request)
    if session is not None:
        await request.app[NODE].quit(session)
        log.info("session_quit")
    response = web.Response(status=204, headers={"Cache-Control": "no-store"})
    response.del_cookie(config.sessions.cookie_name, path="/")
    return response


async def healthz(request: web.Request) -> web.Response:
    node: Node = request.app[NODE]
    if node.shutting_down:
        return json_response({"status": "shutting_down"}, status=503)
    try:
        await node.store.ping()
    except errors.CausetteError:
        return json_response({"status": "store_unavailable"}, status=503)
    return json_response({"status": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", json_errors(index), name="index")
    app.router.add_get("/rules", json_errors(rules_page), name="rules")
    app.router.add_get("/decision/{code}", json_errors(decision_page), name="decision")
    app.router.add_get("/case/{code}", json_errors(case_page), name="case")
    app.router.add_get("/api/site", json_errors(site_info))
    app.router.add_get("/api/geo/postal/{code}", json_errors(geo_postal))
    app.router.add_get("/api/geo/areas", json_errors(geo_areas))
    app.router.add_post("/api/session", json_errors(enter))
    app.router.add_get("/api/session", json_errors(whoami))
    app.router.add_delete("/api/session", json_errors(leave_site))
    app.router.add_get("/healthz", json_errors(healthz))
    app.router.add_get("/api/decisions/{code}", json_errors(decision))
    app.router.add_post("/api/decisions/{code}/appeal", json_errors(appeal))
    app.router.add_post("/api/ban-cookie", json_errors(claim_ban_cookie))
    app.router.add_get("/api/cases/{code}", json_errors(case_status))
    # Last: anything else under /api answers a JSON ``not_found``.
    app.router.add_route("*", "/api/{tail:.*}", json_errors(not_found))
