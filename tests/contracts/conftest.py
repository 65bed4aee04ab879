"""Fixtures for the store contract suites: every adapter of ``Store`` and ``ModerationStore``
(``FullStore``) must pass the same tests.

To run the suite against another adapter, add one entry to ``STORE_ADAPTERS`` (a function that
opens a fresh, empty store and closes it afterwards, plus the markers it needs), e.g.::

    "postgres": StoreAdapter(postgres_store, marks=(pytest.mark.postgres,)),
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from causette.store import FullStore, open_store
from tests.support import services


@asynccontextmanager
async def memory_store(tmp_path: Path) -> AsyncIterator[FullStore]:
    store = await open_store("memory://")
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def sqlite_store(tmp_path: Path) -> AsyncIterator[FullStore]:
    store = await open_store(f"sqlite:///{tmp_path / 'data' / 'causette.db'}", migrate=True)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def postgres_store(tmp_path: Path) -> AsyncIterator[FullStore]:
    """A database of its own, copied from the run's migrated template, dropped afterwards."""
    services.need_postgres()
    name = await services.create_database(template=await services.postgres_template())
    try:
        store = await open_store(services.database_url(name))
        try:
            yield store
        finally:
            await store.close()
    finally:
        await services.drop_database(name)


@dataclass(frozen=True)
class StoreAdapter:
    open: Callable[[Path], AbstractAsyncContextManager[FullStore]]
    marks: tuple[pytest.MarkDecorator, ...] = ()


STORE_ADAPTERS: dict[str, StoreAdapter] = {
    "memory": StoreAdapter(memory_store),
    "sqlite": StoreAdapter(sqlite_store),
    "postgres": StoreAdapter(postgres_store, marks=(pytest.mark.postgres,)),
}


@pytest.fixture(
    params=[pytest.param(name, marks=adapter.marks) for name, adapter in STORE_ADAPTERS.items()]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FullStore]:
    """A fresh, empty store of each kind."""
    adapter = STORE_ADAPTERS[request.param]
    async with adapter.open(tmp_path) as opened:
        yield opened
