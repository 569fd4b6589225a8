"""Render a Grafana dashboard's panels as PNG images from a real Prometheus, with matplotlib.

    # against a Prometheus that already scrapes cmscan:
    python deploy/render_panels.py --prometheus http://127.0.0.1:9090 --range 6h
    # or run `cmscan demo` and a throwaway Prometheus for a few minutes, then render:
    python deploy/render_panels.py --demo 300

Each panel's queries go through Prometheus' HTTP API exactly as Grafana would send them
(template variables set to All, repeated panels once per value), and each panel is drawn
in the dashboard's layout. It writes one PNG of the whole dashboard and one per panel into
deploy/grafana/screenshots/. Needs matplotlib: pip install -e '.[render]'.

The dashboard helpers at the top (panels, variables, expansion) are also what the tests
use to evaluate every dashboard query.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "grafana" / "dashboards"
SCREENSHOTS = HERE / "grafana" / "screenshots"
PROMETHEUS_CONFIG = HERE / "prometheus" / "prometheus.yml"

# Grafana's built-in interval variables, as a dashboard with this scrape interval gets them.
BUILTIN_INTERVALS = ("__rate_interval", "__interval", "__range")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.*),\s*)?(\w+)\s*\)\s*$", re.S)


# -- the dashboard model -------------------------------------------------------------------


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


# -- Prometheus ------------------------------------------------------------------------------


class PrometheusError(Exception):
    """Prometheus refused a query or could not be reached."""


@dataclass
class Prometheus:
    url: str
    timeout: float = 15.0

    def __post_init__(self) -> None:
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise PrometheusError(f"{self.url!r} is not an http:// or https:// URL")

    def get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        # The scheme was checked when the client was made: http or https only.
        request = urllib.request.Request(f"{self.url.rstrip('/')}{path}?{query}")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                document = json.load(response)
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            raise PrometheusError(f"{path} {params}: HTTP {exc.code}: {body}") from None
        except OSError as exc:
            raise PrometheusError(f"cannot reach Prometheus at {self.url}: {exc}") from None
        if document.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {document.get('error')}")
        return document["data"]

    def instant(self, expr: str, at: float | None = None) -> dict[str, Any]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data: dict[str, Any] = self.get("/api/v1/query", **params)
        return data

    def range(self, expr: str, start: float, end: float, step: float) -> dict[str, Any]:
        data: dict[str, Any] = self.get(
            "/api/v1/query_range",
            query=expr,
            start=f"{start:.3f}",
            end=f"{end:.3f}",
            step=f"{step:g}",
        )
        return data

    def label_values(
        self, selector: str | None, label: str, *, start: float | None = None
    ) -> list[str]:
        """A label's values (on series matching `selector`), over the time since `start`
        when given, as Grafana asks for them over the dashboard's time range."""
        params = {"match[]": selector} if selector else {}
        if start is not None:
            params["start"] = f"{start:.3f}"
        values: list[str] = self.get(f"/api/v1/label/{label}/values", **params)
        return sorted(v for v in values if v)


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


def interval_values(scrape_interval: float, range_seconds: float) -> dict[str, str]:
    """$__rate_interval (four scrapes), $__interval and $__range for a given view."""
    return {
        "__rate_interval": f"{max(4 * scrape_interval, 15):g}s",
        "__interval": f"{max(scrape_interval, range_seconds / 300):g}s",
        "__range": f"{range_seconds:g}s",
    }


def legend(template: str, labels: Mapping[str, str]) -> str:
    if not template or template == "__auto":
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__") or ""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)


# -- drawing ---------------------------------------------------------------------------------

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
UNIT_HEIGHT = 0.42  # inches per Grafana grid unit of height
COLUMN_WIDTH = 0.75  # inches per Grafana grid column
TITLE_SPACE = 0.6  # inches above the panels for the dashboard's title


def colour(name: str) -> str:
    return NAMED_COLOURS.get(name, name)


def threshold_colour(value: float, defaults: Mapping[str, Any]) -> str:
    chosen = "text"
    for step in defaults.get("thresholds", {}).get("steps", []):
        if step.get("value") is None or value >= step["value"]:
            chosen = step["color"]
    return colour(chosen)


