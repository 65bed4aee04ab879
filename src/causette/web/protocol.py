"""Decode client frames into typed commands (one validating step) and encode events once.

Every way a frame can be wrong maps to one error with a stable code; see docs/protocol.md.
"""

from __future__ import annotations

import re

import msgspec

from causette import errors
from causette.core import commands as cmd
from causette.core.events import error_event
from causette.core.models import Message

_decoder = msgspec.json.Decoder(cmd.AnyCommand)
_encoder = msgspec.json.Encoder()
_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED_FIELD = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]*)`")


def decode_command(data: bytes, max_bytes: int) -> cmd.AnyCommand:
    if len(data) > max_bytes:
        raise errors.FrameTooLarge(max=max_bytes)
    try:
        command: cmd.AnyCommand = _decoder.decode(data)
        return command
    except UnicodeDecodeError as exc:
        raise errors.BadUtf8() from exc
    except msgspec.ValidationError as exc:
        raise _validation_error(str(exc)) from exc
    except msgspec.DecodeError as exc:
        if _is_bad_utf8(data):
            raise errors.BadUtf8() from exc
        raise errors.BadJson() from exc


def _is_bad_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _validation_error(text: str) -> errors.CausetteError:
    match = _PATH.search(text)
    path = match.group(1) if match else ""
    if path == "type":
        if text.startswith("Invalid value"):
            return errors.UnknownType(field="type", type=text.split("'")[1] if "'" in text else "?")
        return errors.UnknownType(field="type", type="?")
    if "missing required field `type`" in text:
        return errors.UnknownType(field="type", type="(none)")
    if text.startswith("Expected `object`"):
        return errors.UnknownType(field="type", type="(not an object)")
    detail = _PATH.sub("", text)
    if path:
        detail = f"{path}: {detail}"
    field = path.split(".")[0].split("[")[0] or None
    if field is None:  # an unknown or missing field of the command itself: name it
        named = _NAMED_FIELD.match(text)
        field = named.group(1) if named else None
    return errors.BadField(field=field, detail=detail)


def command_ref(data: bytes) -> str | None:
    """Best effort: the ``ref`` (or ``local_id``) of a frame that failed to decode, so the client
    can tie the error to what it sent."""
    try:
        raw = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    if isinstance(raw, dict):
        for key in ("ref", "local_id"):
            value = raw.get(key)
            if isinstance(value, str) and len(value) <= 64:
                return value
    return None


def encode(event: msgspec.Struct | Message) -> bytes:
    return _encoder.encode(event)


__all__ = ["command_ref", "decode_command", "encode", "error_event"]
