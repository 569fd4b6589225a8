"""Just enough PromQL reading to test alert expressions: the operands of their top-level
comparisons and set operations, which must return series even while the alert is quiet."""

from __future__ import annotations

import re

_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATORS = re.compile(r"(and|or|unless)\b", re.IGNORECASE)
_MODIFIERS = re.compile(
    r"^\s*(?:bool\b)?\s*(?:(?:on|ignoring)\s*\([^)]*\))?\s*"
    r"(?:(?:group_left|group_right)\b\s*(?:\([^)]*\))?)?",
    re.IGNORECASE,
)
_OPENING = {"(": ")", "{": "}", "[": "]"}


def _split(expr: str) -> list[str]:
    """Split at binary comparison and set operators outside brackets and strings."""
    parts: list[str] = []
    depth = 0
    quote = ""
    start = 0
    i = 0
    while i < len(expr):
        char = expr[i]
        if quote:
            if char == "\\":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in _OPENING:
            depth += 1
        elif char in _OPENING.values():
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced {char!r} at {i} in {expr!r}")
        elif depth == 0:
            operator = next((op for op in _COMPARISONS if expr.startswith(op, i)), None)
            word = None
            if operator is None and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
                match = _SET_OPERATORS.match(expr, i)
                word = match.group(0) if match else None
            if operator or word:
                parts.append(expr[start:i])
                i += len(operator or word or "")
                start = i
                continue
        i += 1
    if depth or quote:
        raise ValueError(f"unbalanced brackets or quotes in {expr!r}")
    parts.append(expr[start:])
    return parts


def _unwrap(expr: str) -> str:
    """Drop parentheses that enclose the whole expression."""
    text = expr.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def operands(expr: str) -> list[str]:
    """The leaves under an expression's comparisons and and/or/unless, outermost first.

    `absent(x)` yields `x`: absent() is empty exactly when all is well, x is not."""
    parts = [_unwrap(_MODIFIERS.sub("", part, count=1)) for part in _split(expr)]
    if len(parts) == 1:
        (only,) = parts
        inner = re.fullmatch(r"absent\s*\((.*)\)", only, re.DOTALL)
        if inner:
            return operands(inner.group(1))
        nested = _split(only)
        return [only] if len(nested) == 1 else operands(only)
    return [leaf for part in parts for leaf in operands(part)]
