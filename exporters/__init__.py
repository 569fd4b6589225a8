"""Exporters: Prometheus metrics and CSV / JSON exports, all read from the database."""
