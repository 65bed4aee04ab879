"""Moderator accounts: the only accounts in Causette.

Passwords are hashed with Argon2id (argon2-cffi's defaults, rehashed when they change); logins
need the password and a TOTP code (RFC 6238, pyotp); repeated failures lock the account for a
while; sessions are random tokens of which only a SHA-256 hash is stored, in a cookie separate
from visitors'. Hashing runs in a worker thread: it costs tens of milliseconds of CPU on purpose.
Every step is written to the audit log, never the password or the code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets

import argon2
import pyotp

from causette import errors
from causette.core.cases import Moderator, ModSession, Role
from causette.core.ports import Clock, FullStore
from causette.ids import token_hash

PASSWORD_MIN = 12
MAX_FAILURES = 5
LOCK_MINUTES = 15
SESSION_HOURS = 12
ISSUER = "Causette"

_hasher = argon2.PasswordHasher()
# Verified when the login is unknown, so that a wrong login takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def check_password_strength(password: str) -> None:
    if len(password) < PASSWORD_MIN or password.isdigit() or len(set(password)) < 5:
        raise errors.PasswordTooWeak(field="password", min=PASSWORD_MIN)


def normalize_login(login: str) -> str:
    value = login.strip().lower()
    if not 2 <= len(value) <= 40 or not all(c.isalnum() or c in "._-" for c in value):
        raise errors.BadRequest(
            field="login", detail="a login is 2–40 letters, digits, '.', '_' or '-'"
        )
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Enrolment:
    """What a new moderator needs to set up two-factor authentication."""

    moderator: Moderator
    secret: str  # base32, to type into an authenticator app
    uri: str  # otpauth:// URI, shown as a QR code


class Accounts:
    def __init__(self, store: FullStore, clock: Clock, site_name: str = ISSUER) -> None:
        self.store = store
        self.clock = clock
        self.site_name = site_name

    async def add(self, login: str, password: str, role: Role, *, by: str) -> Enrolment:
        login = normalize_login(login)
        check_password_strength(password)
        secret = pyotp.random_base32()
        moderator = Moderator(
            id=secrets.token_urlsafe(9),
            login=login,
            password_hash=await asyncio.to_thread(_hasher.hash, password),
            totp_secret=secret,
            role=role,
            created_at=self.clock.now_ms(),
        )
        await self.store.add_moderator(moderator)
        await self._audit(by, "moderator.add", moderator, {"role": role.value})
        return Enrolment(moderator, secret, self.provisioning_uri(moderator))

    def provisioning_uri(self, moderator: Moderator) -> str:
        return pyotp.TOTP(moderator.totp_secret).provisioning_uri(
            name=moderator.login, issuer_name=self.site_name
        )

    async def set_password(self, login: str, password: str, *, by: str) -> Moderator:
        moderator = await self._get(login)
        check_password_strength(password)
        updated = dataclasses.replace(
            moderator,
            password_hash=await asyncio.to_thread(_hasher.hash, password),
            failed_logins=0,
            locked_until=None,
        )
        await self.store.update_moderator(updated)
        await self.store.delete_mod_sessions_of(moderator.id)
        await self._audit(by, "moderator.password", updated, {})
        return updated

    async def reset_totp(self, login: str, *, by: str) -> Enrolment:
        moderator = await self._get(login)
        updated = dataclasses.replace(moderator, totp_secret=pyotp.random_base32())
        await self.store.update_moderator(updated)
        await self.store.delete_mod_sessions_of(moderator.id)
        await self._audit(by, "moderator.reset_totp", updated, {})
        return Enrolment(updated, updated.totp_secret, self.provisioning_uri(updated))

    async def set_disabled(self, login: str, disabled: bool, *, by: str) -> Moderator:
        moderator = await self._get(login)
        updated = dataclasses.replace(moderator, disabled=disabled)
        await self.store.update_moderator(updated)
        if disabled:
            await self.store.delete_mod_sessions_of(moderator.id)
        await self._audit(by, "moderator.disable" if disabled else "moderator.enable", updated, {})
        return updated

    async def login(self, login: str, password: str, code: str) -> tuple[Moderator, str]:
        """Check password and TOTP code; return the moderator and a new session token."""
        now = self.clock.now_ms()
        try:
            name = normalize_login(login)
        except errors.BadRequest:
            name = ""
        moderator = await self.store.moderator_by_login(name) if name else None
        if moderator is None:
            await asyncio.to_thread(_verify, _DUMMY_HASH, password)
            await self.store.audit(
                ts=now,
                actor="anonymous",
                action="login.failed",
                case_id=None,
                target="moderator:?",
                reason="unknown login",
                details={},
            )
            raise errors.LoginFailed()
        password_ok = await asyncio.to_thread(_verify, moderator.password_hash, password)
        code_ok = pyotp.TOTP(moderator.totp_secret).verify(
            code.strip(), for_time=now // 1000, valid_window=1
        )
        if moderator.locked_until is not None and moderator.locked_until > now:
            # The lock is told only to someone who knows the password and the code: to anyone
            # else a locked account looks like any failure (no way to learn which logins exist).
            if password_ok and code_ok and not moderator.disabled:
                minutes = max(1, (moderator.locked_until - now + 59_999) // 60_000)
                raise errors.AccountLocked(minutes=minutes)
            await self._audit("anonymous", "login.failed", moderator, {"locked": True})
            raise errors.LoginFailed()
        if moderator.disabled or not (password_ok and code_ok):
            failures = moderator.failed_logins + 1
            locked = now + LOCK_MINUTES * 60_000 if failures >= MAX_FAILURES else None
            await self.store.update_moderator(
                dataclasses.replace(
                    moderator,
                    failed_logins=0 if locked else failures,
                    locked_until=locked,
                )
            )
            await self._audit(
                "anonymous",
                "login.locked" if locked else "login.failed",
                moderator,
                {"failures": failures},
            )
            raise errors.LoginFailed()
        if _hasher.check_needs_rehash(moderator.password_hash):
            moderator = dataclasses.replace(
                moderator, password_hash=await asyncio.to_thread(_hasher.hash, password)
            )
        moderator = dataclasses.replace(moderator, failed_logins=0, locked_until=None)
        await self.store.update_moderator(moderator)
        token = secrets.token_urlsafe(32)
        await self.store.create_mod_session(
            ModSession(
                token_hash=token_hash(token),
                moderator_id=moderator.id,
                created_at=now,
                expires_at=now + SESSION_HOURS * 3600_000,
            )
        )
        await self._audit(f"mod:{moderator.id}", "login", moderator, {})
        return moderator, token

    async def session(self, token: str) -> Moderator | None:
        """The moderator behind a console cookie, if the session is valid and not disabled."""
        if not token or len(token) > 100:
            return None
        session = await self.store.mod_session(token_hash(token), self.clock.now_ms())
        if session is None:
            return None
        moderator = await self.store.get_moderator(session.moderator_id)
        if moderator is None or moderator.disabled:
            return None
        return moderator

    async def logout(self, token: str) -> None:
        moderator = await self.session(token)
        await self.store.delete_mod_session(token_hash(token))
        if moderator is not None:
            await self._audit(f"mod:{moderator.id}", "logout", moderator, {})

    async def _get(self, login: str) -> Moderator:
        moderator = await self.store.moderator_by_login(normalize_login(login))
        if moderator is None:
            raise errors.BadRequest(field="login", detail="no such moderator")
        return moderator

    async def _audit(
        self, actor: str, action: str, moderator: Moderator, details: dict[str, object]
    ) -> None:
        await self.store.audit(
            ts=self.clock.now_ms(),
            actor=actor,
            action=action,
            case_id=None,
            target=f"moderator:{moderator.login}",
            reason="",
            details=details,
        )


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
