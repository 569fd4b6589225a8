"""Helpers for tests that need real servers: skip on a user's machine, fail in CI."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
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


def _postgres_binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        missing(f"{name} not found under /usr/lib/postgresql: install postgresql")
    return found[-1]


@contextmanager
def throwaway_postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own (initdb into a temporary directory, a free port),
    so that a test can stop and start it without disturbing anything else.

    initdb and postgres refuse to run as root; as root they run as the `postgres` user.
    """
    initdb, pg_ctl = _postgres_binary("initdb"), _postgres_binary("pg_ctl")
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            missing("running as root, and there is no postgres user to run a test server as")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    base = tempfile.mkdtemp(prefix="cmscan-pg-", dir="/tmp")
    data = os.path.join(base, "data")
    if as_postgres:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    port = free_port()
    server = PostgresServer(
        pg_ctl=pg_ctl,
        data=data,
        port=port,
        run_as=as_postgres,
        log=os.path.join(base, "server.log"),
    )
    try:
        subprocess.run(
            [*as_postgres, initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
        )
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class PostgresServer:
    pg_ctl: str
    data: str
    port: int
    run_as: list[str]
    log: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        socket_dir = os.path.dirname(self.data)
        options = f"-p {self.port} -k {socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self.run_as,
                self.pg_ctl,
                "-D",
                self.data,
                "-l",
                self.log,
                "-o",
                options,
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [*self.run_as, self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "stop"],
            check=False,
            capture_output=True,
        )
