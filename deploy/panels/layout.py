"""Where Grafana puts each panel on the dashboard's grid, repeated panels cloned per value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .dashboards import expand, regex_value

Placed = tuple[dict[str, Any], str, dict[str, str], dict[str, int]]


def layout(dashboard: Mapping[str, Any], options: Mapping[str, list[str]]) -> list[Placed]:
    """Panels as Grafana lays them out: (panel, title, variable overrides, gridPos), with
    repeated panels cloned once per value and everything below moved down to make room."""
    placed: list[Placed] = []
    shift = 0
    for panel in dashboard.get("panels", []):
        grid = dict(panel["gridPos"])
        grid["y"] += shift
        repeat = panel.get("repeat")
        if not repeat:
            placed.append((panel, panel.get("title", ""), {}, grid))
            continue
        values = options.get(repeat) or [""]
        per_row = min(int(panel.get("maxPerRow", 4)), len(values))
        width = 24 // per_row
        for index, value in enumerate(values):
            cell = {
                "x": (index % per_row) * width,
                "y": grid["y"] + (index // per_row) * grid["h"],
                "w": width,
                "h": grid["h"],
            }
            title = expand(panel.get("title", ""), {repeat: value})
            placed.append((panel, title, {repeat: regex_value([value])} if value else {}, cell))
        shift += (math.ceil(len(values) / per_row) - 1) * grid["h"]
    return placed
