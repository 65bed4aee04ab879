"""``causette`` command line: serve, migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from causette import __version__
from causette.config import Config, load_config
from causette.errors import BusUnreachable, CausetteError, ConfigError, StoreUnavailable
from causette.logs import setup_logging

#: Exit status when the database or Redis cannot be reached (sysexits.h EX_UNAVAILABLE);
#: 2 is for a configuration or schema to fix.
EXIT_UNAVAILABLE = 69


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="causette", description="Causette: chat sans inscription, with safety built in."
    )
    parser.add_argument("--version", action="version", version=f"causette {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", metavar="FILE", help="TOML configuration file")
        p.add_argument("--data-dir", metavar="DIR", help="where the SQLite database lives")

    serve = sub.add_parser("serve", help="start the server")
    common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    migrate = sub.add_parser("migrate", help="upgrade the database schema to this version")
    common(migrate)
    check = sub.add_parser("check-config", help="validate the configuration and print it")
    common(check)

    mod = sub.add_parser("moderator", help="manage moderator accounts")
    mod_sub = mod.add_subparsers(dest="action", required=True)
    add = mod_sub.add_parser("add", help="create an account and print its two-factor setup")
    add.add_argument("login")
    add.add_argument("--role", choices=["moderator", "admin"], default="moderator")
    add.add_argument(
        "--password-file",
        metavar="FILE",
        help="read the password from this file (else it is asked for)",
    )
    for name, text in (
        ("password", "set a new password (ends the account's sessions)"),
        ("reset-totp", "issue a new two-factor secret (ends the account's sessions)"),
        ("disable", "disable the account (ends its sessions)"),
        ("enable", "enable a disabled account"),
    ):
        action = mod_sub.add_parser(name, help=text)
        action.add_argument("login")
        if name == "password":
            action.add_argument("--password-file", metavar="FILE")
    mod_sub.add_parser("list", help="list accounts")
    for action_parser in mod_sub.choices.values():
        common(action_parser)

    audit = sub.add_parser("audit", help="export the audit log")
    audit.add_argument("--format", choices=["json", "csv"], default="json")
    audit.add_argument("--output", metavar="FILE", help="default: standard output")
    common(audit)
    return parser


def _config(args: argparse.Namespace) -> Config:
    server: dict[str, Any] = {}
    for key in ("host", "port", "data_dir"):
        value = getattr(args, key, None)
        if value is not None:
            server[key] = value
    return load_config(args.config, overrides={"server": server} if server else None)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"causette: {exc.message('en')}", file=sys.stderr)
        return 2
    setup_logging(config.server.log_format, config.server.log_level)
    try:
        if args.command == "serve":
            from causette.web.app import run

            run(config)
        elif args.command == "migrate":
            from causette.store import migrate

            revision = asyncio.run(migrate(config.database_url))
            print(f"database at revision {revision}")
        elif args.command == "check-config":
            import msgspec

            print(msgspec.json.format(msgspec.json.encode(config)).decode())
        elif args.command == "moderator":
            from causette.admin import moderator_command

            return moderator_command(config, args)
        elif args.command == "audit":
            from causette.admin import audit_export

            return audit_export(config, args.format, args.output)
    except (StoreUnavailable, BusUnreachable) as exc:
        # A service to wait for, not a mistake to fix here: a distinct code (sysexits'
        # EX_UNAVAILABLE) lets a supervisor retry with a delay instead of crash-looping.
        print(f"causette: {exc.message('en')}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except CausetteError as exc:
        print(f"causette: {exc.message('en')}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
