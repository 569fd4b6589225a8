"""Fixtures for the simulator's tests: a private loopback block per run, so runs never collide."""

from __future__ import annotations

import random

import pytest


@pytest.fixture
def loopback_base() -> str:
    """A random 127.N.M.0 base address: concurrent test runs bind different addresses."""
    return f"127.{random.randint(100, 250)}.{random.randint(0, 255)}.0"
