"""`cmscan demo` and a throwaway Prometheus scraping it, run for as long as a block takes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"


def prometheus_config(target: str, *, scrape_interval: float, rules_dir: Path) -> str:
    """The shipped prometheus.yml, pointed at one target, scraping every few seconds."""
    import yaml

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = f"{scrape_interval:g}s"
    config["global"]["evaluation_interval"] = f"{scrape_interval:g}s"
    config["rule_files"] = [str(rules_dir / Path(p).name) for p in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = f"{scrape_interval:g}s"
        job["static_configs"] = [{"targets": [target]}]
        job.pop("file_sd_configs", None)
    return str(yaml.safe_dump(config, sort_keys=False))


@dataclass(frozen=True)
class DemoStack:
    """Where the demo daemon serves its metrics and where Prometheus answers, as host:port."""

    daemon: str
    prometheus: str


@contextmanager
def demo_with_prometheus(
    demo_seconds: float, hosts: int, scrape_interval: float
) -> Iterator[DemoStack]:
    """Start `cmscan demo` (for `demo_seconds`) and a Prometheus scraping it, in a scratch
    directory; on leaving the block, stop both and remove the directory."""
    prometheus_bin = shutil.which("prometheus") or "/usr/bin/prometheus"
    work = Path(tempfile.mkdtemp(prefix="cmscan-render-"))
    demo_dir = work / "demo"
    demo_dir.mkdir()
    demo = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "-m",
            "scanner",
            "demo",
            "--hosts",
            str(hosts),
            "--dir",
            str(demo_dir),
            "--duration",
            str(int(demo_seconds)),
        ],
        stdout=(work / "demo.out").open("w"),
        stderr=subprocess.STDOUT,
    )
    processes = [demo]
    try:
        config = demo_dir / "cmscan.toml"
        deadline = time.monotonic() + 120
        while not config.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        listen = tomllib.loads(config.read_text(encoding="utf-8"))["daemon"]["listen"]
        web = "127.0.0.1:" + str(_free_port())
        (work / "prometheus.yml").write_text(
            prometheus_config(
                listen, scrape_interval=scrape_interval, rules_dir=PROMETHEUS_DIR / "rules"
            )
        )
        prometheus = subprocess.Popen(  # noqa: S603 (the Prometheus binary, our arguments)
            [
                prometheus_bin,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address={web}",
            ],
            stdout=(work / "prometheus.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        processes.append(prometheus)
        yield DemoStack(daemon=listen, prometheus=web)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
