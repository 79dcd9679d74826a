"""The pipeline definition's expression language, evaluated as SageMaker Pipelines evaluates it.

A value in a definition is a literal or one of these (as the SageMaker SDK renders them):

    {"Get": "Parameters.<name>"}                 a pipeline parameter, typed by its declaration
    {"Get": "Execution.<variable>"}              PipelineExecutionId, PipelineExecutionArn,
                                                 PipelineName, PipelineArn, StartDateTime,
                                                 CurrentDateTime, TrainingJobName, ProcessingJobName
    {"Get": "Steps.<step>.<property path>"}      a property of a finished step, e.g.
                                                 ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri
    {"Std:Join": {"On": sep, "Values": [...]}}   the values as text, joined
    {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.<step>.PropertyFiles.<file>"},
                     "Path": "a.b[0].c"}}        a value from a JSON file a processing step wrote
                                                 (or "S3Uri": <value> instead of "PropertyFile")

A property path is evaluated against the step's Describe*-shaped properties: `.Name` reads a
field, `[3]` indexes a list, `['x']` reads key x of a mapping or selects the list element whose
`...Name` field (OutputName, ChannelName, ...) is x. Conditions (ConditionStep) are Equals,
GreaterThan(OrEqualTo), LessThan(OrEqualTo), In, Not and Or.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from local_runtime.clock import iso_time, now
from pipeline_scripts.api_model import is_expression

EXECUTION_VARIABLES = (
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
    "TrainingJobName",
    "ProcessingJobName",
)
PARAMETER_TYPES = ("String", "Float", "Integer", "Boolean")
CONDITION_TYPES = (
    "Equals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "In",
    "Not",
    "Or",
)


class ExpressionError(ValueError):
    """An expression cannot be evaluated; the message names the expression and why."""


class ParameterError(ValueError):
    """A parameter override does not fit the pipeline's declared parameters."""


@dataclass
class Scope:
    """What expressions can see while one step is evaluated."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]  # execution variables; CurrentDateTime is computed on use
    steps: Mapping[str, Mapping]  # properties of the steps that have succeeded
    property_files: Mapping[str, Mapping[str, Mapping]]  # step -> file name -> definition
    read_json: Callable[[str], Any]  # S3 URI -> parsed JSON document
    job_variables: Mapping[str, str] = field(default_factory=dict)  # TrainingJobName, ...


def resolve(value, scope: Scope):
    """`value` with every expression in it replaced by its value."""
    if is_expression(value):
        return _evaluate(value, scope)
    if isinstance(value, dict):
        return {key: resolve(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    return value


def referenced_steps(value) -> set[str]:
    """Names of the steps whose properties or property files `value` reads."""
    found = set()
    if isinstance(value, dict):
        reference = value.get("Get")
        if len(value) == 1 and isinstance(reference, str) and reference.startswith("Steps."):
            found.add(reference.split(".")[1])
        for item in value.values():
            found |= referenced_steps(item)
    elif isinstance(value, list):
        for item in value:
            found |= referenced_steps(item)
    return found


def as_text(value, where: str = "Std:Join") -> str:
    """A value as Std:Join writes it: JSON spelling for booleans, shortest form for numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ExpressionError(f"{where}: cannot turn {value!r} into text (expected a string or number)")


def _evaluate(expression: dict, scope: Scope):
    kind, spec = next(iter(expression.items()))
    if kind == "Get":
        return _get(spec, scope)
    if kind == "Std:Join":
        if not isinstance(spec, dict) or not isinstance(spec.get("Values"), list):
            raise ExpressionError(f"Std:Join {spec!r}: expected {{'On': str, 'Values': [...]}}")
        separator = spec.get("On", "")
        return separator.join(as_text(resolve(item, scope)) for item in spec["Values"])
    return _json_get(spec, scope)


