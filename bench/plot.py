"""Plot a sweep benchmark's results as a PNG: wall time and CPU per host against fleet size (a
series), or each tool's hosts per second and CPU per host side by side (a comparison).

    .venv/bin/python bench/plot.py bench/results/sweep-series.json   # writes sweep-series.png
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sweep_report import Run, summarise  # noqa: E402


def plot(document: Mapping[str, Any], out: Path) -> Path:
    """Draw the document's runs into `out`; raises ValueError when there is nothing to draw."""
    runs = [Run.from_json(r) for r in document["runs"]]
    if not runs:
        raise ValueError("no runs to plot")
    summaries = summarise(runs)
    sizes = sorted({s.hosts for s in summaries})
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    figure.suptitle(f"{document['title']}\n{document['latency_model']['text']}", fontsize=9)
    if document.get("mode") == "series" and len(sizes) > 1:
        for label in dict.fromkeys(s.label for s in summaries):
            mine = sorted((s for s in summaries if s.label == label), key=lambda s: s.hosts)
            hosts = [s.hosts for s in mine]
            left.plot(hosts, [s.wall_s for s in mine], marker="o", label=f"{label}: measured")
            ideal = [
                s.wall_s / s.wall_over_ideal if s.wall_over_ideal else float("nan") for s in mine
            ]
            left.plot(hosts, ideal, linestyle="--", label=f"{label}: latency-bound ideal")
            # Its CPU time on one core: where the measured line meets it, CPU is the limit.
            cpu = [s.cpu_ms_per_host * s.hosts / 1000 for s in mine]
            left.plot(hosts, cpu, linestyle=":", label=f"{label}: its CPU seconds")
            right.plot(hosts, [s.cpu_ms_per_host for s in mine], marker="o", label=label)
        for axis in (left, right):
            axis.set_xscale("log")
            axis.set_xlabel("hosts in the fleet")
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(fontsize=8)
        left.set_yscale("log")
        left.set_ylabel("wall time of one sweep, s")
        right.set_ylabel("scanner CPU per host, ms")
        right.set_ylim(bottom=0)
    else:
        names = [f"{s.label}\n{s.hosts:,} hosts, {s.concurrency} at once" for s in summaries]
        positions = range(len(summaries))
        speed = left.barh(positions, [s.hosts_per_s for s in summaries], color="tab:blue")
        cpu = right.barh(positions, [s.cpu_ms_per_host for s in summaries], color="tab:orange")
        left.bar_label(speed, fmt="%.1f", fontsize=8, padding=2)
        right.bar_label(cpu, fmt="%.1f", fontsize=8, padding=2)
        costs = [s.cpu_ms_per_host for s in summaries if s.cpu_ms_per_host > 0]
        if costs and max(costs) > 20 * min(costs):
            right.set_xscale("log")  # Ansible's cost would flatten everyone else's bar
        for axis in (left, right):
            axis.set_yticks(list(positions), names, fontsize=8)
            axis.invert_yaxis()
            axis.grid(True, axis="x", alpha=0.3)
        right.set_yticks(list(positions), [""] * len(summaries))
        left.set_xlabel("hosts per second (higher is better)")
        right.set_xlabel("CPU per host, ms, all of the tool's processes (lower is better)")
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    source = Path(sys.argv[1])
    document = json.loads(source.read_text(encoding="utf-8"))
    print(plot(document, source.with_suffix(".png")))


if __name__ == "__main__":
    main()
