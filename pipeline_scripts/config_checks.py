"""The building blocks of the configuration schema: checks that run in Python and render as
Terraform validation blocks, and the dataclass fields that carry them.

A check returns None when a value is fine, else what was expected (the "expected ..." of the
one-line error). Its `terraform(expr)` gives the same rule as (condition, message) pairs for
validation blocks of variables.tf, where `expr` is the HCL expression of the value and the
message completes "Expected <variable> ...". pipeline_scripts/config_generate.py writes them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# (condition, message): one validation block; the message completes "Expected <subject> ".
Rule = tuple[str, str]


@dataclass(frozen=True)
class Check:
    """A rule on one value, in Python (`test`) and, where HCL can express it, in Terraform."""

    test: Callable[[Any], str | None]
    terraform: Callable[[str], list[Rule]] = lambda expr: []

    def __call__(self, value: Any) -> str | None:
        return self.test(value)


def hcl_string(text: str) -> str:
    """A quoted HCL string literal of `text` (no interpolation)."""
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def hcl_list(items: tuple | list) -> str:
    return "[" + ", ".join(hcl_string(i) if isinstance(i, str) else str(i) for i in items) + "]"


def matches(pattern: str, what: str) -> Check:
    """Matches `pattern`, written without backslashes so that Python and Terraform (RE2) read
    the very same string."""
    compiled = re.compile(pattern)
    return Check(
        lambda value: None if compiled.fullmatch(value) else f"{what} (matching {pattern})",
        lambda expr: [
            (f"can(regex({hcl_string(pattern)}, {expr}))", f"to be {what} (matching {pattern})")
        ],
    )


def one_of(*options: str) -> Check:
    return Check(
        lambda value: None if value in options else "one of " + ", ".join(map(repr, options)),
        lambda expr: [
            (f"contains({hcl_list(options)}, {expr})", "to be one of " + ", ".join(options))
        ],
    )


def between(
    low: float, high: float | None = None, *, open_low: bool = False, open_high: bool = False
) -> Check:
    """Numbers in [low, high], open at either end on request; no upper bound when high is None."""

    def check(value: float) -> str | None:
        above = value > low if open_low else value >= low
        below = high is None or (value < high if open_high else value <= high)
        if above and below:
            return None
        if high is None:
            return f"a value {'>' if open_low else '>='} {low}"
        return f"a value in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"

    def terraform(expr: str) -> list[Rule]:
        condition = f"{expr} {'>' if open_low else '>='} {low}"
        if high is not None:
            condition += f" && {expr} {'<' if open_high else '<='} {high}"
        return [(condition, f"to be {check(low - 1)}")]

    return Check(check, terraform)


def all_of(*checks: Check) -> Check:
    return Check(
        lambda value: next((e for c in checks if (e := c(value)) is not None), None),
        lambda expr: [rule for c in checks for rule in c.terraform(expr)],
    )


def max_length(limit: int, why: str) -> Check:
    return Check(
        lambda value: None if len(value) <= limit else f"at most {limit} characters: {why}",
        lambda expr: [(f"length({expr}) <= {limit}", f"of at most {limit} characters: {why}")],
    )


def empty_or(check: Check) -> Check:
    return Check(
        lambda value: None if value == "" else check(value),
        lambda expr: [
            (f'{expr} == "" || {condition}', message.replace("to be ", "to be empty or ", 1))
            for condition, message in check.terraform(expr)
        ],
    )


non_empty = Check(
    lambda value: None if value else "at least one entry",
    lambda expr: [(f"length({expr}) > 0", "to list at least one entry")],
)

distinct = Check(
    lambda value: None if len(set(value)) == len(value) else "no duplicate entries",
    lambda expr: [(f"length(distinct({expr})) == length({expr})", "to list each entry once")],
)

non_blank = Check(
    lambda value: None if value.strip() else "a non-empty message",
    lambda expr: [(f'trimspace({expr}) != ""', "to be a non-empty message")],
)


def field(
    check: Callable[[Any], str | None] | None = None,
    *,
    doc: str = "",
    items: Check | None = None,
    default: Any = ...,
    terraform: tuple[Rule, ...] = (),
) -> Any:
    """A dataclass field carrying its description, its check, the check of each list item and
    Terraform validations across variables (HCL conditions on var.<name>)."""
    return dataclasses.field(
        default=dataclasses.MISSING if default is ... else default,
        metadata={"check": check, "items": items, "doc": doc, "terraform": terraform},
    )


def var(
    doc: str,
    check: Callable[[Any], str | None] | None = None,
    *,
    items: Check | None = None,
    default: Any = ...,
    terraform: tuple[Rule, ...] = (),
) -> Any:
    """An env variable: its one-line description (variables.tf, README) comes first."""
    return field(check, doc=doc, items=items, default=default, terraform=terraform)
