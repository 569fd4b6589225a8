"""The sweep benchmark's results: one record per measured run, what bounds it, the medians and
side-by-side ratios, and the Markdown table written next to the JSON."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from collectors.facts import ProbeOutputError, parse_probe_output

# A process pinned to one core that keeps it this busy is what bounds the sweep.
SATURATED = 0.85
# Within this factor of the latency-bound ideal, waiting on the network is what bounds it.
NEAR_IDEAL = 1.3
# Other work took this much of a saturated core: the machine's noise, not the process alone.
OTHERS = 0.10


@dataclass
class Run:
    """One measured sweep of one tool."""

    tool: str
    label: str
    transport: str
    hosts: int
    concurrency: int
    repeat: int
    exit_code: int
    wall_s: float
    cpu_s: float
    max_rss_mib: float
    tree_peak_rss_mib: float
    processes: int
    outcomes: dict[str, int]
    expected_ok: int
    facts_verified: int
    ideal_s: float
    ideal_exact: bool
    exchanges: int
    simulator_cpu_s: float
    notes: dict[str, Any] = field(default_factory=dict)
    # Where the time went (None where a tool cannot tell): the mean successful probe against
    # the model's, all probe time added up over the span of probing (how many were in
    # flight on average), and how busy each core was with anything at all.
    probe_s: float | None = None
    model_probe_s: float | None = None
    probe_s_sum: float | None = None
    probing_s: float | None = None
    scanner_core_busy: float | None = None
    simulator_core_busy: float | None = None

    @property
    def hosts_per_s(self) -> float:
        return self.hosts / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_ms_per_host(self) -> float:
        return 1000 * self.cpu_s / self.hosts if self.hosts else 0.0

    @property
    def wall_over_ideal(self) -> float:
        return self.wall_s / self.ideal_s if self.ideal_s else float("nan")

    @property
    def scanner_core_share(self) -> float:
        return self.cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def simulator_core_share(self) -> float:
        return self.simulator_cpu_s / self.wall_s if self.wall_s else 0.0

    @property
    def mean_in_flight(self) -> float | None:
        if not self.probe_s_sum or not self.probing_s:
            return None
        return self.probe_s_sum / self.probing_s

    @property
    def probe_stretch(self) -> float | None:
        """How much longer a successful probe took than the latency model says it should."""
        if not self.probe_s or not self.model_probe_s:
            return None
        return self.probe_s / self.model_probe_s

    @property
    def bound(self) -> str:
        return bound(
            self.scanner_core_share,
            self.simulator_core_share,
            self.wall_over_ideal,
            scanner_core_busy=self.scanner_core_busy,
            simulator_core_busy=self.simulator_core_busy,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        in_flight, stretch = self.mean_in_flight, self.probe_stretch
        data.update(
            mean_in_flight=None if in_flight is None else round(in_flight, 1),
            probe_stretch=None if stretch is None else round(stretch, 2),
            hosts_per_s=round(self.hosts_per_s, 2),
            cpu_ms_per_host=round(self.cpu_ms_per_host, 2),
            wall_over_ideal=round(self.wall_over_ideal, 2),
            scanner_core_share=round(self.scanner_core_share, 2),
            simulator_core_share=round(self.simulator_core_share, 2),
            bound=self.bound,
        )
        for key in ("wall_s", "cpu_s", "ideal_s", "simulator_cpu_s"):
            data[key] = round(data[key], 3)
        for key in ("max_rss_mib", "tree_peak_rss_mib"):
            data[key] = round(data[key], 1)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def bound(
    scanner_share: float,
    simulator_share: float,
    wall_over_ideal: float,
    *,
    scanner_core_busy: float | None = None,
    simulator_core_busy: float | None = None,
) -> str:
    """What limits a sweep, from where the time went. Each process is pinned to one core, so
    a share near 1 means it used all of its core; a core busy although its process was not
    means other work on the machine took the rest."""
    for who, own, busy in (
        ("scanner", scanner_share, scanner_core_busy),
        ("simulator", simulator_share, simulator_core_busy),
    ):
        busy = max(own, busy if busy is not None else own)
        if busy >= SATURATED:
            if busy - own >= OTHERS:
                return f"{who}'s core, shared with other work"
            return f"{who} CPU"
    if wall_over_ideal <= NEAR_IDEAL:
        return "network latency"
    return "waiting: neither core saturated"


def verified_facts(outputs: Mapping[str, str], patterns: Sequence[str]) -> tuple[int, list[str]]:
    """How many outputs are a valid facts document from the probe run with `patterns`, and
    why (a few of) the others are not: a baseline that fails silently is not a baseline."""
    good = 0
    problems: list[str] = []
    for hostname, text in outputs.items():
        try:
            facts = parse_probe_output(text)
        except ProbeOutputError as exc:
            problems.append(f"{hostname}: {exc.reason}")
            continue
        if list(facts.probe.patterns) != list(patterns):
            problems.append(f"{hostname}: probe ran with patterns {list(facts.probe.patterns)}")
            continue
        good += 1
    return good, problems[:5]


def failure_outcomes(failures: Mapping[str, str]) -> Counter[str]:
    """Baselines' failures by kind: each reason starts with `unreachable:` or `error:`."""
    return Counter(reason.split(":", 1)[0] for reason in failures.values())


