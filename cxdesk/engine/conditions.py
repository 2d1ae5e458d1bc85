"""Workflow conditions: comparisons on survey answers and ticket fields, in and/or groups.

A condition is ``{"field": "q://product", "op": "is", "value": "360"}``; a group is
``{"all": [...]}`` or ``{"any": [...]}`` (nestable); ``{}`` always matches. Fields use the
piped-text names without ``${}``: ``q://<question>``, ``tck://Field/<field>``,
``tck://kv/<name>``, ``e://Field/<name>``; ``desk://<figure>`` in scheduled workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cxdesk.errors import must_be_one_of, unknown_keys
from cxdesk.i18n import _

OPERATORS = ("is", "is not", "contains", "<", "<=", ">", ">=", "is empty", "is not empty")
FIELD_PREFIXES = ("q://", "tck://Field/", "tck://kv/", "e://Field/", "desk://")
MAX_DEPTH = 16  # and/or groups nest at most this deep: no workflow needs more, and evaluating
# a hostile seed's thousand-deep nesting would exhaust the stack


def _number(value: object) -> float | None:
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _compare(op: str, actual: str, expected: str) -> bool:
    if op == "is":
        return actual == expected
    if op == "is not":
        return actual != expected
    if op == "contains":
        return expected.casefold() in actual.casefold()
    if op == "is empty":
        return actual.strip() == ""
    if op == "is not empty":
        return actual.strip() != ""
    left, right = _number(actual), _number(expected)
    if left is None or right is None:
        return False  # an ordering comparison on a non-number never matches
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def evaluate(condition: Mapping[str, Any], resolve: Callable[[str], str]) -> bool:
    """True when ``condition`` holds; ``resolve`` turns a field name into its text value."""
    if not condition:
        return True
    if "all" in condition:
        return all(evaluate(part, resolve) for part in condition["all"])
    if "any" in condition:
        return any(evaluate(part, resolve) for part in condition["any"])
    expected = condition.get("value")
    return _compare(
        str(condition["op"]),
        resolve(str(condition["field"])),
        "" if expected is None else str(expected),
    )


def condition_problems(condition: Any, where: str = "conditions", depth: int = 0) -> list[str]:
    """What is wrong with a condition tree, one line each (empty when it is valid)."""
    if depth > MAX_DEPTH:
        return [f"{where}: groups nest more than {MAX_DEPTH} deep"]
    if not isinstance(condition, Mapping):
        return [f"{where}: must be a table"]
    if not condition:
        return []
    for group in ("all", "any"):
        if group in condition:
            parts = condition[group]
            if not isinstance(parts, list) or len(condition) != 1:
                return [f"{where}: {group!r} must be the only key and hold a list"]
            problems: list[str] = []
            for index, part in enumerate(parts, start=1):
                problems += condition_problems(part, f"{where}.{group}[{index}]", depth + 1)
            return problems
    problems = []
    fieldname = condition.get("field")
    if not isinstance(fieldname, str) or not fieldname.startswith(FIELD_PREFIXES):
        problems.append(
            _("{where}: field must start with one of {prefixes}").format(
                where=where, prefixes=", ".join(FIELD_PREFIXES)
            )
        )
    if condition.get("op") not in OPERATORS:
        problems.append(f"{where}: op {must_be_one_of(OPERATORS)}")
    unknown = set(condition) - {"field", "op", "value"}
    if unknown:
        problems.append(unknown_keys(where, unknown))
    return problems
