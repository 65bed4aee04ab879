"""Logs carry codes and counts, never what people wrote, their pseudonym or their address."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import RunningServer

SECRET_TEXT = "rendez-vous-au-kiosque-4242"
PSEUDONYM = "Zéphyrine"


def record_text(record: logging.LogRecord) -> str:
    """Everything a formatter could write for the record: message, arguments, extra fields,
    exception."""
    parts = [record.getMessage(), repr(record.args)]
    parts += [f"{k}={v!r}" for k, v in record.__dict__.items()]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


async def test_logs_hold_no_text_no_pseudonym_and_no_address(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # production's default level
    caplog.set_level(logging.DEBUG, logger="causette")
    zephyrine = await server.visitor(PSEUDONYM, postal_code="69001")
    bruno = await server.visitor("Bruno")
    await zephyrine.join("general")
    await bruno.join("general")
    await zephyrine.say("r:general", SECRET_TEXT)
    stream = "d:" + ":".join(sorted([zephyrine.me["id"], bruno.me["id"]]))
    await zephyrine.say(stream, SECRET_TEXT + " en privé")
    await zephyrine.say("r:general", SECRET_TEXT * 100)  # refused: too long
    await zephyrine.send_raw('{"type": "send", "text": "' + SECRET_TEXT + '"')  # not JSON
    await zephyrine.expect_error("bad_json")
    await zephyrine.send({"type": "dance", "text": SECRET_TEXT})
    await zephyrine.expect_error("unknown_type")
    status, _ = await server.client().post(
        "/api/session",
        {"pseudonym": PSEUDONYM, "gender": "f", "age": 30, "postal_code": "69001"},
    )
    assert status == 422  # taken (and rules not accepted)
    assert (await zephyrine.get("/api/geo/postal/69001"))[0] == 200
    assert await zephyrine.quit() == 204
    await zephyrine.wait_closed()
    await bruno.expect_msg("r:general", lambda e: e["kind"] == "leave")

    events = [r.getMessage() for r in caplog.records]
    # The capture works: the session's life is logged, by events and routes.
    assert "session_created" in events
    assert "session_quit" in events
    assert any(getattr(r, "route", "") == "/api/geo/postal/{code}" for r in caplog.records)
    for record in caplog.records:
        text = record_text(record)
        for secret in (SECRET_TEXT, PSEUDONYM, "127.0.0.1", "69001"):
            assert secret not in text, f"{secret!r} logged by {record.name}: {text}"
