"""A whole dashboard drawn from Prometheus into PNG files: one of it all, one per panel."""

from __future__ import annotations

import re
import time
from pathlib import Path

from .cells import Cell
from .dashboards import interval_values, load_dashboard
from .drawing import draw
from .layout import layout
from .prometheus_api import Prometheus
from .querying import fetch, resolve_variables
from .style import BACKGROUND, TEXT

UNIT_HEIGHT = 0.42  # inches per Grafana grid unit of height
COLUMN_WIDTH = 0.75  # inches per Grafana grid column
TITLE_SPACE = 0.6  # inches above the panels for the dashboard's title


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "panel"


def render(
    prometheus: Prometheus,
    dashboard_path: Path,
    out_dir: Path,
    *,
    range_seconds: float,
    scrape_interval: float,
) -> list[Path]:
    """Draw the dashboard (one PNG) and each panel (one PNG each); return the files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dashboard = load_dashboard(dashboard_path)
    end = time.time()
    start = end - range_seconds
    # Values seen in the last minute: a product that was removed from every host earlier
    # in the range would otherwise get an empty panel.
    values, options = resolve_variables(prometheus, dashboard, {}, start=end - 60)
    values |= interval_values(scrape_interval, range_seconds)
    step = max(range_seconds / 240, scrape_interval)
    placed = layout(dashboard, options)
    rows = max(g["y"] + g["h"] for _, _, _, g in placed)
    whole = plt.figure(
        figsize=(24 * COLUMN_WIDTH, rows * UNIT_HEIGHT + TITLE_SPACE), facecolor=BACKGROUND
    )
    whole.text(
        0.1 / (24 * COLUMN_WIDTH),
        1 - 0.3 / (rows * UNIT_HEIGHT + TITLE_SPACE),
        dashboard["title"],
        color=TEXT,
        fontsize=15,
        va="center",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = slug(dashboard["title"])
    written: list[Path] = []
    for index, (panel, title, extra, grid) in enumerate(placed):
        top = TITLE_SPACE + grid["y"] * UNIT_HEIGHT
        if panel.get("type") == "row":
            whole.text(
                0.1 / (24 * COLUMN_WIDTH),
                1 - (top + 0.25) / (rows * UNIT_HEIGHT + TITLE_SPACE),
                title,
                color=TEXT,
                fontsize=11,
                fontweight="bold",
                va="center",
            )
            continue
        data = fetch(prometheus, panel, values | extra, start=start, end=end, step=step)
        width, height = grid["w"] * COLUMN_WIDTH, grid["h"] * UNIT_HEIGHT
        draw(Cell(whole, grid["x"] * COLUMN_WIDTH, top, width, height), panel, title, data)
        single = plt.figure(figsize=(max(width, 4.5), height), facecolor=BACKGROUND)
        draw(Cell(single, 0, 0, max(width, 4.5), height), panel, title, data)
        path = out_dir / f"{stem}-{index:02d}-{slug(title)}.png"
        single.savefig(path, dpi=100, facecolor=BACKGROUND)
        plt.close(single)
        written.append(path)
    path = out_dir / f"{stem}.png"
    whole.savefig(path, dpi=80, facecolor=BACKGROUND)
    plt.close(whole)
    return [path, *written]
