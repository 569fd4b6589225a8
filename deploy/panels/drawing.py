"""Drawing one panel with matplotlib, as Grafana shows stats, bar gauges, graphs and tables."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .cells import Cell
from .querying import PanelData
from .style import BORDER, MUTED, PALETTE, PANEL, TEXT, colour, format_value, threshold_colour


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


def _overrides(panel: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-field overrides by field name: {name: {property id: value}}."""
    return {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o.get("properties", [])}
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o.get("matcher", {}).get("id") == "byName"
    }