@dataclass(frozen=True, slots=True)
class Summary:
    """The runs of one tool on one host set: medians, with the range across repeats."""

    tool: str
    label: str
    transport: str
    hosts: int
    concurrency: int
    runs: int
    wall_s: float
    wall_min_s: float
    wall_max_s: float
    hosts_per_s: float
    cpu_ms_per_host: float
    max_rss_mib: float
    tree_peak_rss_mib: float
    ok_min: int
    expected_ok: int
    wall_over_ideal: float
    scanner_core_share: float
    simulator_core_share: float
    bound: str
    probe_s: float | None = None
    model_probe_s: float | None = None
    mean_in_flight: float | None = None
    scanner_core_busy: float | None = None
    simulator_core_busy: float | None = None


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def summarise(runs: Iterable[Run]) -> list[Summary]:
    """One summary per (tool, hosts), in the order the tools first ran."""
    groups: dict[tuple[str, int], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.tool, run.hosts), []).append(run)
    summaries = []
    for group in groups.values():
        first = group[0]
        walls = [r.wall_s for r in group]
        summaries.append(
            Summary(
                tool=first.tool,
                label=first.label,
                transport=first.transport,
                hosts=first.hosts,
                concurrency=first.concurrency,
                runs=len(group),
                wall_s=statistics.median(walls),
                wall_min_s=min(walls),
                wall_max_s=max(walls),
                hosts_per_s=statistics.median(r.hosts_per_s for r in group),
                cpu_ms_per_host=statistics.median(r.cpu_ms_per_host for r in group),
                max_rss_mib=max(r.max_rss_mib for r in group),
                tree_peak_rss_mib=max(r.tree_peak_rss_mib for r in group),
                ok_min=min(r.facts_verified for r in group),
                expected_ok=first.expected_ok,
                wall_over_ideal=statistics.median(r.wall_over_ideal for r in group),
                scanner_core_share=statistics.median(r.scanner_core_share for r in group),
                simulator_core_share=statistics.median(r.simulator_core_share for r in group),
                bound=Counter(r.bound for r in group).most_common(1)[0][0],
                probe_s=_median(r.probe_s for r in group),
                model_probe_s=_median(r.model_probe_s for r in group),
                mean_in_flight=_median(r.mean_in_flight for r in group),
                scanner_core_busy=_median(r.scanner_core_busy for r in group),
                simulator_core_busy=_median(r.simulator_core_busy for r in group),
            )
        )
    return summaries


@dataclass(frozen=True, slots=True)
class Ratio:
    """cmscan against one baseline on the same hosts, from runs made side by side."""

    cmscan: str
    baseline: str
    hosts: int
    pairs: int
    throughput: float  # cmscan hosts/s / baseline hosts/s: above 1, cmscan is faster
    throughput_min: float
    throughput_max: float
    cpu: float  # cmscan CPU per host / baseline CPU per host: below 1, cmscan is cheaper
    cpu_min: float
    cpu_max: float


def ratios(runs: Sequence[Run], comparisons: Iterable[tuple[str, str]]) -> list[Ratio]:
    """Paired ratios: each repeat of cmscan against the same repeat of the baseline."""
    found = []
    for cmscan, baseline in comparisons:
        mine = {(r.hosts, r.repeat): r for r in runs if r.tool == cmscan}
        theirs = {(r.hosts, r.repeat): r for r in runs if r.tool == baseline}
        by_hosts: dict[int, list[tuple[Run, Run]]] = {}
        for key in sorted(mine.keys() & theirs.keys()):
            by_hosts.setdefault(key[0], []).append((mine[key], theirs[key]))
        for hosts, pairs in by_hosts.items():
            speed = [a.hosts_per_s / b.hosts_per_s for a, b in pairs if b.hosts_per_s]
            cpu = [a.cpu_ms_per_host / b.cpu_ms_per_host for a, b in pairs if b.cpu_ms_per_host]
            if not speed or not cpu:
                continue
            found.append(
                Ratio(
                    cmscan=cmscan,
                    baseline=baseline,
                    hosts=hosts,
                    pairs=len(pairs),
                    throughput=statistics.median(speed),
                    throughput_min=min(speed),
                    throughput_max=max(speed),
                    cpu=statistics.median(cpu),
                    cpu_min=min(cpu),
                    cpu_max=max(cpu),
                )
            )
    return found


