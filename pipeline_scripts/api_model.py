"""Check values against botocore's SageMaker service model, as the service would.

botocore's own ParamValidator checks types, required members and minimum lengths only; the
service also enforces maximum lengths, enums and the model's `pattern`s. The patterns are
Java regular expressions with \\p{L}-style classes, hence the `regex` module, and the service
matches them against the whole value (Java `String.matches`).

The messages follow the service's ValidationException text, e.g. "Value 'x' at
'customerMetadataProperties' failed to satisfy constraint: Member must satisfy regular
expression pattern: ...", so a failure here reads like the error AWS would return.
"""

from __future__ import annotations

from functools import cache

import botocore.session
import regex
from botocore.model import Shape


@cache
def service_model(service: str = "sagemaker"):
    return botocore.session.get_session().get_service_model(service)


def member_shape(operation: str, path: str, service: str = "sagemaker") -> Shape:
    """The shape at a dotted member path of an operation's input, e.g.
    member_shape("CreateModelPackage", "CustomerMetadataProperties.{}"): `[]` steps into a
    list's member, `{}` into a map's value."""
    shape = service_model(service).operation_model(operation).input_shape
    for step in path.split("."):
        if step == "[]" and shape.type_name == "list":
            shape = shape.member
        elif step == "{}" and shape.type_name == "map":
            shape = shape.value
        elif shape.type_name == "structure" and step in shape.members:
            shape = shape.members[step]
        else:
            raise KeyError(f"{operation}: no member {path!r} in the {service} service model")
    return shape


def _constraint(value, where: str, rule: str) -> str:
    return f"Value '{value}' at '{where}' failed to satisfy constraint: Member must {rule}"


def value_errors(value, shape: Shape, where: str = "value") -> list[str]:
    """Every constraint of `shape` (and its members) that `value` breaks, in the service's
    wording; [] when the value is valid. `where` names the value in the messages."""
    kind, meta = shape.type_name, shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [_constraint(value, where, "be a structure")]
        errors = [
            _constraint(None, f"{where}.{name}", "not be null")
            for name in shape.required_members
            if name not in value
        ]
        for name, item in value.items():
            if name not in shape.members:
                errors.append(f"Unknown parameter '{name}' at '{where}'")
            else:
                errors += value_errors(item, shape.members[name], f"{where}.{name}")
        return errors
    if kind == "list":
        if not isinstance(value, list):
            return [_constraint(value, where, "be a list")]
        errors = _size_errors(value, len(value), meta, where)
        for index, item in enumerate(value):
            errors += value_errors(item, shape.member, f"{where}.{index + 1}.member")
        return errors
    if kind == "map":
        if not isinstance(value, dict):
            return [_constraint(value, where, "be a map")]
        errors = _size_errors(value, len(value), meta, where)
        for key, item in value.items():
            errors += value_errors(key, shape.key, f"{where}.key")
            errors += value_errors(item, shape.value, f"{where}.{key}")
        return errors
    if kind == "string":
        if not isinstance(value, str):
            return [_constraint(value, where, "be a string")]
        errors = _size_errors(value, len(value), meta, where)
        if shape.enum and value not in shape.enum:
            errors.append(_constraint(value, where, f"satisfy enum value set: {shape.enum}"))
        pattern = meta.get("pattern")
        if pattern and not regex.fullmatch(pattern, value, flags=regex.DOTALL):
            errors.append(
                _constraint(value, where, f"satisfy regular expression pattern: {pattern}")
            )
        return errors
    if kind in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [_constraint(value, where, f"be a {kind}")]
        errors = []
        if "min" in meta and value < meta["min"]:
            errors.append(_constraint(value, where, f"be greater than or equal to {meta['min']}"))
        if "max" in meta and value > meta["max"]:
            errors.append(_constraint(value, where, f"be less than or equal to {meta['max']}"))
        return errors
    if kind == "boolean" and not isinstance(value, bool):
        return [_constraint(value, where, "be a boolean")]
    return []


def _size_errors(value, size: int, meta: dict, where: str) -> list[str]:
    errors = []
    if "min" in meta and size < meta["min"]:
        errors.append(
            _constraint(value, where, f"have length greater than or equal to {meta['min']}")
        )
    if "max" in meta and size > meta["max"]:
        errors.append(_constraint(value, where, f"have length less than or equal to {meta['max']}"))
    return errors


def validation_message(errors: list[str]) -> str:
    """The service's ValidationException text for a list of constraint violations."""
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"ValidationException: {count} validation {noun} detected: " + "; ".join(errors)
