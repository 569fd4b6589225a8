"""A dashboard's variables and panels' queries evaluated against Prometheus."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .dashboards import (
    expand,
    legend,
    panel_queries,
    parse_label_values,
    regex_value,
    variable_query,
    variables,
)
from .prometheus_api import Prometheus


def resolve_variables(
    prometheus: Prometheus,
    dashboard: Mapping[str, Any],
    chosen: Mapping[str, list[str]],
    *,
    start: float | None = None,
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Each variable's value for queries (a regex; All is ".*") and its options, in order,
    so that chained variables see the values chosen before them."""
    values: dict[str, str] = {}
    options: dict[str, list[str]] = {}
    for variable in variables(dashboard):
        name = variable["name"]
        if variable.get("type") != "query":
            continue
        selector, label = parse_label_values(variable_query(variable))
        found = prometheus.label_values(
            expand(selector, values) if selector else None, label, start=start
        )
        options[name] = found
        picked = [v for v in chosen.get(name, []) if v in found]
        values[name] = regex_value(picked) if picked else str(variable.get("allValue", ".*"))
    return values, options


@dataclass
class PanelData:
    """What one panel's queries returned: series for graphs, samples for everything else
    (and the same samples per query, for tables)."""

    series: list[tuple[str, list[float], list[float]]] = field(default_factory=list)
    samples: list[tuple[str, float]] = field(default_factory=list)
    tables: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.series or self.samples)


def fetch(
    prometheus: Prometheus,
    panel: Mapping[str, Any],
    values: Mapping[str, str],
    *,
    start: float,
    end: float,
    step: float,
) -> PanelData:
    data = PanelData()
    for query in panel_queries(panel):
        expr = expand(query.expr, values)
        if panel.get("type") == "timeseries" and not query.instant:
            for item in prometheus.range(expr, start, end, step)["result"]:
                times = [float(t) for t, _ in item["values"]]
                points = [float(v) for _, v in item["values"]]
                data.series.append((legend(query.legend, item["metric"]), times, points))
            continue
        result = prometheus.instant(expr, end)
        if result["resultType"] == "scalar":
            data.samples.append((legend(query.legend, {}), float(result["result"][1])))
            continue
        for item in result["result"]:
            value = float(item["value"][1])
            data.samples.append((legend(query.legend, item["metric"]), value))
            data.tables.setdefault(query.ref, []).append((item["metric"], value))
    return data
