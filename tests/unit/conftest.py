"""Unit-test fixtures: a fake clock and an engine on the in-memory fakes."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from durabot.bootstrap import build_engine
from durabot.clock import FakeClock
from durabot.config import Settings
from durabot.engine.runner import Engine
from durabot.testing import FakeUnitOfWorkFactory
from tests.unit.driver import TTL, Chat


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def factory(clock: FakeClock) -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory(clock)


@pytest.fixture
def settings() -> Settings:
    return Settings(state_ttl_hours=TTL.total_seconds() / 3600, _env_file=None)


@pytest.fixture
def engine(factory: FakeUnitOfWorkFactory, settings: Settings, clock: FakeClock) -> Engine:
    return build_engine(factory, settings, clock)


@pytest.fixture
def update_ids() -> Iterator[int]:
    """Update ids shared by every chat of a test (the inbox is keyed by them)."""
    return itertools.count(1)


@pytest.fixture
def chat(engine: Engine, factory: FakeUnitOfWorkFactory, update_ids: Iterator[int]) -> Chat:
    return Chat(engine, factory, update_ids)