def _get(reference, scope: Scope):
    if not isinstance(reference, str):
        raise ExpressionError(f"Get {reference!r}: expected a string reference")
    kind, _, rest = reference.partition(".")
    if kind == "Parameters":
        if rest not in scope.parameters:
            raise ExpressionError(
                f"Get {reference}: no parameter '{rest}' is declared "
                f"(declared: {', '.join(sorted(scope.parameters)) or 'none'})"
            )
        return scope.parameters[rest]
    if kind == "Execution":
        if rest == "CurrentDateTime":
            return iso_time(now())
        value = {**scope.execution, **scope.job_variables}.get(rest)
        if value is None:
            raise ExpressionError(
                f"Get {reference}: not available here (execution variables: "
                f"{', '.join(EXECUTION_VARIABLES)}; TrainingJobName and ProcessingJobName only "
                "inside a training or processing step)"
            )
        return value
    if kind == "Steps":
        step, _, path = rest.partition(".")
        if step not in scope.steps:
            raise ExpressionError(f"Get {reference}: step '{step}' has not succeeded")
        return lookup(scope.steps[step], path, where=f"Get {reference}")
    raise ExpressionError(f"Get {reference}: expected Parameters.*, Execution.* or Steps.*")


def _json_get(spec, scope: Scope):
    if not isinstance(spec, dict) or not isinstance(spec.get("Path"), str):
        raise ExpressionError(f"Std:JsonGet {spec!r}: expected a 'Path' and a 'PropertyFile'")
    if "PropertyFile" in spec:
        uri = _property_file_uri(spec["PropertyFile"], scope)
    elif "S3Uri" in spec:
        uri = as_text(resolve(spec["S3Uri"], scope), "Std:JsonGet S3Uri")
    else:
        raise ExpressionError(f"Std:JsonGet {spec!r}: needs a 'PropertyFile' or an 'S3Uri'")
    return lookup(scope.read_json(uri), spec["Path"], where=f"Std:JsonGet {spec['Path']} in {uri}")


def _property_file_uri(reference, scope: Scope) -> str:
    """Where a property file is: its processing output's S3 URI plus its FilePath."""
    get = reference.get("Get", "") if isinstance(reference, dict) else ""
    parts = get.split(".")
    if len(parts) != 4 or parts[0] != "Steps" or parts[2] != "PropertyFiles":
        raise ExpressionError(
            f"Std:JsonGet PropertyFile {reference!r}: expected "
            "{'Get': 'Steps.<step>.PropertyFiles.<name>'}"
        )
    step, name = parts[1], parts[3]
    spec = scope.property_files.get(step, {}).get(name)
    if spec is None:
        raise ExpressionError(f"Std:JsonGet: step '{step}' declares no property file '{name}'")
    if step not in scope.steps:
        raise ExpressionError(f"Std:JsonGet {get}: step '{step}' has not succeeded")
    output = f"ProcessingOutputConfig.Outputs['{spec['OutputName']}'].S3Output.S3Uri"
    prefix = lookup(scope.steps[step], output, where=f"property file {get}")
    return f"{str(prefix).rstrip('/')}/{spec['FilePath']}"


_TOKEN = re.compile(
    r"""(?P<dot>\.)?(?P<name>[^.\[\]'"\s]+)"""
    r"""|\[\s*'(?P<single>[^']*)'\s*\]|\[\s*"(?P<double>[^"]*)"\s*\]|\[\s*(?P<index>-?\d+)\s*\]"""
)


def lookup(document, path: str, where: str):
    """The value at a property/JSON path (see the module docstring) in `document`."""
    value, position, walked = document, 0, ""
    while position < len(path):
        token = _TOKEN.match(path, position)
        if token is None or (token["name"] and position > 0 and not token["dot"]):
            raise ExpressionError(f"{where}: cannot parse the path at '{path[position:]}'")
        position = token.end()
        value = _step_into(value, token, f"{where}: '{walked or '(root)'}'")
        walked = path[:position]
    return value


