"""One panel's rectangle on a matplotlib figure: its frame, and axes placed inside it."""

from __future__ import annotations

from typing import Any

from .style import BORDER, PANEL, TEXT


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
