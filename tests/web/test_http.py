"""HTTP: entry, session, origin checks, cookies, geography, pages and their security headers."""

from __future__ import annotations

import base64
import json
import os
from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer, ServerFactory

FORM: dict[str, Any] = {
    "pseudonym": "Camille",
    "gender": "f",
    "age": 34,
    "postal_code": "69001",
    "commune": "69381",
    "accept_rules": True,
}


async def request(
    server: RunningServer,
    method: str,
    path: str,
    *,
    body: Any = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, aiohttp.ClientResponse]:
    """One request without a cookie jar; returns (status, decoded JSON body or text, response)."""
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
        http.request(method, server.url + path, data=data, headers=hdrs) as resp,
    ):
        raw = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, json.loads(raw), resp
        return resp.status, raw.decode("utf-8", "replace"), resp


def error_codes(body: Any) -> list[tuple[str, str | None]]:
    return [(e["code"], e.get("field")) for e in body["errors"]]


def set_cookie(resp: aiohttp.ClientResponse, name: str) -> dict[str, Any]:
    """The attributes of the Set-Cookie header for ``name``."""
    for header in resp.headers.getall("Set-Cookie", []):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            return {"value": morsel.value, **{k.lower(): v for k, v in morsel.items()}}
    raise AssertionError(f"no Set-Cookie for {name}")


# --- entering --------------------------------------------------------------------------------


async def test_entry_creates_a_session_with_a_safe_cookie(server: RunningServer) -> None:
    status, body, resp = await request(
        server, "POST", "/api/session", body=FORM, headers={"Origin": server.url}
    )
    assert status == 201
    assert body["me"]["name"] == "Camille"
    assert (body["me"]["commune"], body["me"]["dep"], body["me"]["region"]) == (
        "Lyon 1er Arrondissement",
        "69",
        "84",
    )
    assert body["lang"] == "fr"
    cookie = set_cookie(resp, "causette_session")
    assert len(cookie["value"]) >= 43  # 256 random bits, URL-safe base64
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert not cookie["secure"]  # plain http: a Secure cookie would never come back
    assert resp.headers["Cache-Control"] == "no-store"
    # The cookie is who you are.
    status, who, _ = await request(
        server, "GET", "/api/session", headers={"Cookie": f"causette_session={cookie['value']}"}
    )
    assert status == 200
    assert who == body


async def test_the_cookie_is_secure_behind_a_trusted_https_proxy(
    start_server: ServerFactory,
) -> None:
    server: RunningServer = await start_server(server={"trust_proxy_headers": True})
    https_origin = server.url.replace("http://", "https://")
    status, _, resp = await request(
        server,
        "POST",
        "/api/session",
        body=FORM,
        headers={"Origin": https_origin, "X-Forwarded-Proto": "https"},
    )
    assert status == 201
    assert set_cookie(resp, "causette_session")["secure"] is True
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_forwarded_proto_is_ignored_unless_trusted(server: RunningServer) -> None:
    status, _, resp = await request(
        server,
        "POST",
        "/api/session",
        body=FORM,
        headers={"Origin": server.url, "X-Forwarded-Proto": "https"},
    )
    assert status == 201
    assert not set_cookie(resp, "causette_session")["secure"]


async def test_who_am_i_needs_a_session(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/api/session")
    assert status == 401
    assert error_codes(body) == [("not_authenticated", None)]
    status, body, _ = await request(
        server, "GET", "/api/session", headers={"Cookie": "causette_session=forged"}
    )
    assert status == 401


async def test_entry_refusals_are_reported_together(server: RunningServer) -> None:
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        body={**FORM, "pseudonym": "x", "age": 16, "postal_code": "00000", "accept_rules": False},
        headers={"Origin": server.url},
    )
    assert status == 422
    assert sorted(error_codes(body)) == [
        ("age_too_young", "age"),
        ("postal_code_invalid", "postal_code"),
        ("pseudonym_length", "pseudonym"),
        ("rules_not_accepted", "accept_rules"),
    ]


