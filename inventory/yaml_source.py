"""Inventory from YAML: the CSV fields, with defaults for the whole file and per practice group."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from inventory.problems import Inventory, Problem, SourcedHost, field_errors
from inventory.spec import FIELDS, HostSpec
from inventory.textfile import read_text
from inventory.yamlpos import YamlDocument, YamlError, load_yaml

FORMAT_VERSION = 1
TOP_KEYS = ("version", "defaults", "groups", "hosts")
# What a group (or the file's defaults) may set for the hosts under it.
SHARED_FIELDS = tuple(f for f in FIELDS if f not in ("hostname", "address"))
NAME_FIELDS = ("practice_name", "pcn_name", "ccg_name", "icb_name")

Path_ = tuple[str | int, ...]


def read_yaml(path: Path) -> Inventory:
    """Parse a YAML inventory. Problems are collected with file:line:col, never raised."""
    inventory = Inventory()
    try:
        doc = load_yaml(read_text(path), str(path))
    except YamlError as exc:
        inventory.problems.append(Problem(exc.location, exc.message))
        return inventory
    _Reader(doc, inventory).read()
    # One bad field in a group is inherited by each of its hosts: report it once.
    inventory.problems = list(dict.fromkeys(inventory.problems))
    return inventory


class _Reader:
    def __init__(self, doc: YamlDocument, inventory: Inventory) -> None:
        self.doc = doc
        self.inventory = inventory

    def problem(self, at: Path_, message: str, *, key: bool = False) -> None:
        self.inventory.problems.append(Problem(self.doc.where(at, key=key), message))

    def mapping(self, value: Any, at: Path_, allowed: tuple[str, ...], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(at, f"{what} must be a mapping of field: value")
            return {}
        result: dict[str, Any] = {}
        for key, item in value.items():
            if key not in allowed:
                message = f"unknown field {key!r} in {what}; allowed: {', '.join(allowed)}"
                self.problem((*at, key), message, key=True)
            else:
                result[str(key)] = item
        return result

    def read(self) -> None:
        data = self.doc.data
        if data is None:
            self.problem((), "the file is empty")
            return
        if not isinstance(data, Mapping):
            self.problem((), "the top level must be a mapping with 'groups' and/or 'hosts'")
            return
        top = self.mapping(data, (), TOP_KEYS, "the inventory")
        version = top.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            self.problem(
                ("version",), f"unsupported version {version!r}; this cmscan reads version 1"
            )
            return
        defaults = self.mapping(top.get("defaults"), ("defaults",), SHARED_FIELDS, "defaults")
        base: dict[str, Path_] = {k: ("defaults", k) for k in defaults}
        for index, group in enumerate(self.sequence(top.get("groups"), ("groups",))):
            self.group(group, ("groups", index), defaults, base)
        for index, entry in enumerate(self.sequence(top.get("hosts"), ("hosts",))):
            self.host(entry, ("hosts", index), defaults, base)
        if "groups" not in top and "hosts" not in top:
            self.problem((), "no hosts: add a 'groups' or a 'hosts' list")

    def sequence(self, value: Any, at: Path_) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(at, "must be a list")
            return []
        return value

    def group(
        self, value: Any, at: Path_, defaults: dict[str, Any], origin: dict[str, Path_]
    ) -> None:
        fields = self.mapping(value, at, (*SHARED_FIELDS, *NAME_FIELDS, "hosts"), "a group")
        hosts = fields.pop("hosts", None)
        names = {k: fields.pop(k) for k in NAME_FIELDS if k in fields}
        merged = {**defaults, **fields}
        where = {**origin, **{k: (*at, k) for k in fields}}
        if hosts is None and isinstance(value, Mapping):
            self.problem(at, "a group needs a 'hosts' list")
        for index, entry in enumerate(self.sequence(hosts, (*at, "hosts"))):
            self.host(entry, (*at, "hosts", index), merged, where)
        for key, name in names.items():
            kind = key.removesuffix("_name")
            code = merged.get(f"{kind}_code")
            if code and isinstance(name, str) and name.strip():
                self.inventory.org_names[(kind, str(code).strip().upper())] = name.strip()

    def host(
        self, value: Any, at: Path_, inherited: dict[str, Any], origin: dict[str, Path_]
    ) -> None:
        before = len(self.inventory.problems)
        entry = (
            {"hostname": value}
            if isinstance(value, str)
            else self.mapping(value, at, FIELDS, "a host")
        )
        self.inventory.rows += 1
        if not entry:
            if len(self.inventory.problems) == before:  # `-` or `{}` alone: likely a slip
                self.problem(at, "an empty host entry; give a hostname")
            return
        if len(self.inventory.problems) > before:  # an unknown field: the entry is not valid
            self.inventory.mention(entry.get("hostname"))
            return
        merged = {**inherited, **entry}
        where = {**origin, **{k: (*at, k) for k in entry}}
        if isinstance(value, str):
            where["hostname"] = at
        try:
            spec = HostSpec(**merged)
        except ValidationError as exc:
            for field_name, reason in field_errors(exc):
                self.problem(where.get(field_name, at), f"{field_name}: {reason}")
            self.inventory.mention(entry.get("hostname"))
            return
        self.inventory.hosts.append(SourcedHost(spec, self.doc.where(at)))
