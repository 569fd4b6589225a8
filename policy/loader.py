"""Loading policy files: YAML with positions, validation, every problem as file:line:col."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inventory.yamlpos import YamlDocument, YamlError, load_yaml
from policy import schema
from policy.access import AccessRule
from policy.compiled import Policy, Rule
from policy.conditions import Selectors, compile_condition

DEFAULT_POLICY_FILE = "nhs-cis-baseline.yaml"
# A real policy is a few KiB; these bounds stop hostile files (huge, deeply nested, or alias
# bombs that expand exponentially) before any validation walks them.
MAX_BYTES = 1024 * 1024
MAX_DEPTH = 40
MAX_EXPANDED_NODES = 100_000


class PolicyError(ValueError):
    """A policy cannot be used; `problems` holds every one as `file:line:col: message`."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class _TooBigError(Exception):
    pass


def _measure(root: yaml.Node) -> int:
    """Nodes the document expands to (aliases counted each time they are used); raises _TooBigError
    past the limits or on an alias that contains itself."""
    done: dict[int, int] = {}
    active: set[int] = set()

    def visit(node: yaml.Node) -> int:
        key = id(node)
        if key in done:
            return done[key]
        if key in active:
            raise _TooBigError("an alias refers to itself")
        if len(active) >= MAX_DEPTH:
            raise _TooBigError(f"nesting deeper than {MAX_DEPTH} levels")
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        size = 1
        for child in children:
            size += visit(child)
            if size > MAX_EXPANDED_NODES:
                raise _TooBigError(f"the document expands to more than {MAX_EXPANDED_NODES} values")
        active.discard(key)
        done[key] = size
        return size

    return visit(root)


def _path(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith("<"):  # union tags are not keys in the file
            text += f".{part}" if text else part
    return text


def _describe(value: Any) -> str:
    kind = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", int: "a number"}
    return kind.get(type(value), type(value).__name__)


def _problems(doc: YamlDocument, exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not (isinstance(part, str) and part[:1] == "<")]
        kind = error["type"]
        message = error["msg"].removeprefix("Value error, ")
        if kind == "missing":
            where = doc.where(loc[:-1])
            message = f"missing required key {loc[-1]!r}"
            loc = loc[:-1]
        elif kind == "extra_forbidden":
            where = doc.where(loc, key=True)
            message = f"unknown key {loc[-1]!r}"
            loc = loc[:-1]
        else:
            where = doc.where(loc)
            if kind.endswith("_type") or kind == "model_type":
                message = f"{message}, not {_describe(error['input'])}"
        path = _path(loc)
        problems.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
    return problems


def _duplicate_ids(doc: YamlDocument) -> list[str]:
    """Rules sharing an id; read from the raw data so it is reported with any other problem."""
    rules = doc.data.get("rules") if isinstance(doc.data, dict) else None
    first: dict[str, int] = {}
    problems = []
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        rule_id = rule.get("id") if isinstance(rule, dict) else None
        if not isinstance(rule_id, str):
            continue
        if rule_id in first:
            earlier = doc.where(["rules", first[rule_id], "id"])
            problems.append(
                f"{doc.where(['rules', index, 'id'])}: rules[{index}].id: duplicate rule id"
                f" {rule_id!r} (first defined at {earlier})"
            )
        else:
            first[rule_id] = index
    return problems


def _position(problem: str) -> tuple[int, int]:
    """(line, column) of a `file:line:col: message` problem, for listing them in file order."""
    head = problem.split(": ", 1)[0]
    try:
        line, column = head.rsplit(":", 2)[1:]
        return int(line), int(column)
    except ValueError:
        return 0, 0


def _parse(text: str, filename: str) -> tuple[YamlDocument, schema.PolicySpec]:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise PolicyError([f"{filename}:1:1: larger than {MAX_BYTES // 1024} KiB"])
    try:
        doc = load_yaml(text, filename)
    except YamlError as exc:
        raise PolicyError([str(exc)]) from None
    except RecursionError:
        raise PolicyError([f"{filename}:1:1: nesting too deep"]) from None
    if doc.root is None or not isinstance(doc.data, dict):
        raise PolicyError(
            [f"{filename}:1:1: a policy is a mapping with keys format, id, title, watch, rules"]
        )
    try:
        _measure(doc.root)
    except (_TooBigError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, _TooBigError) else "nesting too deep"
        raise PolicyError([f"{filename}:1:1: {reason}"]) from None
    fmt = doc.data.get("format")
    if "format" not in doc.data:
        raise PolicyError(
            [f"{filename}:1:1: missing required key 'format' (this cmscan reads format 1)"]
        )
    if fmt != schema.FORMAT or isinstance(fmt, bool):
        raise PolicyError(
            [
                f"{doc.where(['format'])}: format: unsupported policy format {fmt!r}"
                f" (this cmscan reads format {schema.FORMAT})"
            ]
        )
    problems = _duplicate_ids(doc)
    try:
        spec = schema.PolicySpec.model_validate(doc.data)
    except ValidationError as exc:
        problems += _problems(doc, exc)
    if problems:
        raise PolicyError(sorted(problems, key=_position))
    return doc, spec


@functools.lru_cache(maxsize=16)
def load_policy_text(text: str, filename: str = "<policy>") -> Policy:
    """Validate and compile a policy from its YAML text, or raise PolicyError listing every
    problem. Cached: daemons and commands load the same stored policy again and again."""
    _, spec = _parse(text, filename)
    selectors: Selectors = {}
    rules = tuple(
        Rule(
            id=rule.id,
            title=rule.title,
            severity=rule.severity,
            remediation=rule.remediation,
            check=compile_condition(rule.check, selectors),
            when=compile_condition(rule.when, selectors) if rule.when is not None else None,
        )
        for rule in spec.rules
    )
    return Policy(
        id=spec.id,
        title=spec.title,
        content_hash=hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        watched_patterns=tuple(spec.watch),
        rules=rules,
        source=text,
        description=spec.description,
        access=_access(spec.access),
    )


def _access(spec: schema.AccessSpec | None) -> AccessRule | None:
    if spec is None:
        return None
    return AccessRule.build(title=spec.title, grants=spec.grants, implies=spec.implies)


def load_policy_file(path: str | Path) -> Policy:
    """Load a policy file; unreadable files raise PolicyError too."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise PolicyError([f"{path}:1:1: larger than {MAX_BYTES // 1024} KiB"])
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise PolicyError([f"{path}: no such file"]) from None
    except IsADirectoryError:
        raise PolicyError([f"{path}: is a directory, not a policy file"]) from None
    except UnicodeDecodeError as exc:
        raise PolicyError([f"{path}: not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read: {exc.strerror}"]) from None
    return load_policy_text(text, str(path))


def default_policy_text() -> str:
    return resources.files("policy").joinpath(DEFAULT_POLICY_FILE).read_text("utf-8")


def default_policy() -> Policy:
    """The NHS CIS baseline shipped with cmscan: the active policy until one is applied."""
    return load_policy_text(default_policy_text(), DEFAULT_POLICY_FILE)
