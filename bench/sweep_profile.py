"""Profile a measured `cmscan scan` with py-spy, attached from outside, and say where its CPU
went: which code held the GIL (package by package and function by function), and for how much
of the sweep the GIL was held at all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# Frames are "function (path/to/file.py:line)"; the first path part names the package.
STANDARD_LIBRARY = "standard library"
STANDARD_PACKAGES = frozenset(
    ("asyncio", "concurrent", "http", "json", "email", "xml", "encodings", "importlib", "logging")
)

# cmscan's own packages, whose functions the inclusive table lists.
CMSCAN_PACKAGES = ("scanner", "exporters", "engine", "store", "policy", "config", "collectors")


@dataclass(frozen=True, slots=True)
class Profile:
    """What the GIL was spent on during one sweep."""

    what: str
    samples: int
    seconds: float
    rate: int
    by_package: list[tuple[str, int]]
    by_function: list[tuple[str, int]]
    by_caller: list[tuple[str, int]]

    @property
    def gil_share(self) -> float:
        """Of the sweep's wall time, the share in which some thread held the GIL."""
        expected = self.seconds * self.rate
        return self.samples / expected if expected else 0.0

    def text(self) -> str:
        def table(rows: list[tuple[str, int]]) -> list[str]:
            return [f"  {100 * n / max(self.samples, 1):5.1f}%  {name}" for name, n in rows]

        return "\n".join(
            [
                f"{self.what}: {self.samples} samples with the GIL held in {self.seconds:.1f} s"
                f" at {self.rate} Hz: the GIL was held {self.gil_share:.0%} of the time.",
                "Where the GIL went, by package (self time):",
                *table(self.by_package),
                "Hottest functions (self time):",
                *table(self.by_function),
                "Time under cmscan's own functions (inclusive):",
                *table(self.by_caller),
            ]
        )


def package(frame: str) -> str:
    """The package a py-spy frame belongs to: `pypsrp`, `spnego`, ... or the standard library."""
    location = frame.rsplit("(", 1)[-1].rstrip(")")
    path = location.rsplit(":", 1)[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    first = path.split("/", 1)[0] if "/" in path else ""
    if not first or first.startswith("<") or first in STANDARD_PACKAGES:
        return f"{STANDARD_LIBRARY} ({first or path.removesuffix('.py')})"
    return first


def summarise(what: str, lines: Iterable[str], *, seconds: float, rate: int) -> Profile:
    """A Profile from py-spy's raw (collapsed stacks) output."""
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    callers: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        # With --threads or --subprocesses py-spy puts the thread and process first.
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread ("))]
        if not frames:
            continue
        total += samples
        packages[package(frames[-1])] += samples
        functions[frames[-1]] += samples
        for frame in set(frames):
            if any(f"({p}/" in frame for p in CMSCAN_PACKAGES):
                callers[frame] += samples
    return Profile(
        what=what,
        samples=total,
        seconds=seconds,
        rate=rate,
        by_package=packages.most_common(12),
        by_function=functions.most_common(20),
        by_caller=callers.most_common(20),
    )


class Profiler:
    """py-spy attached to a running process (not its child, so not in its rusage)."""

    def __init__(self, where: Path, rate: int, cpu: int | None = None) -> None:
        self.where = where
        self.rate = rate
        self.cpu = cpu
        self.raw = where / "profile.raw"
        self.process: subprocess.Popen[bytes] | None = None
        self.log: BinaryIO | None = None

    def attach(self, pid: int) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.log = (self.where / "py-spy.txt").open("wb")
        cpu = self.cpu
        self.process = subprocess.Popen(
            [spy, "record", "--pid", str(pid), "--nonblocking", "--gil", "--rate", str(self.rate),
             "--format", "raw", "--output", str(self.raw)],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )  # fmt: skip

    def finish(self, what: str, seconds: float) -> Profile:
        """Wait for py-spy (it stops with its target) and summarise what it saw."""
        if self.process is not None:
            self.process.wait(timeout=60)
        if self.log is not None:
            self.log.close()
        lines = self.raw.read_text().splitlines() if self.raw.exists() else []
        return summarise(what, lines, seconds=seconds, rate=self.rate)
