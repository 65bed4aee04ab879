"""Moderator accounts: strong passwords, two factors, lock-out, sessions, all audited."""

from __future__ import annotations

import pyotp
import pytest

from causette import errors
from causette.core.cases import Role
from causette.core.clock import FakeClock
from causette.safety.accounts import Accounts
from causette.store.memory import MemoryStore

PASSWORD = "correct horse battery"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def accounts(clock: FakeClock) -> Accounts:
    return Accounts(MemoryStore(), clock)


def code(secret: str, clock: FakeClock) -> str:
    return pyotp.TOTP(secret).at(clock.now_ms() // 1000)


async def test_an_account_stores_an_argon2_hash_and_a_totp_secret(accounts: Accounts) -> None:
    enrolment = await accounts.add("Camille", PASSWORD, Role.MODERATOR, by="admin-cli")
    m = enrolment.moderator
    assert m.login == "camille"  # logins are case-insensitive
    assert m.password_hash.startswith("$argon2id$")
    assert PASSWORD not in m.password_hash
    assert enrolment.uri.startswith("otpauth://totp/Causette:camille?secret=")
    with pytest.raises(errors.ModeratorExists):
        await accounts.add("CAMILLE", PASSWORD, Role.ADMIN, by="admin-cli")


@pytest.mark.parametrize("weak", ["short", "123456789012345", "aaaaaaaaaaaaaaaa"])
async def test_weak_passwords_are_refused(accounts: Accounts, weak: str) -> None:
    with pytest.raises(errors.PasswordTooWeak):
        await accounts.add("camille", weak, Role.MODERATOR, by="admin-cli")


async def test_login_needs_the_password_and_the_current_code(
    accounts: Accounts, clock: FakeClock
) -> None:
    enrolment = await accounts.add("camille", PASSWORD, Role.MODERATOR, by="admin-cli")
    now_code = code(enrolment.secret, clock)
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", "wrong password!!", now_code)
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", PASSWORD, "000000" if now_code != "000000" else "111111")
    with pytest.raises(errors.LoginFailed):
        await accounts.login("nobody", PASSWORD, now_code)
    moderator, token = await accounts.login("Camille", PASSWORD, now_code)
    assert moderator.id == enrolment.moderator.id
    assert moderator.failed_logins == 0
    assert await accounts.session(token) == moderator
    await accounts.logout(token)
    assert await accounts.session(token) is None


async def test_five_failures_lock_the_account_for_fifteen_minutes(
    accounts: Accounts, clock: FakeClock
) -> None:
    enrolment = await accounts.add("camille", PASSWORD, Role.MODERATOR, by="admin-cli")
    for _ in range(5):
        with pytest.raises(errors.LoginFailed):
            await accounts.login("camille", "wrong password!!", code(enrolment.secret, clock))
    # Locked now. To someone without the password it looks like any failure (and like an
    # unknown login), so the lock reveals nothing…
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", "wrong password!!", code(enrolment.secret, clock))
    # …while the real moderator learns why, and waits.
    with pytest.raises(errors.AccountLocked) as info:
        await accounts.login("camille", PASSWORD, code(enrolment.secret, clock))
    assert "15" in info.value.message("fr")
    clock.advance(minutes=15)
    await accounts.login("camille", PASSWORD, code(enrolment.secret, clock))


async def test_sessions_expire_and_end_when_the_account_changes(
    accounts: Accounts, clock: FakeClock
) -> None:
    enrolment = await accounts.add("camille", PASSWORD, Role.ADMIN, by="admin-cli")
    _, token = await accounts.login("camille", PASSWORD, code(enrolment.secret, clock))
    clock.advance(minutes=12 * 60 + 1)
    assert await accounts.session(token) is None
    _, token = await accounts.login("camille", PASSWORD, code(enrolment.secret, clock))
    await accounts.set_password("camille", "another long password", by="admin-cli")
    assert await accounts.session(token) is None
    _, token = await accounts.login(
        "camille", "another long password", code(enrolment.secret, clock)
    )
    await accounts.set_disabled("camille", True, by="admin-cli")
    assert await accounts.session(token) is None
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", "another long password", code(enrolment.secret, clock))
    await accounts.set_disabled("camille", False, by="admin-cli")
    renewed = await accounts.reset_totp("camille", by="admin-cli")
    assert renewed.secret != enrolment.secret
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", "another long password", code(enrolment.secret, clock))
    await accounts.login("camille", "another long password", code(renewed.secret, clock))


async def test_every_step_is_audited_without_secrets(accounts: Accounts, clock: FakeClock) -> None:
    enrolment = await accounts.add("camille", PASSWORD, Role.MODERATOR, by="admin-cli")
    with pytest.raises(errors.LoginFailed):
        await accounts.login("camille", "wrong password!!", code(enrolment.secret, clock))
    await accounts.login("camille", PASSWORD, code(enrolment.secret, clock))
    log = await accounts.store.audit_log(10)
    assert [e.action for e in log] == ["login", "login.failed", "moderator.add"]
    for entry in log:
        text = repr(entry)
        assert PASSWORD not in text
        assert "wrong password" not in text
        assert enrolment.secret not in text
