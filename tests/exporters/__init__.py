"""Tests of the metrics, the HTTP API, the exports and cmscan status."""