def _spread(median: float, low: float, high: float, digits: int = 1) -> str:
    if low == high:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def results_table(summaries: Sequence[Summary]) -> str:
    """The Markdown table of every tool's medians."""
    lines = [
        "| tool | hosts | concurrency | runs | wall s | hosts/s | CPU ms/host | peak RSS MiB"
        " | facts ok / expected | wall ÷ ideal | probe s (model) | in flight"
        " | scanner CPU (core busy) | simulator CPU (core busy) | bound |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for s in summaries:
        rss = f"{s.max_rss_mib:.0f}"
        if s.tree_peak_rss_mib > 1.2 * s.max_rss_mib:
            rss += f" (all processes {s.tree_peak_rss_mib:.0f})"
        lines.append(
            f"| {s.label} | {s.hosts:,} | {s.concurrency} | {s.runs}"
            f" | {_spread(s.wall_s, s.wall_min_s, s.wall_max_s)} | {s.hosts_per_s:.1f}"
            f" | {s.cpu_ms_per_host:.1f} | {rss} | {s.ok_min:,} / {s.expected_ok:,}"
            f" | {s.wall_over_ideal:.2f} | {_probe(s)} | {_number(s.mean_in_flight, '.0f')}"
            f" | {_share(s.scanner_core_share, s.scanner_core_busy)}"
            f" | {_share(s.simulator_core_share, s.simulator_core_busy)} | {s.bound} |"
        )
    return "\n".join(lines)


def _number(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _probe(s: Summary) -> str:
    if s.probe_s is None:
        return "–"
    return f"{s.probe_s:.2f} ({_number(s.model_probe_s, '.2f')})"


def _share(own: float, busy: float | None) -> str:
    return f"{own:.0%}" + ("" if busy is None else f" ({busy:.0%})")


def ratios_table(found: Sequence[Ratio], labels: Mapping[str, str]) -> str:
    """The Markdown table of cmscan / baseline ratios."""
    lines = [
        "| cmscan | baseline | hosts | pairs | hosts/s, cmscan ÷ baseline"
        " | CPU per host, cmscan ÷ baseline |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for r in found:
        lines.append(
            f"| {labels.get(r.cmscan, r.cmscan)} | {labels.get(r.baseline, r.baseline)}"
            f" | {r.hosts:,} | {r.pairs}"
            f" | {_spread(r.throughput, r.throughput_min, r.throughput_max, 2)}"
            f" | {_spread(r.cpu, r.cpu_min, r.cpu_max, 2)} |"
        )
    return "\n".join(lines)


def markdown(document: Mapping[str, Any]) -> str:
    """The whole results file in Markdown: conditions first, then the tables."""
    runs = [Run.from_json(r) for r in document["runs"]]
    summaries = summarise(runs)
    labels = {r.tool: r.label for r in runs}
    found = [Ratio(**r) for r in document.get("ratios", [])]
    machine = document["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in document["versions"].items() if v)
    latency = document["latency_model"]
    parts = [
        f"# {document['title']}",
        "",
        f"Measured {document['started']} on {machine['cpu_model']}, {machine['cores']} cores,"
        f" {machine['ram_gib']} GiB RAM, {machine['kernel']}"
        f" (load average at start {', '.join(map(str, machine['load_average_at_start']))}).",
        f"Versions: {versions}.",
        f"Pinning: {document['pinning']}.",
        f"Latency model: {latency['text']} (mean round trip {latency['mean_round_trip_ms']} ms,"
        f" mean remote time {latency['mean_remote_ms']} ms).",
        f"Fault mix: {document['fault_mix_text']}. Seed {document['seed']}.",
        "",
        results_table(summaries),
    ]
    if found:
        parts += [
            "",
            "Side by side (paired repeats of the same run):",
            "",
            ratios_table(found, labels),
        ]
    targets = document.get("targets")
    if targets:
        parts += ["", "Targets:", ""]
        parts += [
            f"- {t['what']}: {t['measured']} (target {t['target']}): {t['verdict']}"
            for t in targets
        ]
    notes = document.get("notes")
    if notes:
        parts += ["", "Notes:", ""] + [f"- {n}" for n in notes]
    return "\n".join(parts) + "\n"


def main() -> None:
    """Render results files again (after the report changes): `sweep_report.py FILE.json...`."""
    import json
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        source = Path(name)
        document = json.loads(source.read_text(encoding="utf-8"))
        source.with_suffix(".md").write_text(markdown(document), encoding="utf-8")
        print(source.with_suffix(".md"))


if __name__ == "__main__":
    main()
