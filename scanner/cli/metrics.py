"""`cmscan metrics serve`: /metrics (and the API) from the database, without scanning."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Annotated

import typer

from config.logs import configure
from config.settings import Settings, parse_listen
from scanner import __version__
from scanner.cli.common import (
    ConfigOption,
    DbOption,
    database_failed,
    fail,
    open_database,
    settings,
)
from store import db

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


log = logging.getLogger("cmscan.metrics")

app = typer.Typer(help="Prometheus metrics.", no_args_is_help=True)


@app.command("serve")
def serve_metrics(
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="HOST:PORT to serve /metrics and the API on"
            " (default: daemon.listen, 127.0.0.1:8180).",
        ),
    ] = None,
    config: ConfigOption = None,
    database: DbOption = None,
) -> None:
    """Serve the deployment metrics per CCG (and the API) from the database alone.

    The figures are the ones every daemon serves, read from the same database, so this can
    run anywhere Prometheus can reach while the daemons scan elsewhere. Stop with Ctrl-C.
    """
    from exporters.http import ListenError

    current = settings(config, database_url=database)
    try:
        address = parse_listen(listen or current.daemon.listen)
    except ValueError as exc:
        fail(str(exc))
    configure(level=current.log_level, fmt=current.log_format)
    open_database(current)
    try:
        asyncio.run(_serve(current, address))
    except db.DatabaseError as exc:
        database_failed(exc)
    except ListenError as exc:
        fail(str(exc))


def _registry() -> CollectorRegistry:
    # Only what this process can truthfully say: it scans nothing, so no scan counters.
    from prometheus_client import CollectorRegistry, Info

    registry = CollectorRegistry()
    Info("cmscan_build", "The cmscan version running.", registry=registry).info(
        {"version": __version__}
    )
    return registry


async def _serve(current: Settings, address: tuple[str, int]) -> None:
    from exporters.http import HttpContext, bind, build_app, serve
    from scanner.signals import signals_stop

    sock = bind(*address)
    database = db.Database(current.database_url)
    stop = asyncio.Event()
    try:
        app_ = build_app(HttpContext(database, current, _registry()))
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        log.info(
            "serving http://%s:%s/metrics from %s", shown, port, db.redact(current.database_url)
        )
        async with signals_stop(stop):
            await serve(app_, sock, stop)
    finally:
        sock.close()
        await database.dispose()
