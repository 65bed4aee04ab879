"""Identifiers and secrets. Person and message ids are public and random; session tokens are
secrets (256 bits) of which only a SHA-256 hash is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdSource(Protocol):
    def person_id(self) -> str: ...
    def message_id(self) -> str: ...
    def token(self) -> str: ...
    def epoch(self) -> str: ...
    def code(self, prefix: str) -> str: ...


class RandomIds:
    """The production id source."""

    def person_id(self) -> str:
        # 72 random bits, URL-safe, no ':' (stream ids use ':' as separator).
        return secrets.token_urlsafe(9)

    def message_id(self) -> str:
        return secrets.token_urlsafe(12)

    def token(self) -> str:
        return secrets.token_urlsafe(32)

    def epoch(self) -> str:
        return secrets.token_urlsafe(6)

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
