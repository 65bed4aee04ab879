"""Shared fixtures. Tests that need an outside part (PostgreSQL, Redis, Chromium) skip with a
message saying how to enable them — unless CAUSETTE_TEST_REQUIRE_ALL=1 (set by .ci/run), which
turns every such skip into a failure."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from causette.config import Config, load_config
from causette.core.ports import Clock
from causette.geo import Geo
from causette.store import migrate
from causette.web.app import AccessLogger, create_app
from tests.support.client import ProtocolClient
from tests.support.config import with_safety

REQUIRE_ALL = os.environ.get("CAUSETTE_TEST_REQUIRE_ALL") == "1"


def require(available: bool, what: str, how: str) -> None:
    """Skip (or, in CI, fail) when an outside part is missing."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if REQUIRE_ALL:
        pytest.fail(f"{message} (CAUSETTE_TEST_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(message)


def make_config(tmp_path: Path, *, protections: bool = False, **sections: dict[str, Any]) -> Config:
    """A test configuration; ``protections=True`` keeps the real automatic protections."""
    overrides: dict[str, dict[str, Any]] = {"server": {"data_dir": str(tmp_path / "data")}}
    for name, values in with_safety(sections, protections).items():
        overrides.setdefault(name, {}).update(values)
    return load_config(None, env={}, overrides=overrides)


class RunningServer:
    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.url = str(server.make_url("")).rstrip("/")
        self.clients: list[ProtocolClient] = []

    @property
    def app(self) -> Any:
        return self.server.app

    def client(self, **kwargs: Any) -> ProtocolClient:
        c = ProtocolClient(self.url, **kwargs)
        self.clients.append(c)
        return c

    async def visitor(self, pseudonym: str, **profile: Any) -> ProtocolClient:
        """A person who entered and is connected (welcome received)."""
        c = self.client()
        await c.enter(pseudonym, **profile)
        await c.connect()
        return c


ServerFactory = Callable[..., Any]


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Drop the PostgreSQL template database this run made, if any (see tests.support)."""
    yield
    from tests.support import services

    asyncio.run(services.drop_template())


@pytest.fixture(scope="session")
def geo() -> Geo:
    """The geography, read once for the whole run (it is read-only)."""
    return Geo.load()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the schema's head, migrated once for the whole run: each
    server starts from a copy instead of running the migrations again."""
    path = tmp_path_factory.mktemp("template") / "causette.db"
    asyncio.run(migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture
async def start_server(tmp_path: Path, geo: Geo, migrated_db: Path) -> AsyncIterator[ServerFactory]:
    """Start a real Causette app (SQLite in tmp_path, in-process bus) on a loopback port.

    ``start_server(clock=FakeClock(), limits={...})``: a clock to drive time (rate limits,
    expiry) and configuration sections to override."""
    running: list[RunningServer] = []

    async def start(
        *, clock: Clock | None = None, protections: bool = False, **sections: dict[str, Any]
    ) -> RunningServer:
        config = make_config(tmp_path, protections=protections, **sections)
        db = tmp_path / "data" / "causette.db"
        if not db.exists():
            db.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated_db, db)
        server = TestServer(create_app(config, clock=clock, geo=geo), host="127.0.0.1")
        # The access log of production (``causette.web.app.run``): no client address.
        await server.start_server(
            access_log_class=AccessLogger, access_log=logging.getLogger("causette.access")
        )
        rs = RunningServer(server)
        running.append(rs)
        return rs

    yield start
    for rs in running:
        for c in rs.clients:
            await c.close()
        await rs.server.close()


@pytest.fixture
async def server(start_server: ServerFactory) -> RunningServer:
    rs: RunningServer = await start_server()
    return rs