async def test_a_pseudonym_in_use_is_refused_with_409(server: RunningServer) -> None:
    await server.client().enter("Camille")
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        body={**FORM, "pseudonym": "CAMILLE"},
        headers={"Origin": server.url},
    )
    assert status == 409
    assert error_codes(body) == [("pseudonym_taken", "pseudonym")]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("age", "trente", "age_invalid"),
        ("pseudonym", 42, "pseudonym_length"),
        ("accept_rules", "yes", "rules_not_accepted"),
    ],
)
async def test_entry_fields_of_the_wrong_type(
    server: RunningServer, field: str, value: Any, code: str
) -> None:
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        body={**FORM, field: value},
        headers={"Origin": server.url},
    )
    assert status == 422
    assert error_codes(body) == [(code, field)]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", None])
async def test_entry_from_another_origin_is_refused(
    server: RunningServer, origin: str | None
) -> None:
    headers = {"Origin": origin} if origin is not None else {}
    status, body, resp = await request(server, "POST", "/api/session", body=FORM, headers=headers)
    assert status == 403
    assert error_codes(body) == [("origin_forbidden", None)]
    assert "Set-Cookie" not in resp.headers


async def test_an_allowed_origin_may_enter(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(server={"allowed_origins": ["https://chat.example"]})
    status, _, _ = await request(
        server, "POST", "/api/session", body=FORM, headers={"Origin": "https://chat.example"}
    )
    assert status == 201


async def test_entry_needs_a_json_content_type(server: RunningServer) -> None:
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        data=json.dumps(FORM).encode(),
        headers={"Origin": server.url, "Content-Type": "text/plain"},
    )
    assert status == 400
    assert error_codes(body) == [("bad_request", None)]


async def test_entry_with_a_body_that_is_not_json(server: RunningServer) -> None:
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        data=b"{pseudonym",
        headers={"Origin": server.url, "Content-Type": "application/json"},
    )
    assert status == 400
    assert error_codes(body) == [("bad_request", None)]


async def test_a_body_above_the_limit_is_refused(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(limits={"max_body_bytes": 2048})
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        body={**FORM, "padding": "x" * 4096},
        headers={"Origin": server.url},
    )
    assert status == 413
    assert error_codes(body) == [("body_too_large", None)]


async def test_quit_needs_the_sites_origin(server: RunningServer) -> None:
    alice = server.client()
    await alice.enter("Alice")
    cookie = {"Cookie": f"causette_session={alice.session_token()}"}
    status, body, _ = await request(
        server, "DELETE", "/api/session", headers={**cookie, "Origin": "http://evil.example"}
    )
    assert status == 403
    assert error_codes(body) == [("origin_forbidden", None)]
    assert (await alice.get("/api/session"))[0] == 200  # still in


# --- the WebSocket handshake --------------------------------------------------------------------


def upgrade_headers(origin: str | None, cookie: str | None = None) -> dict[str, str]:
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        headers["Origin"] = origin
    if cookie is not None:
        headers["Cookie"] = f"causette_session={cookie}"
    return headers


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_websocket_from_another_origin_is_refused(
    server: RunningServer, origin: str | None
) -> None:
    alice = server.client()
    await alice.enter("Alice")
    status, body, resp = await request(
        server, "GET", "/ws", headers=upgrade_headers(origin, alice.session_token())
    )
    assert status == 403
    assert error_codes(body) == [("origin_forbidden", None)]
    assert "Sec-WebSocket-Accept" not in resp.headers