def _overrides(panel: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-field overrides by field name: {name: {property id: value}}."""
    return {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o.get("properties", [])}
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o.get("matcher", {}).get("id") == "byName"
    }


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


class Cell:
    """One panel's rectangle on a figure, in inches from the top left, and its drawing."""

    def __init__(self, figure: Any, left: float, top: float, width: float, height: float) -> None:
        self.figure = figure
        self.left, self.top, self.width, self.height = left, top, width, height

    def axes(self, *, left: float, right: float, top: float, bottom: float) -> Any:
        """Axes inside the cell, with the given margins in inches."""
        fig_w, fig_h = self.figure.get_size_inches()
        box = [
            (self.left + left) / fig_w,
            1 - (self.top + self.height - bottom) / fig_h,
            (self.width - left - right) / fig_w,
            (self.height - top - bottom) / fig_h,
        ]
        return self.figure.add_axes(box)

    def frame(self, title: str) -> None:
        frame = self.axes(left=0.04, right=0.04, top=0.04, bottom=0.04)
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        frame.text(
            0.1 / (self.width - 0.08),
            1 - 0.22 / (self.height - 0.08),
            title,
            transform=frame.transAxes,
            color=TEXT,
            fontsize=9,
            fontweight="bold",
            va="center",
        )


def draw(cell: Cell, panel: Mapping[str, Any], title: str, data: PanelData) -> None:
    cell.frame(title)
    kind = panel.get("type")
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = str(defaults.get("unit", "none"))
    if data.empty:
        ax = _plain(cell.axes(left=0.1, right=0.1, top=0.4, bottom=0.1))
        ax.text(0.5, 0.5, "No data", color=MUTED, ha="center", va="center")
    elif kind == "stat":
        _draw_stat(cell, panel, data, defaults, unit)
    elif kind == "bargauge":
        _draw_bars(cell, data, defaults, unit)
    elif kind == "timeseries":
        _draw_series(cell, panel, data, unit)
    elif kind == "table":
        _draw_table(cell, panel, data)


def _plain(ax: Any) -> Any:
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    return ax


def _draw_stat(
    cell: Cell, panel: Mapping[str, Any], data: PanelData, defaults: Any, unit: str
) -> None:
    options = panel.get("options", {})
    mode = options.get("textMode", "auto")
    mappings = {
        key: option["text"]
        for mapping in defaults.get("mappings", [])
        for key, option in mapping.get("options", {}).items()
    }
    count = len(data.samples)
    for index, (name, value) in enumerate(data.samples):
        ax = _plain(
            cell.axes(
                left=0.1 + index * (cell.width - 0.2) / count,
                right=0.1 + (count - index - 1) * (cell.width - 0.2) / count,
                top=0.4,
                bottom=0.1,
            )
        )
        shown = mappings.get(format_value(value, "none", 0)) or format_value(
            value, unit, defaults.get("decimals")
        )
        tint = threshold_colour(value, defaults)
        if options.get("colorMode") == "background":
            ax.add_patch(_rectangle(tint))
            tint = "#ffffff"
        text = name if mode == "name" else shown
        ax.text(
            0.5,
            0.55 if mode == "value_and_name" else 0.5,
            text,
            color=tint,
            ha="center",
            va="center",
            fontsize=24 if len(text) < 9 else 14,
            fontweight="bold",
        )
        if mode == "value_and_name":
            ax.text(0.5, 0.12, name, color=TEXT, ha="center", va="center", fontsize=8)


def _rectangle(tint: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((0, 0), 1, 1, color=tint)


def _draw_bars(cell: Cell, data: PanelData, defaults: Any, unit: str) -> None:
    names = [name for name, _ in data.samples]
    values = [value for _, value in data.samples]
    label_width = min(0.09 * max(len(n) for n in names) + 0.1, cell.width * 0.45)
    ax = cell.axes(left=label_width, right=0.55, top=0.4, bottom=0.12)
    limit = float(defaults.get("max") or max([*values, 1.0]))
    slots = max(len(values), 5)  # bars keep a readable thickness when there are few
    positions = [slots - 1 - i for i in range(len(values))]
    ax.barh(positions, [limit] * len(values), color="#22252b", height=0.72)
    ax.barh(positions, values, color=[threshold_colour(v, defaults) for v in values], height=0.72)
    for y, value in zip(positions, values, strict=True):
        ax.text(limit * 1.02, y, format_value(value, unit), color=TEXT, va="center", fontsize=8)
    ax.set_ylim(-0.6, slots - 0.4)
    ax.set_xlim(0, limit)
    ax.set_yticks(positions, names)
    ax.set_xticks([])
    ax.tick_params(axis="y", colors=TEXT, labelsize=8, length=0)
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_series(cell: Cell, panel: Mapping[str, Any], data: PanelData, unit: str) -> None:
    from datetime import UTC, datetime

    from matplotlib.dates import DateFormatter, date2num

    overrides = _overrides(panel)
    custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    fill = float(custom.get("fillOpacity", 0)) / 100
    rows = math.ceil(len(data.series) / 4)
    ax = cell.axes(left=0.6, right=0.2, top=0.4, bottom=0.35 + 0.17 * rows)
    ax.set_facecolor(PANEL)
    palette = iter(PALETTE * 8)
    base: list[float] | None = None
    # Stacked series first, in order; those an override takes out of the stack on top.
    alone = {n for n, o in overrides.items() if o.get("custom.stacking", {}).get("mode") == "none"}
    span = 0.0
    for name, times, points in sorted(data.series, key=lambda s: s[0] in alone):
        xs = [date2num(datetime.fromtimestamp(t, UTC)) for t in times]
        span = max(span, times[-1] - times[0]) if times else span
        fixed = overrides.get(name, {}).get("color", {}).get("fixedColor")
        tint = colour(fixed) if fixed else next(palette)
        if stacked and name not in alone:
            lower = base if base is not None and len(base) == len(points) else [0.0] * len(points)
            upper = [a + b for a, b in zip(lower, points, strict=True)]
            ax.fill_between(xs, lower, upper, color=tint, alpha=max(fill, 0.1), linewidth=0)
            ax.plot(xs, upper, color=tint, linewidth=1.2, label=name)
            base = upper
            continue
        dashed = "custom.lineStyle" in overrides.get(name, {})
        ax.plot(
            xs, points, color=tint, linewidth=1.6, label=name, linestyle="--" if dashed else "-"
        )
        if fill and not dashed:
            ax.fill_between(xs, 0, points, color=tint, alpha=fill, linewidth=0)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if span < 900 else "%H:%M"))
    ax.tick_params(colors=MUTED, labelsize=7)
    ax.grid(color=BORDER, linewidth=0.5)
    ax.set_ylim(bottom=0)
    for spine in ax.spines.values():
        spine.set_color(BORDER)
    if unit == "percentunit":
        ax.yaxis.set_major_formatter(lambda v, _: f"{v * 100:.0f}%")
    elif unit in ("s", "ops"):
        ax.yaxis.set_major_formatter(lambda v, _: format_value(v, unit))
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(0, -0.1),
        ncol=4,
        fontsize=7,
        frameon=False,
        labelcolor=TEXT,
    )


