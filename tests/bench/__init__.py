"""Tests of the sweep benchmark's pure parts: latency model, result parsing, tables."""
