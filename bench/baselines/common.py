"""What the baseline scripts share: the targets file the harness writes, the one probe they all
run, a thread-pool runner, and the result file the harness reads back and checks."""

from __future__ import annotations

import argparse
import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.probe import probe_script, stdin_invocation


@dataclass(frozen=True, slots=True)
class Host:
    hostname: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Targets:
    """The hosts to probe and how to log in: the same for every tool in a run."""

    username: str
    password_file: Path
    patterns: tuple[str, ...]
    hosts: tuple[Host, ...]
    known_hosts: Path | None = None
    client_key: Path | None = None

    @property
    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8").strip()

    @property
    def probe_line(self) -> str:
        """The probe as one line for `powershell.exe -Command -`: the form every baseline sends."""
        return stdin_invocation(probe_script(), self.patterns)

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "password_file": str(self.password_file),
            "patterns": list(self.patterns),
            "known_hosts": str(self.known_hosts) if self.known_hosts else None,
            "client_key": str(self.client_key) if self.client_key else None,
            "hosts": [
                {"hostname": h.hostname, "address": h.address, "port": h.port} for h in self.hosts
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Targets:
        return cls(
            username=data["username"],
            password_file=Path(data["password_file"]),
            patterns=tuple(data["patterns"]),
            hosts=tuple(Host(h["hostname"], h["address"], int(h["port"])) for h in data["hosts"]),
            known_hosts=Path(data["known_hosts"]) if data.get("known_hosts") else None,
            client_key=Path(data["client_key"]) if data.get("client_key") else None,
        )

    @classmethod
    def load(cls, path: Path) -> Targets:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


@dataclass
class Outputs:
    """What a baseline got back: each host's stdout, or why it failed."""

    outputs: dict[str, str]
    failures: dict[str, str]
    notes: dict[str, Any]

    def write(self, path: Path) -> None:
        document = {"outputs": self.outputs, "failures": self.failures, "notes": self.notes}
        path.write_text(json.dumps(document), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Outputs:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["outputs"], data["failures"], data.get("notes", {}))


def refused(exc: BaseException) -> bool:
    """Whether a connection was refused anywhere down the exception's chain (a host that is off)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
        stack.extend(a for a in current.args if isinstance(a, BaseException))
    return "refused" in str(exc).lower()


def describe_failure(exc: BaseException, unreachable: tuple[type[BaseException], ...] = ()) -> str:
    """`unreachable: ...` for a host that refused or never answered, else `error: ...`."""
    gone = refused(exc) or isinstance(exc, (socket.timeout, *unreachable))
    return f"{'unreachable' if gone else 'error'}: {type(exc).__name__}: {str(exc)[:200]}"


def run_pool(
    targets: Targets,
    probe: Callable[[Host], str],
    concurrency: int,
    unreachable: tuple[type[BaseException], ...] = (),
) -> tuple[Outputs, float]:
    """Probe every host from a pool of `concurrency` threads; the usual quick script."""
    outputs: dict[str, str] = {}
    failures: dict[str, str] = {}
    seconds: dict[str, float] = {}

    def one(host: Host) -> None:
        begun = time.perf_counter()
        try:
            outputs[host.hostname] = probe(host)
        except Exception as exc:  # a baseline counts failures; one host never stops it
            failures[host.hostname] = describe_failure(exc, unreachable)
        seconds[host.hostname] = time.perf_counter() - begun

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, targets.hosts))
    span = time.perf_counter() - started
    answered = [seconds[name] for name in outputs]
    notes = {
        "probe_s_ok_mean": sum(answered) / len(answered) if answered else None,
        "probe_s_sum": sum(seconds.values()),
        "span_s": span,
    }
    return Outputs(outputs, failures, notes), span


def arguments(description: str, flags: tuple[str, ...] = ()) -> argparse.Namespace:
    """A baseline script's command line: its targets, where to write, and how many threads."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--targets", type=Path, required=True, help="targets JSON (from sweep.py)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the outputs")
    parser.add_argument("--concurrency", type=int, default=256, help="threads")
    for flag in flags:
        parser.add_argument(flag, action="store_true")
    return parser.parse_args()
