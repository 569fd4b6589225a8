"""Processes the sweep benchmark runs and measures: CPU pinning, rusage of one child and its
descendants (os.wait4), the peak memory of the whole process tree, and the simulator's CPU."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Pinning:
    """Which CPU the simulator gets and which the scanner (or baseline) gets, if any."""

    simulator: int | None
    scanner: int | None

    @classmethod
    def choose(cls, enabled: bool = True) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if not enabled or len(cpus) < 2:
            return cls(None, None)
        return cls(cpus[0], cpus[1])

    def describe(self) -> str:
        if self.simulator is None:
            cpus = len(os.sched_getaffinity(0))
            return f"not pinned ({cpus} CPU{'s' if cpus != 1 else ''} available)"
        return (
            f"simulator pinned to CPU {self.simulator}; scanner and baselines (with every"
            f" process they start) pinned to CPU {self.scanner}"
        )


@dataclass(frozen=True, slots=True)
class Measured:
    """What one measured child used: wall time, CPU of it and every descendant it waited for,
    its own peak RSS, and the peak RSS of its whole process tree (sampled)."""

    exit_code: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    max_rss_mib: float
    tree_peak_rss_mib: float
    tree_peak_processes: int
    timed_out: bool
    # How busy each core was over the run, with anything at all: on a shared machine other
    # work can take the scanner's core even while the scanner is pinned to it.
    core_busy: dict[int, float]


def core_ticks() -> dict[int, tuple[int, int]]:
    """Per core, (busy, total) clock ticks since boot, from /proc/stat."""
    found: dict[int, tuple[int, int]] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            ticks = [int(v) for v in values[:8]]
            idle = ticks[3] + ticks[4]  # idle and iowait
            found[int(name[3:])] = (sum(ticks) - idle, sum(ticks))
    return found


def core_busy(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, float]:
    """The share of time each core was busy between two readings of core_ticks()."""
    shares = {}
    for core, (busy, total) in after.items():
        if core in before and total > before[core][1]:
            shares[core] = round((busy - before[core][0]) / (total - before[core][1]), 3)
    return shares


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rfind(")") + 2 :].split()


def process_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds a live process has used so far (all its threads)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    """A process's resident memory (VmRSS now, or VmHWM for its peak) in MiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match[1]) / 1024 if match else None


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _tree_rss_mib(root: int) -> tuple[float, int]:
    total, count = 0, 0
    for pid in _tree(root):
        try:
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += resident
        count += 1
    return total * PAGE_BYTES / MIB, count


class _TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants (Ansible's forks, say)."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.every_s = every_s
        self.peak_mib = 0.0
        self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            rss, count = _tree_rss_mib(self.pid)
            self.peak_mib = max(self.peak_mib, rss)
            self.peak_processes = max(self.peak_processes, count)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def run_measured(
    argv: Sequence[str],
    *,
    cpu: int | None,
    env: Mapping[str, str],
    cwd: Path,
    stdout: Path,
    stderr: Path,
    timeout_s: float,
    on_start: Callable[[int], None] | None = None,
) -> Measured:
    """Run one command to completion on `cpu` and measure it with os.wait4.

    wait4's rusage covers the child and every descendant the child itself waited for, so a
    forking tool (Ansible) is charged for all its workers; ru_maxrss is the largest single
    process, which is why the whole tree's RSS is sampled as well.
    """
    with stdout.open("wb") as out, stderr.open("wb") as err:
        ticks = core_ticks()
        started = time.perf_counter()
        child = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,  # its own process group, so a timeout ends all of it
            preexec_fn=(lambda: _pin(cpu)) if cpu is not None else None,
        )
        sampler = _TreeSampler(child.pid)
        sampler.start()
        if on_start is not None:
            on_start(child.pid)
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)

        watchdog = threading.Timer(timeout_s, expire)
        watchdog.start()
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
            sampler.stop()
        wall = time.perf_counter() - started
        busy = core_busy(ticks, core_ticks())
    child.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        exit_code=child.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        max_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        tree_peak_rss_mib=max(sampler.peak_mib, usage.ru_maxrss / 1024),
        tree_peak_processes=sampler.peak_processes,
        timed_out=timed_out.is_set(),
        core_busy=busy,
    )


def run_quietly(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a preparation step (not measured); raise with its output if it fails."""
    result = subprocess.run(
        list(argv),
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv[:4])} ... exited {result.returncode}:\n{result.stdout[-2000:]}"
            f"\n{result.stderr[-2000:]}"
        )
    return result


def machine() -> dict[str, object]:
    """The machine a run was measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gib = None
    with contextlib.suppress(OSError, AttributeError):
        memory = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        ram_gib = round(int(memory[1]) / 1024 / 1024, 1) if memory else None
    load = os.getloadavg()
    return {
        "cpu_model": model or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "ram_gib": ram_gib,
        "kernel": f"{platform.system()} {platform.release()}",
        "load_average_at_start": [round(x, 2) for x in load],
    }


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def source_revision(root: Path) -> str | None:
    """The git commit the measured code came from, marked when the tree had local changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}+local changes" if dirty else commit


def versions(ansible_python: Path | None, root: Path | None = None) -> dict[str, str | None]:
    """Versions of everything measured; ansible-core comes from its own environment."""
    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "cmscan": _version("cmscan"),
        "cmscan_commit": source_revision(root) if root is not None else None,
        "pypsrp": _version("pypsrp"),
        "asyncssh": _version("asyncssh"),
        "pywinrm": _version("pywinrm"),
        "paramiko": _version("paramiko"),
        "ansible-core": None,
        "ansible_pypsrp": None,
    }
    if ansible_python is not None and ansible_python.exists():
        script = (
            "import importlib.metadata as m;print(m.version('ansible-core'), m.version('pypsrp'))"
        )
        result = subprocess.run(
            [str(ansible_python), "-c", script], capture_output=True, text=True, check=False
        )
        if result.returncode == 0 and len(result.stdout.split()) == 2:
            found["ansible-core"], found["ansible_pypsrp"] = result.stdout.split()
    return found


def python_env(root: Path) -> dict[str, str]:
    """The environment for child processes: this repository importable, no terminal tricks."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    env["COLUMNS"] = "200"  # rich wraps tables at 80 columns when there is no terminal
    env.pop("CMSCAN_CONFIG", None)
    env.pop("CMSCAN_DATABASE_URL", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env
