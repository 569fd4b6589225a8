"""Operational metrics of one cmscan process (deployment figures come from the database)."""

from __future__ import annotations

from importlib.metadata import version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

# The *_created series double the exposition for nothing Grafana or the alerts use.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Probe durations run from a fraction of a second to the total deadline (90 s by default).
HEARTBEAT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0)


class Telemetry:
    """The process's own metrics, on a registry of its own so tests can build a fresh one."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.scans = Counter(
            "cmscan_scans",
            "Probes finished by this process, by transport and outcome.",
            ["transport", "outcome"],
            registry=self.registry,
        )
        self.scan_duration = Histogram(
            "cmscan_scan_duration_seconds",
            "Wall time of each probe, by transport and outcome.",
            ["transport", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "cmscan_scans_in_flight", "Probes running now in this process.", registry=self.registry
        )
        self.db_errors = Counter(
            "cmscan_db_errors",
            "Database operations that failed in this process.",
            registry=self.registry,
        )
        self.sweep_completed = Gauge(
            "cmscan_sweep_last_completed_timestamp_seconds",
            "When this process last caught up with every due host (Unix time).",
            registry=self.registry,
        )
        self.results_held = Gauge(
            "cmscan_results_held",
            "Finished scans waiting in memory to be written to the database.",
            registry=self.registry,
        )
        self.results_superseded = Counter(
            "cmscan_results_superseded",
            "Results stored as history only: the host was claimed again or scanned since"
            " (its claim had ended, for instance while this process was taken for dead).",
            registry=self.registry,
        )
        self.heartbeat_lag = Histogram(
            "cmscan_heartbeat_lag_seconds",
            "How late each heartbeat was written; one later than daemon.heartbeat_timeout"
            " lets other daemons take this one's hosts.",
            buckets=HEARTBEAT_BUCKETS,
            registry=self.registry,
        )
        Info("cmscan_build", "The cmscan version running.", registry=self.registry).info(
            {"version": version("cmscan")}
        )

    def observe(self, *, transport: str, outcome: str, seconds: float) -> None:
        self.scans.labels(transport=transport, outcome=outcome).inc()
        self.scan_duration.labels(transport=transport, outcome=outcome).observe(seconds)
