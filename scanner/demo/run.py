"""Running the demo: fleet, database, daemon, deployment campaign and live view, then tidy up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.live import Live

from config.settings import Settings, load_settings
from engine.access import import_access
from engine.transports import build_collectors
from exporters.csv import ExportOptions, export_unpatched
from scanner.daemon import Daemon
from scanner.demo.campaign import Campaign
from scanner.demo.config import new_token, write_config
from scanner.demo.fleet import DemoFleet, start_fleet
from scanner.demo.view import Snapshot, plain_line, render, take_snapshot
from scanner.signals import signals_stop
from store import db
from store.inventory_import import import_inventory

log = logging.getLogger("cmscan.demo")

PREFERRED_PORT = 8180
PLAIN_EVERY = 10.0


@dataclass(frozen=True)
class DemoOptions:
    hosts: int = 600
    seed: int = 1
    directory: Path = Path("cmscan-demo")
    duration: float | None = None  # seconds; None: until Ctrl-C
    faults: float = 0.08
    rtt_ms: float = 20.0
    exec_ms: float = 300.0
    campaign_every: float = 8.0


@dataclass
class DemoResult:
    first_sweep_s: float | None
    snapshot: Snapshot
    unpatched_csv: Path | None
    config: Path
    log: Path
    listen: str


def choose_listen() -> str:
    """127.0.0.1:8180 when free, otherwise any free port on 127.0.0.1."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PREFERRED_PORT))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def _fresh(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("cmscan.db", "cmscan.db-wal", "cmscan.db-shm", "unpatched.csv"):
        (directory / name).unlink(missing_ok=True)


