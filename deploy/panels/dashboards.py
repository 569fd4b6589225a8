"""Grafana dashboard JSON: its panels, template variables, queries and their expansion."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Grafana's built-in interval variables, as a dashboard with this scrape interval gets them.
BUILTIN_INTERVALS = ("__rate_interval", "__interval", "__range")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$", re.S)


def load_dashboard(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows, rows themselves included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(dashboard.get("templating", {}).get("list", []))


def variable_query(variable: Mapping[str, Any]) -> str:
    """A query variable's query text, whether stored as a string or an object."""
    query = variable.get("query", "")
    if isinstance(query, Mapping):
        return str(query.get("query", ""))
    return str(query)


def parse_label_values(query: str) -> tuple[str | None, str]:
    """`label_values(selector, label)` as (selector or None, label), or ValueError."""
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(f"not a label_values() query: {query!r}")
    return (match[1].strip() if match[1] else None), match[2]


def referenced(text: str) -> set[str]:
    """Names of the template variables a query or title refers to."""
    return {next(g for g in m.groups() if g) for m in _VARIABLE.finditer(text)}


def expand(text: str, values: Mapping[str, str]) -> str:
    """Substitute template variables as Grafana does; an unknown variable is an error."""

    def substitute(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise KeyError(f"variable ${name} has no value in {text!r}")
        return values[name]

    return _VARIABLE.sub(substitute, text)


def regex_value(selected: list[str]) -> str:
    """Several selected values as Grafana writes them into a Prometheus regex matcher."""
    escaped = [re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\\\1", v) for v in selected]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interval_values(scrape_interval: float, range_seconds: float) -> dict[str, str]:
    """$__rate_interval (four scrapes), $__interval and $__range for a given view."""
    return {
        "__rate_interval": f"{max(4 * scrape_interval, 15):g}s",
        "__interval": f"{max(scrape_interval, range_seconds / 300):g}s",
        "__range": f"{range_seconds:g}s",
    }


@dataclass(frozen=True)
class Query:
    panel: dict[str, Any]
    ref: str
    expr: str
    legend: str
    instant: bool


def panel_queries(panel: Mapping[str, Any]) -> list[Query]:
    return [
        Query(
            panel=dict(panel),
            ref=str(t.get("refId", "")),
            expr=str(t["expr"]),
            legend=str(t.get("legendFormat", "")),
            instant=bool(t.get("instant")) and not t.get("range"),
        )
        for t in panel.get("targets", [])
        if t.get("expr")
    ]


def legend(template: str, labels: Mapping[str, str]) -> str:
    if not template or template == "__auto":
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or ""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)
