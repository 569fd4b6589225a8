"""The cmscan probe script and the ways transports hand it to PowerShell."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence
from importlib import resources

from collectors.facts import PROBE_MARKER

# The command an SSH transport runs; the script itself arrives on stdin.
SSH_COMMAND = "powershell.exe -NoProfile -NonInteractive -Command -"

_MARKER = re.compile(re.escape(PROBE_MARKER) + r"/(\d+)")
_STDIN_LINE = re.compile(
    r"^& \(\[ScriptBlock\]::Create\(\[Text\.Encoding\]::UTF8\.GetString\("
    r"\[Convert\]::FromBase64String\('(?P<script>[A-Za-z0-9+/=]*)'\)\)\)\)"
    r" -Patterns @\((?P<patterns>.*)\)$"
)
# PowerShell ends a single-quoted string at any of these, and reads two in a row as the
# second one. Typographic quotes count too, and a pattern copied from a document may hold one.
_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
_QUOTED = re.compile(
    f"[{_SINGLE_QUOTES}]((?:[^{_SINGLE_QUOTES}]|[{_SINGLE_QUOTES}]{{2}})*)[{_SINGLE_QUOTES}]"
)
_DOUBLED = re.compile(f"[{_SINGLE_QUOTES}]([{_SINGLE_QUOTES}])")


@functools.cache
def probe_script() -> str:
    """The probe's PowerShell source, shipped as package data."""
    return resources.files("collectors").joinpath("probe.ps1").read_text(encoding="utf-8")


def is_probe(script: str) -> bool:
    """Whether a script is the cmscan probe, recognised by its marker rather than its bytes."""
    return _MARKER.search(script) is not None


def quote(value: str) -> str:
    """A PowerShell single-quoted string literal: nothing inside is interpreted."""
    return "'" + "".join(c + c if c in _SINGLE_QUOTES else c for c in value) + "'"


def stdin_invocation(script: str, patterns: Sequence[str]) -> str:
    """The one line fed to `powershell.exe -Command -` on stdin.

    `-Command -` runs stdin line by line, which breaks multi-line scripts; so the script
    travels base64-encoded inside a single line that rebuilds and invokes it.
    """
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    arguments = ",".join(quote(p) for p in patterns)
    return (
        "& ([ScriptBlock]::Create([Text.Encoding]::UTF8.GetString("
        f"[Convert]::FromBase64String('{encoded}')))) -Patterns @({arguments})\n"
    )


def parse_stdin_invocation(text: str) -> tuple[str, list[str]] | None:
    """The script and patterns of a stdin invocation, or None if the text is not one."""
    match = _STDIN_LINE.match(text.strip())
    if match is None:
        return None
    try:
        script = base64.b64decode(match["script"], validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    patterns = [_DOUBLED.sub(r"\1", m) for m in _QUOTED.findall(match["patterns"])]
    return script, patterns
