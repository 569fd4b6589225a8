"""Grafana dashboards read, queried against Prometheus and drawn with matplotlib."""

# The modules import each other relatively: this package is `panels` when
# deploy/render_panels.py runs, and the tests load it by path under another name.

# What the tests use to evaluate every dashboard query, without matplotlib.
from .dashboards import (
    BUILTIN_INTERVALS,
    Query,
    expand,
    interval_values,
    iter_panels,
    legend,
    load_dashboard,
    panel_queries,
    parse_label_values,
    referenced,
    regex_value,
    variable_query,
    variables,
)
from .prometheus_api import Prometheus, PrometheusError
from .querying import PanelData, fetch, resolve_variables

__all__ = [
    "BUILTIN_INTERVALS",
    "PanelData",
    "Prometheus",
    "PrometheusError",
    "Query",
    "expand",
    "fetch",
    "interval_values",
    "iter_panels",
    "legend",
    "load_dashboard",
    "panel_queries",
    "parse_label_values",
    "referenced",
    "regex_value",
    "resolve_variables",
    "variable_query",
    "variables",
]