async def test_websocket_without_a_session_is_refused(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/ws", headers=upgrade_headers(server.url))
    assert status == 401
    assert error_codes(body) == [("not_authenticated", None)]
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await server.client().connect()
    assert info.value.status == 401


# --- geography, site, pages, health ---------------------------------------------------------------


async def test_postal_code_lookup(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/api/geo/postal/75011")
    assert status == 200
    assert body["postal_code"] == "75011"
    [commune] = body["communes"]
    assert (commune["code"], commune["name"], commune["dep"], commune["region"]) == (
        "75111",
        "Paris 11e Arrondissement",
        "75",
        "11",
    )
    assert (commune["dep_name"], commune["region_name"]) == ("Paris", "Île-de-France")
    status, body, _ = await request(server, "GET", "/api/geo/postal/01200")
    assert len(body["communes"]) > 1
    assert {c["dep"] for c in body["communes"]} == {"01", "74"}


@pytest.mark.parametrize("code", ["00000", "7501", "abcde"])
async def test_unknown_postal_code_is_404(server: RunningServer, code: str) -> None:
    status, body, _ = await request(server, "GET", f"/api/geo/postal/{code}")
    assert status == 404
    assert error_codes(body) == [("postal_code_invalid", "postal_code")]


async def test_areas_list_departements_and_regions(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/api/geo/areas")
    assert status == 200
    deps = {d["code"]: d for d in body["departements"]}
    assert deps["69"] == {"code": "69", "name": "Rhône", "region": "84"}
    assert deps["2A"]["region"] == "94"
    regions = {r["code"]: r["name"] for r in body["regions"]}
    assert regions["11"] == "Île-de-France"
    assert all(d["region"] in regions for d in body["departements"])


async def test_site_info(start_server: ServerFactory) -> None:
    server: RunningServer = await start_server(site={"name": "Papotage", "max_age": 77})
    status, body, _ = await request(server, "GET", "/api/site")
    assert status == 200
    assert (body["name"], body["min_age"], body["max_age"], body["default_lang"]) == (
        "Papotage",
        18,
        77,
        "fr",
    )
    assert "18" in body["rules"]["fr"]
    assert "18" in body["rules"]["en"]
    general = next(r for r in body["rooms"] if r["slug"] == "general")
    assert (general["name"], general["count"], general["min_age"]) == ("Général", 0, 18)
    status, english, _ = await request(
        server, "GET", "/api/site", headers={"Accept-Language": "en-GB,en;q=0.9"}
    )
    assert next(r for r in english["rooms"] if r["slug"] == "general")["name"] == "General"


@pytest.mark.parametrize("path", ["/", "/rules"])
async def test_pages_carry_security_headers(server: RunningServer, path: str) -> None:
    status, text, resp = await request(server, "GET", path)
    assert status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in resp.headers  # plain http
    assert "{{" not in text  # every placeholder was filled


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/geo/postal/00000", 404),  # an error answered by a handler
        ("GET", "/api/session", 401),
        ("GET", "/static/app.css", 200),  # a file
        ("GET", "/no-such-page", 404),  # aiohttp's own answer
        ("GET", "/ws", 403),  # a WebSocket refused before the upgrade (no Origin)
    ],
)
async def test_every_answer_carries_security_headers(
    server: RunningServer, method: str, path: str, status: int
) -> None:
    got, _, resp = await request(server, method, path)
    assert got == status
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


async def test_the_rules_page_shows_the_rules(server: RunningServer) -> None:
    status, text, _ = await request(server, "GET", "/rules")
    assert status == 200
    assert "18" in text  # the site's minimum age, filled in
    assert "{min_age}" not in text


@pytest.mark.parametrize(
    "headers",
    [{"Cookie": "causette_lang=en"}, {"Accept-Language": "en-US,en;q=0.8,fr;q=0.5"}],
)
async def test_errors_are_in_english_when_asked(
    server: RunningServer, headers: dict[str, str]
) -> None:
    status, body, _ = await request(server, "GET", "/api/geo/postal/00000", headers=headers)
    assert status == 404
    assert body["errors"][0]["message"] == (
        "Unknown postal code. Enter a 5-digit French postal code."
    )
    _, page, _ = await request(server, "GET", "/", headers=headers)
    assert 'lang="en"' in page


async def test_errors_are_in_french_by_default(server: RunningServer) -> None:
    _, body, _ = await request(
        server, "GET", "/api/geo/postal/00000", headers={"Accept-Language": "de-DE"}
    )
    assert body["errors"][0]["message"].startswith("Code postal inconnu")


async def test_entry_answers_in_the_language_of_the_form(server: RunningServer) -> None:
    status, body, _ = await request(
        server,
        "POST",
        "/api/session",
        body={**FORM, "age": 12, "lang": "en"},
        headers={"Origin": server.url},
    )
    assert status == 403
    assert body["errors"][0]["message"] == "Causette is for people aged 18 and over."


async def test_unknown_api_paths_are_json_404(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/api/nothing-here")
    assert status == 404
    assert error_codes(body) == [("not_found", None)]


async def test_health(server: RunningServer) -> None:
    status, body, _ = await request(server, "GET", "/healthz")
    assert (status, body) == (200, {"status": "ok"})
