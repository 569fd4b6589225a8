"""Neutralising CSV cells that a spreadsheet would otherwise run as formulas."""

from __future__ import annotations

# A cell starting with one of these is a formula to Excel, LibreOffice or Google Sheets
# (OWASP "CSV injection"); host, site and practice names come from other people's files.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """The cell as text, prefixed with an apostrophe if a spreadsheet would evaluate it."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