def _log_to(path: Path) -> None:
    """Send logs to a file: the live view owns the terminal."""
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("alembic", "uvicorn.error", "httpx", "asyncssh"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class DemoError(Exception):
    """The demo cannot go on; the message says why and where the log is."""


class Demo:
    def __init__(self, options: DemoOptions, console: Console) -> None:
        self.options = options
        self.console = console
        self.directory = options.directory.resolve()
        self.started = time.monotonic()
        self.first_sweep: float | None = None
        self.snapshot = Snapshot()
        self.unpatched: Path | None = None
        self.failure: BaseException | None = None

    async def run(self) -> DemoResult:
        options = self.options
        _fresh(self.directory)
        self.console.print(f"Starting {options.hosts} simulated hosts (seed {options.seed})...")
        fleet = await start_fleet(
            self.directory / "fleet",
            hosts=options.hosts,
            seed=options.seed,
            faults=options.faults,
            rtt_ms=options.rtt_ms,
            exec_ms=options.exec_ms,
        )
        try:
            return await self._with_fleet(fleet)
        finally:
            await fleet.stop()

    async def _with_fleet(self, fleet: DemoFleet) -> DemoResult:
        token, _ = new_token()
        listen = choose_listen()
        config = write_config(
            self.directory, Path(fleet.manifest["config"]), listen=listen, token=token
        )
        settings = load_settings(config_file=config)
        await asyncio.to_thread(db.upgrade, settings.database_url)
        database = db.Database(settings.database_url)
        try:
            report = await import_inventory(
                database,
                path=Path(fleet.manifest["inventory"]),
                fmt="csv",
                ods_path=Path(fleet.manifest["epraccur"]),
            )
            if not report.written:
                raise DemoError(
                    "the simulated inventory did not import: "
                    + "; ".join(map(str, report.inventory.errors[:5]))
                )
            users = await import_access(database, path=Path(fleet.manifest["users_report"]))
            if not users.written:
                problems = [str(p) for p in users.report.errors[:5]] or [users.refused or "?"]
                raise DemoError("the simulated users report did not import: " + "; ".join(problems))
        finally:
            await database.dispose()
        log_path = self.directory / "cmscan.log"
        _log_to(log_path)
        daemon = Daemon(
            settings,
            collectors=build_collectors(settings, database=db.Database(settings.database_url)),
            listen=listen,
        )
        ccgs = sorted({h["ccg"] for h in fleet.manifest["hosts"]})
        campaign = Campaign(fleet, ccgs, every=self.options.campaign_every)
        hints = self._hints(config, listen)
        async with signals_stop(daemon.stop):
            daemon_task = asyncio.create_task(daemon.run())
            watcher = asyncio.create_task(
                self._watch(settings, daemon, campaign, hints), name="live view"
            )
            watcher.add_done_callback(lambda task: self.stop_on_failure(task, daemon.stop))
            timer = (
                asyncio.create_task(self._stop_after(daemon, self.options.duration))
                if self.options.duration
                else None
            )
            try:
                await daemon_task
            finally:
                for task in (watcher, timer):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        if self.failure is not None:
            raise DemoError(f"the demo stopped: {self.failure!r}; details in {log_path}")
        first = self.first_sweep - self.started if self.first_sweep else None
        return DemoResult(first, self.snapshot, self.unpatched, config, log_path, listen)

    def stop_on_failure(self, task: asyncio.Task[None], stop: asyncio.Event) -> None:
        """A failed view or campaign stops the demo instead of leaving a frozen screen."""
        if task.cancelled() or task.exception() is None:
            return
        self.failure = self.failure or task.exception()
        log.error("demo: the %s failed", task.get_name(), exc_info=task.exception())
        stop.set()

    async def _stop_after(self, daemon: Daemon, seconds: float) -> None:
        await asyncio.sleep(seconds)
        daemon.stop.set()

    def _hints(self, config: Path, listen: str) -> list[str]:
        relative = _shorter(config)
        return [
            f"export CMSCAN_CONFIG={relative}",
            "cmscan status            cmscan export unpatched -o unpatched.csv",
            "cmscan rescan --ccg 00K --wait        cmscan policy explain <host>",
            "cmscan access status --group ccg      cmscan export access-gaps -o gaps.csv",
            f"curl http://{listen}/metrics",
            f'curl -H "Authorization: Bearer $(cat {_shorter(config.parent / "demo-token")})"'
            f" http://{listen}/api/v1/summary",
        ]

    async def _watch(
        self, settings: Settings, daemon: Daemon, campaign: Campaign, hints: list[str]
    ) -> None:
        await daemon.ready.wait()
        database = db.Database(settings.database_url)
        campaign_task: asyncio.Task[None] | None = None
        live = sys.stdout.isatty()
        view = Live(console=self.console, refresh_per_second=2, transient=False) if live else None
        last_plain = 0.0
        try:
            if view is not None:
                view.start()
            while True:
                async with database.read() as session:
                    self.snapshot = await take_snapshot(session)
                if (
                    self.first_sweep is None
                    and self.snapshot.total
                    and (self.snapshot.scanned == self.snapshot.total)
                ):
                    self.first_sweep = time.monotonic()
                    await self._after_first_sweep(database)
                    campaign_task = asyncio.create_task(campaign.run(), name="campaign")
                    campaign_task.add_done_callback(
                        lambda task: self.stop_on_failure(task, daemon.stop)
                    )
                sweep = self._sweep_line()
                if view is not None:
                    view.update(
                        render(
                            self.snapshot,
                            header=self._header(),
                            sweep=sweep,
                            events=list(campaign.events),
                            hints=hints,
                        )
                    )
                elif time.monotonic() - last_plain >= PLAIN_EVERY:
                    last_plain = time.monotonic()
                    self.console.print(plain_line(self.snapshot, sweep), markup=False)
                await asyncio.sleep(0.5)
        finally:
            if campaign_task is not None:
                campaign_task.cancel()
            if view is not None:
                view.stop()
            await database.dispose()

    async def _after_first_sweep(self, database: db.Database) -> None:
        """Write unpatched.csv as an engineer would export it, whole or not at all."""
        path = self.directory / "unpatched.csv"
        chunks = [chunk async for chunk in export_unpatched(database, ExportOptions())]
        await asyncio.to_thread(_write_atomically, path, b"".join(chunks))
        self.unpatched = path
        if not sys.stdout.isatty():
            self.console.print(f"first sweep complete: wrote {path}", markup=False)

    def _header(self) -> str:
        elapsed = time.monotonic() - self.started
        ends = ""
        if self.options.duration:
            ends = f", stops in {max(self.options.duration - elapsed, 0):.0f}s"
        else:
            ends = ", Ctrl-C to stop"
        return (
            f"cmscan demo: {self.snapshot.total} simulated hosts in"
            f" {len(self.snapshot.by_ccg)} CCGs, running {elapsed:.0f}s{ends}"
        )

    def _sweep_line(self) -> str:
        if self.first_sweep is not None:
            return (
                f"scanned {self.snapshot.scanned}/{self.snapshot.total}; first sweep done in"
                f" {self.first_sweep - self.started:.0f}s"
            )
        return f"first sweep: {self.snapshot.scanned}/{self.snapshot.total} hosts scanned"


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _shorter(path: Path) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
