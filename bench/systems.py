"""The systems under test, each started fresh for a scenario in a directory of its own.

- ``causette``: ``causette serve`` on SQLite with the in-process bus (the embedded default), or
  ``nodes`` processes sharing PostgreSQL and Redis (S7). The automatic protections are relaxed:
  every simulated visitor comes from 127.0.0.1 and senders run far above a person's rate.
- ``inspircd``: InspIRCd 3 (see ``bench/inspircd.py``), with its flood and connection limits
  raised so that it is measured, not throttled.
- ``bare``: the raw ceiling, ``bench/bare_server.py``: the same WebSocket library as Causette and
  the same frame writing, no chat logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "causette_session"
POSTGRES_URL = os.environ.get("CAUSETTE_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CAUSETTE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

RELAXED_SAFETY: dict[str, Any] = {
    "message_rate": 1e6,
    "message_burst": 1_000_000,
    "network_message_rate": 1e7,
    "network_message_burst": 10_000_000,
    "duplicate_max": 1_000_000,
    "new_session_minutes": 0,
    "conversations_per_hour": 1e9,
    "conversation_burst": 1_000_000,
    "joins_per_minute": 1e9,
    "join_burst": 1_000_000,
    "sessions_per_hour_per_network": 1e9,
    "session_burst_per_network": 1_000_000,
    "max_connections_per_network": 1_000_000,
    "auto_mute_reporters": 0,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def raise_fd_limit() -> None:
    """For a child about to hold thousands of sockets (the hard limit cannot be raised)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def causette_config(rooms: list[str], extra: dict[str, dict[str, Any]] | None = None) -> str:
    sections: dict[str, dict[str, Any]] = {
        "server": {"log_level": "WARNING"},
        "limits": {"commands_per_second": 1e6, "commands_burst": 1_000_000},
        "sessions": {"max_rooms": 50},
        "safety": dict(RELAXED_SAFETY),
    }
    for name, values in (extra or {}).items():
        sections.setdefault(name, {}).update(values)
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    for slug in rooms:
        lines += ["[[rooms]]", f'slug = "{slug}"', f'name = "{slug}"', ""]
    return "\n".join(lines)


@dataclass
class Server:
    """One running system: its processes (measured from /proc) and where clients connect."""

    system: str
    processes: list[subprocess.Popen[bytes]]
    targets: list[dict[str, Any]]
    workdir: Path
    cleanup: list[Any] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for path in sorted(self.workdir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for action in reversed(self.cleanup):
            with contextlib.suppress(Exception):
                action()


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            preexec_fn=raise_fd_limit,
            cwd=str(ROOT),
        )


def _causette_bin() -> str:
    candidate = Path(sys.executable).parent / "causette"
    return str(candidate) if candidate.exists() else "causette"


def _ws_target(port: int) -> dict[str, Any]:
    http = f"http://127.0.0.1:{port}"
    return {"http": http, "ws": f"ws://127.0.0.1:{port}/ws", "cookie": COOKIE, "port": port}


async def _postgres_database() -> tuple[str, str]:
    """A fresh database for a multi-node run: (its URL, its name)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    base = make_url(POSTGRES_URL)
    name = "causette_bench_" + secrets.token_hex(4)
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return base.set(database=name).render_as_string(hide_password=False), name


async def _drop_database(name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    dsn = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start_causette(
    workdir: Path,
    rooms: list[str],
    nodes: int = 1,
    extra: dict[str, dict[str, Any]] | None = None,
) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "causette.toml"
    config.write_text(causette_config(rooms, extra))
    env: dict[str, str] = {"CAUSETTE_SAFETY__SECRET_KEY": secrets.token_hex(32)}
    cleanup: list[Any] = []
    if nodes > 1:
        url, name = asyncio.run(_postgres_database())
        cleanup.append(lambda: asyncio.run(_drop_database(name)))
        env["CAUSETTE_SERVER__DATABASE_URL"] = url
        env["CAUSETTE_SERVER__BUS_URL"] = f"{REDIS_URL}?prefix=bench-{secrets.token_hex(4)}:"
        migrate_log = workdir / "migrate.log"
        with migrate_log.open("wb") as out:
            subprocess.run(
                [_causette_bin(), "migrate", "--config", str(config)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                check=True,
            )
    processes, targets = [], []
    for i in range(nodes):
        port = free_port()
        log = workdir / f"causette-{i}.log"
        args = [_causette_bin(), "serve", "--config", str(config), "--port", str(port)]
        args += ["--data-dir", str(workdir / f"data-{i}")]
        processes.append(_spawn(args, log, env))
        targets.append(_ws_target(port))
    server = Server("causette", processes, targets, workdir, cleanup)
    try:
        for proc, target in zip(processes, targets, strict=True):
            _wait_http(
                target["http"] + "/healthz", proc, workdir / f"causette-{targets.index(target)}.log"
            )
    except Exception:
        server.stop()
        raise
    return server


def start_bare(workdir: Path) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "bare.log"
    proc = _spawn([sys.executable, "-m", "bench.bare_server", "--port", str(port)], log)
    server = Server("bare", [proc], [_ws_target(port)], workdir)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
    except Exception:
        server.stop()
        raise
    return server


def start_inspircd(workdir: Path, max_clients: int = 30_000) -> Server:
    from bench import inspircd

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = inspircd.start(workdir, port, max_clients)
    server = Server("inspircd", [proc], [{"host": "127.0.0.1", "port": port}], workdir)
    return server


def start(system: str, workdir: Path, rooms: list[str], **options: Any) -> Server:
    """``system`` started afresh in ``workdir`` (whatever was there is removed)."""
    shutil.rmtree(workdir, ignore_errors=True)
    if system == "causette":
        return start_causette(workdir, rooms, **options)
    if system == "bare":
        return start_bare(workdir)
    if system == "inspircd":
        return start_inspircd(workdir)
    raise ValueError(f"unknown system {system!r}")


def available(system: str) -> str | None:
    """None when ``system`` can run here, else why not (and how to enable it)."""
    if system == "inspircd":
        from bench import inspircd

        if inspircd.find_binary() is None:
            return f"InspIRCd is not installed ({inspircd.INSTALL_HINT})"
    return None
