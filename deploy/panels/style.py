"""Grafana's dark theme colours, threshold colours and unit formatting, for drawing panels."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e8e"
NAMED_COLOURS = {
    "green": "#73bf69",
    "dark-green": "#37872d",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "red": "#f2495c",
    "dark-red": "#c4162a",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "text": TEXT,
}
PALETTE = (
    "#73bf69",
    "#f2cc0c",
    "#8ab8ff",
    "#ff780a",
    "#f2495c",
    "#5794f2",
    "#b877d9",
    "#705da0",
    "#37872d",
    "#fade2a",
    "#447ebc",
    "#c15c17",
)


def colour(name: str) -> str:
    return NAMED_COLOURS.get(name, name)


def threshold_colour(value: float, defaults: Mapping[str, Any]) -> str:
    chosen = "text"
    for step in defaults.get("thresholds", {}).get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            chosen = step["color"]
    return colour(chosen)


def format_value(value: float, unit: str, decimals: int | None = None) -> str:
    if math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{value * 100:.{1 if decimals is None else decimals}f}%"
    if unit == "s":
        for size, name in ((86400, "d"), (3600, "h"), (60, "min")):
            if value >= size:
                return f"{value / size:.1f} {name}"
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    if unit == "ops":
        return f"{value:.2f}/s"
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"
