"""Fixtures for the simulator's tests: a private loopback block per test, so runs never collide."""

from __future__ import annotations

import pytest

from tests.fleet import random_loopback_base


@pytest.fixture
def loopback_base() -> str:
    return random_loopback_base()
