"""`cmscan daemon`: run the scanner continuously, with /metrics and the API on one listener."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from config.logs import configure
from config.settings import Settings
from scanner.cli.common import (
    ConfigOption,
    DbOption,
    database_failed,
    fail,
    open_database,
    settings,
)
from store import db


def daemon(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", help="HOST:PORT for /metrics and the API (default 127.0.0.1:8180)."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=16_384,
            help="Probes at once (default: schedule.concurrency).",
        ),
    ] = None,
    log_format: Annotated[
        str | None, typer.Option("--log-format", help="text or json (one JSON object per line).")
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Scan the inventory continuously: due hosts by schedule, rescans as soon as requested.

    SIGTERM or Ctrl-C stops claiming work, lets in-flight probes finish (daemon.grace),
    writes every result and exits 0. On PostgreSQL several daemons share the fleet.
    """
    from engine.transports import TransportError
    from exporters.http import ListenError
    from scanner.daemon import DaemonError

    current = settings(config, database_url=database, log_format=log_format)
    configure(level=current.log_level, fmt=current.log_format)
    open_database(current)
    try:
        asyncio.run(_run(current, listen, concurrency))
    except db.DatabaseError as exc:
        database_failed(exc)
    except (DaemonError, ListenError, TransportError) as exc:
        fail(str(exc))


async def _run(current: Settings, listen: str | None, concurrency: int | None) -> None:
    from engine.transports import build_collectors
    from scanner.daemon import Daemon
    from scanner.signals import signals_stop

    collectors = build_collectors(current, database=db.Database(current.database_url))
    service = Daemon(current, collectors=collectors, listen=listen, concurrency=concurrency)
    async with signals_stop(service.stop):
        await service.run()
