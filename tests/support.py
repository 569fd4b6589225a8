"""Helpers for tests that need real servers: skip on a user's machine, fail in CI."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import NoReturn

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

# CI sets this so that a missing server fails the run instead of silently skipping.
REQUIRE_INTEGRATION = os.environ.get("CMSCAN_REQUIRE_INTEGRATION") == "1"
POSTGRES_URL_ENV = "CMSCAN_TEST_POSTGRES_URL"


def missing(reason: str) -> NoReturn:
    """A real server the test needs is not here: skip, or fail when CI requires it."""
    if REQUIRE_INTEGRATION:
        pytest.fail(f"{reason} (CMSCAN_REQUIRE_INTEGRATION=1 makes this a failure)")
    pytest.skip(reason)


def need_executable(name: str, install_hint: str) -> str:
    """The path of a program the test runs, or skip saying what to install."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        missing(f"{name} not found: install {install_hint}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        missing(
            f"PostgreSQL tests need {POSTGRES_URL_ENV}, e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test (install postgresql)"
        )
    return url


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """A fresh, uniquely named database on the test server, dropped afterwards.

    Each test gets its own database so that tests (and people) running at the same time
    against one server never see each other's rows.
    """
    admin_url = make_url(postgres_admin_url()).set(drivername="postgresql+psycopg")
    name = f"cmscan_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        missing(f"PostgreSQL at {admin_url.render_as_string()} is not reachable: {exc.orig}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
