"""Administrator commands (run by the operator on the server: ``causette moderator …``,
``causette audit``). Every change is written to the audit log as done by ``admin-cli``."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import io
import sys
from typing import Any

import msgspec
import segno

from causette.config import Config
from causette.core.cases import AuditEntry, Role
from causette.core.clock import SystemClock
from causette.core.ports import FullStore
from causette.errors import BadRequest
from causette.safety.accounts import Accounts, Enrolment
from causette.store import open_store

ACTOR = "admin-cli"


async def _store(config: Config) -> FullStore:
    url = config.database_url
    return await open_store(url, migrate=url.startswith(("sqlite", "memory")))


def _password(path: str | None) -> str:
    if path:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    if not sys.stdin.isatty():
        return sys.stdin.readline().strip()
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Again: ") != first:
        raise BadRequest(field="password", detail="the two passwords differ")
    return first


def _print_enrolment(enrolment: Enrolment) -> None:
    m = enrolment.moderator
    print(f"Account {m.login!r} ({m.role.value}).")
    print("Two-factor authentication: scan this QR code with an authenticator app")
    print("(FreeOTP, Aegis, Google Authenticator…), or type the secret by hand.")
    out = io.StringIO()
    segno.make(enrolment.uri, error="m").terminal(out=out, compact=True)
    print(out.getvalue())
    print(f"Secret: {enrolment.secret}")
    print(f"URI:    {enrolment.uri}")


def moderator_command(config: Config, args: argparse.Namespace) -> int:
    """Ask for what is needed first (a password), then act on the store."""
    password = _password(args.password_file) if args.action in ("add", "password") else ""
    return asyncio.run(_moderator(config, args, password))


async def _moderator(config: Config, args: argparse.Namespace, password: str) -> int:
    store = await _store(config)
    try:
        accounts = Accounts(store, SystemClock(), config.site.name)
        if args.action == "add":
            enrolment = await accounts.add(args.login, password, Role(args.role), by=ACTOR)
            _print_enrolment(enrolment)
        elif args.action == "password":
            await accounts.set_password(args.login, password, by=ACTOR)
            print("Password changed; the account's sessions are closed.")
        elif args.action == "reset-totp":
            _print_enrolment(await accounts.reset_totp(args.login, by=ACTOR))
        elif args.action in ("disable", "enable"):
            await accounts.set_disabled(args.login, args.action == "disable", by=ACTOR)
            print(f"Account {args.action}d.")
        elif args.action == "list":
            for m in await store.list_moderators():
                state = "disabled" if m.disabled else "active"
                print(f"{m.login:<24} {m.role.value:<10} {state}")
        return 0
    finally:
        await store.close()


async def _audit_rows(config: Config) -> list[dict[str, Any]]:
    store = await _store(config)
    try:
        entries: list[AuditEntry] = []
        before: int | None = None
        while True:
            page = await store.audit_log(1000, before)
            if not page:
                break
            entries.extend(page)
            before = page[-1].id
    finally:
        await store.close()
    entries.reverse()  # oldest first in an export
    return [msgspec.to_builtins(e) for e in entries]


def audit_export(config: Config, fmt: str, output: str | None) -> int:
    rows = asyncio.run(_audit_rows(config))
    if fmt == "json":
        text = msgspec.json.format(msgspec.json.encode(rows)).decode() + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "ts", "actor", "action", "case_id", "target", "reason", "details"])
        for r in rows:
            writer.writerow(
                [
                    r["id"],
                    r["ts"],
                    r["actor"],
                    r["action"],
                    r["case_id"] or "",
                    r["target"],
                    r["reason"],
                    msgspec.json.encode(r["details"]).decode(),
                ]
            )
        text = buffer.getvalue()
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
