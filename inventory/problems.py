"""Problems found in inventory files, each with the place it was found."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Literal

from pydantic import ValidationError

from inventory.hostnames import normalise_hostname
from inventory.spec import HostSpec


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: `where` is file:line (or file:line:col for YAML)."""

    where: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    @property
    def sort_key(self) -> tuple[str, int, int]:
        """Orders problems by file, then line and column numerically."""
        parts = self.where.split(":")
        numbers = [int(p) for p in parts[1:] if p.isdigit()] + [0, 0]
        return parts[0], numbers[0], numbers[1]


@dataclass(frozen=True, slots=True)
class SourcedHost:
    """A valid host and where it was defined."""

    spec: HostSpec
    where: str


class Findings:
    """What a file's reader found: `problems`, split by severity."""

    __slots__ = ()
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass(slots=True)
class Inventory(Findings):
    """What a source yielded: valid hosts, problems, and names mentioned by invalid rows.

    `mentioned` matters for synchronisation: a host whose row is invalid this time is still
    in the file, so a --skip-invalid import must not retire it.
    """

    hosts: list[SourcedHost] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    mentioned: set[str] = field(default_factory=set)
    org_names: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, code) -> name
    rows: int = 0

    def mention(self, hostname: object) -> None:
        """Remember a host name seen in a row that was not valid as a whole."""
        if isinstance(hostname, str):
            with contextlib.suppress(ValueError):
                self.mentioned.add(normalise_hostname(hostname))


def field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    """Each error as (field, reason), worded for the person who owns the inventory."""
    errors = []
    for error in exc.errors():
        field_name = ".".join(str(part) for part in error["loc"]) or "hostname"
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            reason = "unknown field"
        elif error["type"] == "missing" or error["input"] is None:
            reason = "is required"  # absent, or a blank cell (HostSpec reads blanks as None)
        errors.append((field_name, reason))
    return errors
