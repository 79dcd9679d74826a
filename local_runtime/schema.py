"""The field-schema mini-language: which fields a step may carry and what each one accepts.

A schema is a dict of field name to schema (an object), a one-item list (a list of that), ANY,
a Check (a test on the value) or Ignored (accepted, with no local effect: its text, the reason,
goes to the step log). Any other field is an error naming the step and the field, never
silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from local_runtime.errors import DefinitionError
from pipeline_scripts.api_model import is_expression

ANY = "any"


class Ignored(str):
    """Accepted, with no local effect; the text says why."""


@dataclass(frozen=True)
class Check:
    """Accepted when `test(value)` holds; `expected` describes what passes."""

    test: Callable[[Any], bool]
    expected: str


def one_of(*values) -> Check:
    return Check(lambda v: v in values, "one of " + ", ".join(repr(v) for v in values))


def check_fields(where: str, value, schema, path: str = "") -> list[str]:
    """Raises DefinitionError for the first unsupported field (`where` names the step);
    returns the notes of the Ignored fields present. Expressions pass: their values are
    checked again once resolved."""
    if schema == ANY or is_expression(value):
        return []
    if isinstance(schema, Ignored):
        return [f"{path}: {schema}"]
    if isinstance(schema, Check):
        if not schema.test(value):
            raise DefinitionError(
                f"{where}: {path} = {value!r} is not supported by the local runtime "
                f"(expected {schema.expected})"
            )
        return []
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise DefinitionError(f"{where}: {path} must be a list")
        return [
            note
            for i, item in enumerate(value)
            for note in check_fields(where, item, schema[0], f"{path}[{i}]")
        ]
    if not isinstance(value, dict):
        raise DefinitionError(f"{where}: {path} must be an object")
    notes = []
    for key, item in value.items():
        field_path = f"{path}.{key}" if path else key
        if key not in schema:
            raise DefinitionError(
                f"{where}: field {field_path} is not supported by the local runtime "
                f"(supported here: {', '.join(sorted(schema))})"
            )
        notes += check_fields(where, item, schema[key], field_path)
    return notes
