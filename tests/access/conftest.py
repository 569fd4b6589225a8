"""The seeded fleet's fixtures, shared with the exporters' tests."""

from tests.exporters.conftest import seeded_sqlite, seeded_url

__all__ = ["seeded_sqlite", "seeded_url"]
