"""Requests checked against botocore's SageMaker service model, as the service checks them.

    errors = constraint_errors(request, input_shape("CreateModelPackage"))
    check_request("CreateModelPackage", request)  # raises ApiValidationError

moto (the embedded API) checks almost nothing, and botocore's own ParamValidator checks
required members, types and minimums but not enums, patterns or maximums. This module checks
all of them: required members, types, enums, min/max length (strings, lists, maps), min/max
value and patterns. The model's patterns are Java regexes (\\p{L} classes, matched against the
whole value), so they are matched with the `regex` module and fullmatch.

A violation is reported in the service's own words, e.g. (Kenza-AI/sagify#41 and
aws-samples/sagemaker-ml-workflow-with-apache-airflow#3 quote real responses):

    ValidationException: 1 validation error detected: Value 'x_y' at 'trainingJobName' failed
    to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9]...
    ValidationException: 2 validation errors detected: Value '...' at 'modelName' failed to
    satisfy constraint: Member must have length less than or equal to 63; Value '...' at ...

Member paths use the service's lowerCamel member names joined by "." (as in those messages);
list items are spelt `.N.member` (1-based) and map entries `.<key>`. A pipeline expression
(Get, Std:Join, Std:JsonGet) is skipped: design-time checks see it as a placeholder, and the
runtime checks the request again once expressions are resolved.
"""

from __future__ import annotations

import functools
import json

import botocore.session
import regex
from botocore.exceptions import ClientError

_TYPES = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "structure": (dict,),
    "map": (dict,),
    "list": (list, tuple),
}


# A pipeline expression in a definition (local_runtime/expressions.py resolves them at run time).
EXPRESSION_KEYS = ("Get", "Std:Join", "Std:JsonGet")


def is_expression(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


class ApiValidationError(ValueError):
    """A request SageMaker would refuse; the message is the service's."""


@functools.cache
def service_model(service: str = "sagemaker"):
    return botocore.session.get_session().get_service_model(service)


def input_shape(operation: str, service: str = "sagemaker"):
    return service_model(service).operation_model(operation).input_shape


def member_shape(operation: str, path: str, service: str = "sagemaker"):
    """The shape at a dotted member path of an operation's input, e.g.
    member_shape("CreateModelPackage", "CustomerMetadataProperties.{}"): `[]` steps into a
    list's member, `{}` into a map's value."""
    shape = input_shape(operation, service)
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


@functools.cache
def _compiled(pattern: str):
    return regex.compile(pattern, flags=regex.DOTALL)


def _shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _violation(value, path: str, constraint: str) -> str:
    return f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def constraint_errors(value, shape, path: str = "") -> list[str]:
    """Every constraint of `shape` that `value` breaks, in the service's wording."""
    if is_expression(value):
        return []
    kind = shape.type_name
    allowed = _TYPES.get(kind)
    wrong_bool = isinstance(value, bool) and kind not in ("boolean",)
    if allowed and (wrong_bool or not isinstance(value, allowed)):
        return [_violation(value, path, f"Member must be of type {kind}")]
    meta, errors = shape.metadata, []
    if kind in ("string", "list", "map"):
        if "min" in meta and len(value) < meta["min"]:
            errors.append(
                _violation(
                    value, path, f"Member must have length greater than or equal to {meta['min']}"
                )
            )
        if "max" in meta and len(value) > meta["max"]:
            errors.append(
                _violation(
                    value, path, f"Member must have length less than or equal to {meta['max']}"
                )
            )
    elif kind in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            constraint = f"Member must have value greater than or equal to {meta['min']}"
            errors.append(_violation(value, path, constraint))
        if "max" in meta and value > meta["max"]:
            constraint = f"Member must have value less than or equal to {meta['max']}"
            errors.append(_violation(value, path, constraint))
    if kind == "string":
        if shape.enum and value not in shape.enum:
            constraint = f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
            errors.append(_violation(value, path, constraint))
        pattern = meta.get("pattern")
        if pattern and not _compiled(pattern).fullmatch(value):
            constraint = f"Member must satisfy regular expression pattern: {pattern}"
            errors.append(_violation(value, path, constraint))
    elif kind == "structure":
        for name in shape.required_members:
            # An idempotency token is filled in by the SDK when the caller leaves it out.
            token = shape.members[name].metadata.get("idempotencyToken")
            if value.get(name) is None and not token:
                member = f"{path}.{_camel(name)}" if path else _camel(name)
                errors.append(
                    f"Value null at '{member}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, item in value.items():
            if name in shape.members and item is not None:
                member = f"{path}.{_camel(name)}" if path else _camel(name)
                errors += constraint_errors(item, shape.members[name], member)
    elif kind == "list":
        for i, item in enumerate(value, start=1):
            errors += constraint_errors(item, shape.member, f"{path}.{i}.member")
    elif kind == "map":
        for key, item in value.items():
            errors += constraint_errors(key, shape.key, f"{path}.{key}")
            errors += constraint_errors(item, shape.value, f"{path}.{key}")
    return errors


def validation_message(errors: list[str]) -> str:
    """The message of the service's ValidationException for `errors`."""
    count = len(errors)
    detected = (
        "1 validation error detected" if count == 1 else f"{count} validation errors detected"
    )
    return f"{detected}: {'; '.join(errors)}"


def check_request(operation: str, request: dict, service: str = "sagemaker") -> None:
    """Raises ApiValidationError with the service's message when `request` breaks the model."""
    errors = constraint_errors(request, input_shape(operation, service))
    if errors:
        raise ApiValidationError(f"ValidationException: {validation_message(errors)}")


def validate_client_request(params: dict, model, **_) -> None:
    """botocore 'before-parameter-build' handler: a request the service would refuse fails as
    the service fails it, with a ClientError (ValidationException) - before moto, which checks
    almost nothing, accepts it."""
    errors = constraint_errors(params, model.input_shape) if model.input_shape else []
    if errors:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": validation_message(errors)}},
            model.name,
        )
