"""Outside services for the tests: PostgreSQL and Redis.

Where they are: ``CAUSETTE_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``) and ``CAUSETTE_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). Tests that need one call ``need_postgres()`` / ``need_redis()``,
which skip with a how-to message when it is not reachable (fail under
``CAUSETTE_TEST_REQUIRE_ALL=1``).

Isolation: every test gets its own PostgreSQL database, created from a template migrated once
per run (``CREATE DATABASE … TEMPLATE``, much faster than migrating) and dropped afterwards;
on Redis, its own channel prefix (pub/sub channels are not scoped by database number).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "CAUSETTE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("CAUSETTE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

POSTGRES_HOW = (
    "start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) "
    f"or point CAUSETTE_TEST_POSTGRES_URL at one (now {POSTGRES_URL})"
)
REDIS_HOW = (
    "start Redis (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '') "
    f"or point CAUSETTE_TEST_REDIS_URL at one (now {REDIS_URL})"
)

#: Databases this run created are named with this prefix, the process id and a random part.
DB_PREFIX = f"causette_t{os.getpid()}_"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@functools.cache
def postgres_available() -> bool:
    url = make_url(POSTGRES_URL)
    if not _reachable(url.host or "127.0.0.1", url.port or 5432):
        return False

    async def probe() -> bool:
        try:
            conn = await asyncpg.connect(_dsn(POSTGRES_URL), timeout=3)
        except (TimeoutError, OSError, asyncpg.PostgresError):
            return False
        await conn.close()
        return True

    # Called from inside running event loops too: probe on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, probe()).result()


@functools.cache
def redis_available() -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (RedisError, OSError):
        return False


def need_postgres() -> None:
    from tests.conftest import require

    require(postgres_available(), "PostgreSQL", POSTGRES_HOW)


def need_redis() -> None:
    from tests.conftest import require

    require(redis_available(), "Redis", REDIS_HOW)


def _dsn(url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(name: str, base: str = POSTGRES_URL) -> str:
    """``base`` pointing at database ``name`` instead."""
    return make_url(base).set(database=name).render_as_string(hide_password=False)


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(_dsn(POSTGRES_URL), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _quoted(name: str) -> str:
    assert name.replace("_", "").isalnum(), name
    return f'"{name}"'


async def create_database(template: str | None = None) -> str:
    """A new, empty database (a copy of ``template`` when given); returns its name."""
    name = DB_PREFIX + secrets.token_hex(4)
    suffix = f" TEMPLATE {_quoted(template)}" if template else ""
    await _admin(f"CREATE DATABASE {_quoted(name)}{suffix}")
    return name


async def drop_database(name: str) -> None:
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        await _admin(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")


def new_prefix() -> str:
    """A Redis channel prefix no other test uses."""
    return f"causette-test-{secrets.token_hex(4)}:"


_template: str | None = None


async def postgres_template() -> str:
    """A database at the schema's head, migrated once per run; others are copied from it.

    (Dropped at the end of the run by ``drop_template``, called from the session fixture.)
    """
    global _template
    if _template is None:
        from causette.store import migrate

        name = await create_database()
        await migrate(database_url(name))
        _template = name
    return _template


async def drop_template() -> None:
    global _template
    if _template is not None:
        await drop_database(_template)
        _template = None


# --- private servers (for failure tests: restarted, killed) -----------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_postgres() -> list[str]:
    """Run as the ``postgres`` user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    return [runuser, "-u", "postgres", "--"] if runuser else []


def private_postgres_available() -> bool:
    if _postgres_bin() is None:
        return False
    if os.geteuid() == 0:
        return bool(_as_postgres())
    return True


PRIVATE_POSTGRES_HOW = (
    "install PostgreSQL's server binaries (apt-get install postgresql); "
    "as root, runuser and the postgres user are needed"
)


class PrivatePostgres:
    """A throw-away PostgreSQL server on a loopback port, to stop and restart at will.

    Its files live in a directory of its own under the system's temporary directory (the
    ``postgres`` user must be able to reach it, which pytest's private tmp_path forbids)."""

    def __init__(self) -> None:
        bindir = _postgres_bin()
        assert bindir is not None
        self.bindir = bindir
        root = Path(tempfile.mkdtemp(prefix="causette-pg-"))
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*_as_postgres(), str(self.bindir / tool), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def private_redis_available() -> bool:
    return shutil.which("redis-server") is not None


class PrivateRedis:
    """A throw-away Redis server on a loopback port, to stop and restart at will."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        server = shutil.which("redis-server")
        assert server is not None
        self.process = subprocess.Popen(
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
