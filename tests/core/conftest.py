"""Fixtures for the core tests: a fresh harness (service, memory store, fake clock) per test."""

from __future__ import annotations

from typing import Any

import pytest

from causette.geo import Geo
from tests.core.harness import Harness, HarnessFactory, core_config


@pytest.fixture(scope="session")
def geo() -> Geo:
    return Geo.load()


@pytest.fixture
def h(geo: Geo) -> Harness:
    return Harness(core_config(), geo)


@pytest.fixture
def make_harness(geo: Geo) -> HarnessFactory:
    """A harness with configuration sections overridden, e.g. ``sessions={"max_rooms": 2}``;
    ``protections=True`` keeps the real automatic protections."""

    def make(*, protections: bool = False, **sections: dict[str, Any]) -> Harness:
        return Harness(core_config(protections=protections, **sections), geo)

    return make
