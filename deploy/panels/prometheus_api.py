"""A small client for Prometheus' HTTP query API, as Grafana uses it."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


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
