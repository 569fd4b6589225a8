"""YAML loading that remembers where every value came from, for file:line:col error messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml


class YamlError(ValueError):
    """A YAML file is not acceptable; `location` is file:line:col."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


@dataclass(frozen=True)
class YamlDocument:
    """Plain Python data from a YAML file, with the node tree it was built from."""

    data: Any
    root: yaml.Node | None
    filename: str

    def where(self, loc: Sequence[str | int], *, key: bool = False) -> str:
        """file:line:col of the value at `loc` (a pydantic error location) or its nearest parent;
        with `key`, of the mapping key that names it (for "unknown field" messages)."""
        node = _locate(self.root, loc, key=key) if self.root is not None else None
        if node is None:
            return f"{self.filename}:1:1"
        return f"{self.filename}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _locate(node: yaml.Node, loc: Sequence[str | int], *, key: bool = False) -> yaml.Node:
    """Walk mapping keys and sequence indices; skip parts that name no node (union tags)."""
    for position, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key_node, value in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    last = position == len(loc) - 1
                    node = key_node if key and last else value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part >= 0:
            node = node.value[part] if part < len(node.value) else node
    return node


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, which PyYAML would otherwise silently overwrite."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # PyYAML's scalar constructors raise plain ValueError for values that look typed but
        # are not (a date such as 2024-02-30); report those at the value, like syntax errors.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            shown = f" {node.value!r}" if isinstance(node, yaml.ScalarNode) else ""
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read{shown}: {exc}", node.start_mark
            ) from None


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be plain scalars", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, filename: str) -> YamlDocument:
    """Parse one YAML document; syntax errors and duplicate keys raise YamlError (file:line:col)."""
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else f"{filename}:1:1"
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(where, problem) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"{filename}:1:1", str(exc)) from None
    finally:
        loader.dispose()
    return YamlDocument(data=data, root=root, filename=filename)