def _step_into(value, token, where: str):
    if token["name"] is not None:
        if not isinstance(value, Mapping) or token["name"] not in value:
            raise ExpressionError(f"{where} has no field '{token['name']}'")
        return value[token["name"]]
    if token["index"] is not None:
        index = int(token["index"])
        if not isinstance(value, list) or not -len(value) <= index < len(value):
            raise ExpressionError(f"{where} has no element [{index}]")
        return value[index]
    key = token["single"] if token["single"] is not None else token["double"]
    if isinstance(value, Mapping):
        if key not in value:
            raise ExpressionError(f"{where} has no key '{key}'")
        return value[key]
    if isinstance(value, list):
        for item in value:
            names = (
                [v for k, v in item.items() if k.endswith("Name")] if isinstance(item, dict) else []
            )
            if key in names:
                return item
        raise ExpressionError(f"{where} has no element named '{key}'")
    raise ExpressionError(f"{where} is not a mapping or list; cannot select ['{key}']")


# -- conditions -----------------------------------------------------------------------------


def condition_holds(condition: dict, scope: Scope) -> bool:
    """Evaluates one entry of a ConditionStep's Conditions (all entries must hold)."""
    kind = condition.get("Type") if isinstance(condition, dict) else None
    if kind == "Not":
        return not condition_holds(condition["Condition"], scope)
    if kind == "Or":
        return any(condition_holds(item, scope) for item in condition["Conditions"])
    if kind == "In":
        query = resolve(condition["QueryValue"], scope)
        values = [resolve(item, scope) for item in condition["Values"]]
        return any(_compare("Equals", query, value) for value in values)
    if kind in CONDITION_TYPES:
        left = resolve(condition["LeftValue"], scope)
        return _compare(kind, left, resolve(condition["RightValue"], scope))
    raise ExpressionError(f"condition type {kind!r} is not one of {', '.join(CONDITION_TYPES)}")


def _compare(kind: str, left, right) -> bool:
    def number(value):
        return isinstance(value, int | float) and not isinstance(value, bool)

    comparable = (number(left) and number(right)) or type(left) is type(right)
    if not comparable or (kind != "Equals" and isinstance(left, bool)):
        raise ExpressionError(
            f"{kind}: cannot compare {left!r} ({type(left).__name__}) with {right!r} "
            f"({type(right).__name__})"
        )
    if kind == "Equals":
        return left == right
    return {
        "GreaterThan": left > right,
        "GreaterThanOrEqualTo": left >= right,
        "LessThan": left < right,
        "LessThanOrEqualTo": left <= right,
    }[kind]


# -- parameters -----------------------------------------------------------------------------


def parameter_values(declared: list[dict], overrides: Mapping[str, Any] | None) -> dict:
    """Each declared parameter's value: the override (typed from its text, as
    StartPipelineExecution passes them, or already typed) or the default."""
    overrides = dict(overrides or {})
    names = {p["Name"] for p in declared}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ParameterError(
            f"parameter(s) {', '.join(unknown)} not declared by the pipeline "
            f"(declared: {', '.join(sorted(names)) or 'none'})"
        )
    values = {}
    for parameter in declared:
        name, kind = parameter["Name"], parameter["Type"]
        if name in overrides:
            value = _typed(name, kind, overrides[name])
        elif "DefaultValue" in parameter:
            value = _typed(name, kind, parameter["DefaultValue"])
        else:
            raise ParameterError(f"parameter {name} ({kind}) has no default; pass a value")
        allowed = parameter.get("EnumValues")
        if allowed and value not in allowed:
            raise ParameterError(f"parameter {name}: {value!r} is not one of {allowed}")
        values[name] = value
    return values


def _typed(name: str, kind: str, value):
    problem = f"parameter {name} ({kind}): {value!r} is not a valid {kind.lower()}"
    if kind == "String":
        if not isinstance(value, str):
            raise ParameterError(problem)
        return value
    if kind == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ParameterError(problem)
    if isinstance(value, bool) or kind not in ("Integer", "Float"):
        raise ParameterError(problem)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(problem) from None
    if kind == "Float":
        if not math.isfinite(number):
            raise ParameterError(problem)
        return number
    if not number.is_integer():
        raise ParameterError(problem)
    return int(number)


# -- small shared helpers -------------------------------------------------------------------


def jsonable(value):
    """A Describe* response (datetimes and all) as plain JSON-serialisable data."""
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def load_json_text(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ExpressionError(f"{where} is not valid JSON: {error}") from None