def _draw_table(cell: Cell, panel: Mapping[str, Any], data: PanelData) -> None:
    rename: dict[str, str] = {}
    for step in panel.get("transformations", []):
        if step.get("id") == "organize":
            rename = step["options"].get("renameByName", {})
    refs = sorted(data.tables)
    keys = sorted({k for rows in data.tables.values() for labels, _ in rows for k in labels})
    rows: dict[tuple[str, ...], dict[str, float]] = {}
    for ref in refs:
        for labels, value in data.tables[ref]:
            rows.setdefault(tuple(labels.get(k, "") for k in keys), {})[ref] = value
    columns = ["Value" if len(refs) == 1 else f"Value #{ref}" for ref in refs]
    headers = [rename.get(k, k) for k in [*keys, *columns]]
    overrides = _overrides(panel)
    # Sorted as the panel's sortBy transformation asks, by the first field it names.
    sort_field, descending = headers[-1], True
    for step in panel.get("transformations", []):
        if step.get("id") == "sortBy" and step["options"].get("sort"):
            sort_field = step["options"]["sort"][0]["field"]
            descending = bool(step["options"]["sort"][0].get("desc"))
    by = headers.index(sort_field) - len(keys) if sort_field in headers[len(keys) :] else 0
    ordered = sorted(rows.items(), key=lambda item: item[1].get(refs[by], 0.0), reverse=descending)
    cells = []
    for key, measured in ordered:
        line = list(key)
        for ref, header in zip(refs, headers[len(keys) :], strict=True):
            field_options = overrides.get(header, {})
            line.append(
                format_value(
                    measured.get(ref, math.nan),
                    str(field_options.get("unit", "none")),
                    field_options.get("decimals"),
                )
            )
        cells.append(line)
    ax = _plain(cell.axes(left=0.1, right=0.1, top=0.4, bottom=0.1))
    visible = max(1, int((cell.height - 0.6) / 0.22) - 1)
    table = ax.table(
        cellText=cells[:visible],
        colLabels=headers,
        loc="upper center",
        cellLoc="left",
        bbox=[
            0,
            1 - 0.22 * (min(len(cells), visible) + 1) / (cell.height - 0.5),
            1,
            0.22 * (min(len(cells), visible) + 1) / (cell.height - 0.5),
        ],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    for (row, _), item in table.get_celld().items():
        item.set_facecolor("#22252b" if row == 0 else PANEL)
        item.set_edgecolor(BORDER)
        item.get_text().set_color(TEXT)


# -- layout and output -----------------------------------------------------------------------


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


# -- the demo --------------------------------------------------------------------------------


def prometheus_config(target: str, *, scrape_interval: float, rules_dir: Path) -> str:
    """The shipped prometheus.yml, pointed at one target, scraping every few seconds."""
    import yaml

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text(encoding="utf-8"))
    config["global"]["scrape_interval"] = f"{scrape_interval:g}s"
    config["global"]["evaluation_interval"] = f"{scrape_interval:g}s"
    config["rule_files"] = [str(rules_dir / Path(p).name) for p in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["scrape_timeout"] = f"{scrape_interval:g}s"
        job["static_configs"] = [{"targets": [target]}]
        job.pop("file_sd_configs", None)
    return str(yaml.safe_dump(config, sort_keys=False))


def run_demo(seconds: float, hosts: int, out_dir: Path, scrape_interval: float) -> None:
    prometheus_bin = shutil.which("prometheus") or "/usr/bin/prometheus"
    work = Path(tempfile.mkdtemp(prefix="cmscan-render-"))
    demo_dir = work / "demo"
    demo_dir.mkdir()
    demo = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        [
            sys.executable,
            "-m",
            "scanner",
            "demo",
            "--hosts",
            str(hosts),
            "--dir",
            str(demo_dir),
            "--duration",
            str(int(seconds + 120)),
        ],
        stdout=(work / "demo.out").open("w"),
        stderr=subprocess.STDOUT,
    )
    processes = [demo]
    try:
        config = demo_dir / "cmscan.toml"
        deadline = time.monotonic() + 120
        while not config.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        listen = tomllib.loads(config.read_text(encoding="utf-8"))["daemon"]["listen"]
        web = "127.0.0.1:" + str(_free_port())
        (work / "prometheus.yml").write_text(
            prometheus_config(
                listen, scrape_interval=scrape_interval, rules_dir=HERE / "prometheus" / "rules"
            )
        )
        prometheus = subprocess.Popen(  # noqa: S603 (the Prometheus binary, our arguments)
            [
                prometheus_bin,
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address={web}",
            ],
            stdout=(work / "prometheus.out").open("w"),
            stderr=subprocess.STDOUT,
        )
        processes.append(prometheus)
        print(f"cmscan demo on {listen}, Prometheus on {web}; rendering in {seconds:.0f} s")
        time.sleep(seconds)
        client = Prometheus(f"http://{web}")
        for name in ("cmscan-deployment.json", "cmscan-health.json"):
            for path in render(
                client,
                DASHBOARDS / name,
                out_dir,
                range_seconds=seconds,
                scrape_interval=scrape_interval,
            ):
                print(path)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _duration(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 15m or 6h")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", help="URL of a Prometheus that scrapes cmscan")
    source.add_argument(
        "--demo",
        type=_duration,
        metavar="DURATION",
        help="run cmscan demo and a Prometheus for this long, then render",
    )
    parser.add_argument("--hosts", type=int, default=600, help="demo fleet size")
    parser.add_argument(
        "--range",
        type=_duration,
        default=_duration("6h"),
        help="time range of the graphs (with --prometheus)",
    )
    parser.add_argument("--scrape-interval", type=_duration, default=None)
    parser.add_argument(
        "--dashboard",
        type=Path,
        action="append",
        help="dashboard JSON (default: both cmscan dashboards)",
    )
    parser.add_argument("--out", type=Path, default=SCREENSHOTS)
    args = parser.parse_args()
    if args.demo:
        run_demo(args.demo, args.hosts, args.out, args.scrape_interval or 2.0)
        return
    client = Prometheus(args.prometheus)
    boards = args.dashboard or [
        DASHBOARDS / "cmscan-deployment.json",
        DASHBOARDS / "cmscan-health.json",
    ]
    for board in boards:
        for path in render(
            client,
            board,
            args.out,
            range_seconds=args.range,
            scrape_interval=args.scrape_interval or 30.0,
        ):
            print(path)


if __name__ == "__main__":
    main()
