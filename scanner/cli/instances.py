"""`cmscan instances`: the daemons and sweeps sharing this database, alive or gone."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from scanner.cli.common import ConfigOption, DbOption, open_database, out, run, settings
from store import db
from store.instances import InstanceRow, list_instances
from store.model import utcnow

JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")]


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _state(row: InstanceRow) -> str:
    if row.instance.stopped_at is not None:
        return "stopped"
    return "alive" if row.alive else "dead"


def instances(
    config: ConfigOption = None, database: DbOption = None, as_json: JsonOption = False
) -> None:
    """The scanning processes registered in the database: last heartbeat, hosts they hold
    claimed, and whether they are alive. A process whose heartbeat is older than
    daemon.heartbeat_timeout counts as dead: its claims go to the live ones."""
    current = settings(config, database_url=database)
    open_database(current)
    now = utcnow()

    async def read() -> list[InstanceRow]:
        base = db.Database(current.database_url)
        try:
            async with base.read() as session:
                return await list_instances(
                    session, now=now, dead_before=now - current.daemon.heartbeat_timeout
                )
        finally:
            await base.dispose()

    rows = run(read())
    if as_json:
        document = {
            "instances": [
                {
                    "id": row.instance.id,
                    "kind": row.instance.kind,
                    "hostname": row.instance.hostname,
                    "pid": row.instance.pid,
                    "version": row.instance.version,
                    "started_at": row.instance.started_at.isoformat(),
                    "heartbeat_at": row.instance.heartbeat_at.isoformat(),
                    "claims": row.claims,
                    "state": _state(row),
                }
                for row in rows
            ]
        }
        out.print(json.dumps(document, indent=2), markup=False)
        return
    if not rows:
        out.print("no cmscan daemon or sweep has used this database yet")
        return
    table = Table(title=f"cmscan instances ({sum(r.alive for r in rows)} alive)")
    for heading in ("instance", "kind", "version", "started", "heartbeat", "claims", "state"):
        table.add_column(heading)
    for row in rows:
        table.add_row(
            row.instance.id,
            row.instance.kind,
            row.instance.version,
            f"{row.instance.started_at:%Y-%m-%d %H:%M} UTC",
            _ago(row.instance.heartbeat_at, now),
            str(row.claims),
            _state(row),
        )
    out.print(table)
