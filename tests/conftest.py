"""Shared fixtures. Tests that need an outside part (PostgreSQL, Redis, Chromium) skip with a
message saying how to enable them — unless CAUSETTE_TEST_REQUIRE_ALL=1 (set by .ci/run), which
turns every such skip into a failure."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from causette.config import Config, load_config
from causette.web.app import create_app
from tests.support.client import ProtocolClient

REQUIRE_ALL = os.environ.get("CAUSETTE_TEST_REQUIRE_ALL") == "1"


def require(available: bool, what: str, how: str) -> None:
    """Skip (or, in CI, fail) when an outside part is missing."""
    if available:
        return
    message = f"{what} is not available: {how}"
    if REQUIRE_ALL:
        pytest.fail(f"{message} (CAUSETTE_TEST_REQUIRE_ALL=1 forbids skipping)")
    pytest.skip(message)


def make_config(tmp_path: Path, **sections: dict[str, Any]) -> Config:
    overrides: dict[str, dict[str, Any]] = {"server": {"data_dir": str(tmp_path / "data")}}
    for name, values in sections.items():
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


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    """Start a real Causette app (SQLite in tmp_path, in-process bus) on a loopback port."""
    running: list[RunningServer] = []

    async def start(**sections: dict[str, Any]) -> RunningServer:
        config = make_config(tmp_path, **sections)
        server = TestServer(create_app(config), host="127.0.0.1")
        await server.start_server()
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
