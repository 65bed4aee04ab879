"""Identifiers and secrets. Person and message ids are public and random; session tokens are
secrets (256 bits) of which only a SHA-256 hash is stored."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from typing import Protocol

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdSource(Protocol):
    def person_id(self) -> str: ...
    def message_id(self) -> str: ...
    def token(self) -> str: ...
    def epoch(self) -> str: ...
    def code(self, prefix: str) -> str: ...


class RandomBytes:
    """Bytes from the operating system's CSPRNG, fetched 4 KB at a time, for public ids.

    ``os.urandom`` releases the GIL around its system call, and on the message path (one id per
    message) each release let the SQLite worker's thread take the GIL from the event loop, which
    then waited up to the switch interval (decision 11). The bytes are the same as
    ``secrets.token_bytes`` would give; a process forked from this one starts with none of them
    (no two processes hand out the same ids). Secrets (session tokens) do not come from here."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()  # ids are made on the loop and on the store's thread
        self._buffer = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._buffer):
                self._buffer, at = os.urandom(max(self.SIZE, n)), 0
            self._at = at + n
            return self._buffer[at : at + n]

    def forget(self) -> None:
        self._buffer, self._at = b"", 0
        self._lock = threading.Lock()  # a fork may have copied it held


_PUBLIC = RandomBytes()
os.register_at_fork(after_in_child=_PUBLIC.forget)


def public_token(n: int) -> str:
    """``secrets.token_urlsafe(n)`` for ids that are not secrets: the same alphabet and length."""
    return base64.urlsafe_b64encode(_PUBLIC.take(n)).rstrip(b"=").decode("ascii")


class RandomIds:
    """The production id source."""

    def person_id(self) -> str:
        # 72 random bits, URL-safe, no ':' (stream ids use ':' as separator).
        return public_token(9)

    def message_id(self) -> str:
        return public_token(12)

    def token(self) -> str:
        return secrets.token_urlsafe(32)

    def epoch(self) -> str:
        return public_token(6)

    def code(self, prefix: str) -> str:
        """A code people may read aloud or type: 40 random bits in Crockford's base 32 (no
        I, L, O or U), e.g. ``C-7KQH2XPM``. Unguessable enough to be the capability to
        follow a case or appeal a decision (lookups are rate-limited)."""
        return prefix + "-" + "".join(secrets.choice(CROCKFORD) for _ in range(8))


class SequentialIds:
    """Predictable ids for tests."""

    def __init__(self) -> None:
        self._n = 0

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def person_id(self) -> str:
        return self._next("p")

    def message_id(self) -> str:
        return self._next("m")

    def token(self) -> str:
        return self._next("token-") + "-" + secrets.token_urlsafe(8)

    def epoch(self) -> str:
        return self._next("e")

    def code(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n:08d}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
