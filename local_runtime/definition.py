"""A pipeline definition as the runtime reads it: the step types it runs, the fields each may
carry (checked with schema.py's mini-language) and the steps as a dependency graph.

A step depends on every step named in its DependsOn and every step whose properties or
property files it reads; a step in a ConditionStep's IfSteps/ElseSteps also depends on the
condition (its gate). validate() refuses, naming the step and the field, anything the runtime
does not implement, and returns the notes on fields it accepts without emulating.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from local_runtime.cache import expire_after
from local_runtime.errors import DefinitionError
from local_runtime.expressions import CONDITION_TYPES, PARAMETER_TYPES, referenced_steps
from local_runtime.jobs import (
    MODEL_FIELDS,
    PROCESSING_FIELDS,
    REGISTER_MODEL_FIELDS,
    Job,
    StepResult,
    create_model,
    register_model,
    run_processing,
)
from local_runtime.schema import ANY, Check, Ignored, check_fields, one_of
from local_runtime.training import TRAINING_FIELDS, run_training
from local_runtime.transform import TRANSFORM_FIELDS, run_transform
from local_runtime.tuning import TUNING_FIELDS, run_tuning


@dataclass(frozen=True)
class JobStep:
    """How one job step type runs; `resource` names its ARN type, `metadata` its event key."""

    run: Callable[[Job], StepResult]
    fields: dict
    resource: str | None
    metadata: str | None
    operation: str  # the SageMaker API call the step makes with its Arguments
    name_member: str | None  # the request member SageMaker fills with the job's name
    name_limit: int = 63


JOB_STEPS = {
    "Processing": JobStep(
        run_processing,
        PROCESSING_FIELDS,
        "processing-job",
        "processingJob",
        "CreateProcessingJob",
        "ProcessingJobName",
    ),
    "Training": JobStep(
        run_training,
        TRAINING_FIELDS,
        "training-job",
        "trainingJob",
        "CreateTrainingJob",
        "TrainingJobName",
    ),
    "Tuning": JobStep(
        run_tuning,
        TUNING_FIELDS,
        "hyper-parameter-tuning-job",
        "tuningJob",
        "CreateHyperParameterTuningJob",
        "HyperParameterTuningJobName",
        32,
    ),
    "Transform": JobStep(
        run_transform,
        TRANSFORM_FIELDS,
        "transform-job",
        "transformJob",
        "CreateTransformJob",
        "TransformJobName",
    ),
    "Model": JobStep(create_model, MODEL_FIELDS, "model", "model", "CreateModel", "ModelName"),
    "RegisterModel": JobStep(
        register_model, REGISTER_MODEL_FIELDS, None, None, "CreateModelPackage", None
    ),
}
STEP_TYPES = (*JOB_STEPS, "Lambda", "Condition", "Fail")


def _valid_expiry(text) -> bool:
    try:
        expire_after(text)
    except ValueError:
        return False
    return True


_COMMON_STEP_FIELDS = {
    "Name": ANY,
    "Type": ANY,
    "DependsOn": ANY,
    "DisplayName": ANY,
    "Description": ANY,
    "CacheConfig": {"Enabled": ANY, "ExpireAfter": Check(_valid_expiry, "an ISO 8601 duration")},
    "RetryPolicies": Ignored(
        "the errors they retry (throttling, capacity, service faults) do not happen locally"
    ),
}
_EXTRA_STEP_FIELDS = {
    "Processing": {
        "PropertyFiles": [{"PropertyFileName": ANY, "OutputName": ANY, "FilePath": ANY}]
    },
    "Lambda": {
        "Arguments": ANY,  # the function's event
        "FunctionArn": ANY,
        "OutputParameters": [
            {"OutputName": ANY, "OutputType": one_of("String", "Integer", "Float", "Boolean")}
        ],
    },
    "Condition": {"Arguments": {"Conditions": ANY, "IfSteps": ANY, "ElseSteps": ANY}},
    "Fail": {"Arguments": {"ErrorMessage": ANY}},
}
DEFINITION_FIELDS = {
    "Version": ANY,
    "Metadata": ANY,
    "Parameters": [
        {"Name": ANY, "Type": one_of(*PARAMETER_TYPES), "DefaultValue": ANY, "EnumValues": ANY}
    ],
    "PipelineExperimentConfig": Ignored("no SageMaker Experiments locally"),
    "MlflowConfig": Check(lambda v: v is None, "null: no MLflow locally"),
    "Steps": ANY,
}


@dataclass
class Node:
    step: dict
    gate: tuple[str, bool] | None  # (condition step, outcome that runs this step)
    depends_on: set[str]

    @property
    def name(self) -> str:
        return self.step["Name"]


def _flatten(steps: list, gate=None) -> list[Node]:
    nodes = []
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("Name"), str):
            raise DefinitionError(f"every step needs a Name; got {step!r:.200}")
        own = {k: v for k, v in step.items() if k != "Arguments"}
        arguments = step.get("Arguments", {})
        condition = step.get("Type") == "Condition" and isinstance(arguments, dict)
        # A condition's branches are steps of their own, not what the condition reads.
        reads = arguments.get("Conditions", []) if condition else arguments
        depends = set(step.get("DependsOn") or []) | referenced_steps([own, reads])
        if gate:
            depends.add(gate[0])
        nodes.append(Node(step, gate, depends))
        if condition:
            nodes += _flatten(arguments.get("IfSteps", []), (step["Name"], True))
            nodes += _flatten(arguments.get("ElseSteps", []), (step["Name"], False))
    return nodes


def _check_conditions(where: str, conditions) -> None:
    for condition in conditions if isinstance(conditions, list) else [conditions]:
        kind = condition.get("Type") if isinstance(condition, dict) else None
        if kind not in CONDITION_TYPES:
            raise DefinitionError(
                f"{where}: condition Type {kind!r} is not supported (supported: "
                f"{', '.join(CONDITION_TYPES)})"
            )
        if kind == "Not":
            _check_conditions(where, condition.get("Condition"))
        if kind == "Or":
            _check_conditions(where, condition.get("Conditions", []))


def validate(definition: dict) -> tuple[list[Node], dict[str, list[str]]]:
    """The steps as a graph and, per step, the notes on accepted-but-not-emulated fields.
    Raises DefinitionError naming the step and field of anything unsupported or invalid."""
    if not isinstance(definition, dict):
        raise DefinitionError("a pipeline definition is a JSON object")
    top_notes = check_fields("the pipeline definition", definition, DEFINITION_FIELDS)
    nodes = _flatten(definition.get("Steps") or [])
    names = [node.name for node in nodes]
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
            raise DefinitionError(f"step name {name!r}: expected 1-64 letters, digits, - or _")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DefinitionError(f"step name(s) used more than once: {', '.join(duplicates)}")
    notes = {}
    for node in nodes:
        where, kind = f"step '{node.name}'", node.step.get("Type")
        if kind not in STEP_TYPES:
            raise DefinitionError(
                f"{where}: Type {kind!r} is not supported by the local runtime "
                f"(supported: {', '.join(STEP_TYPES)})"
            )
        schema = {**_COMMON_STEP_FIELDS, **_EXTRA_STEP_FIELDS.get(kind, {})}
        if kind in JOB_STEPS:
            schema["Arguments"] = JOB_STEPS[kind].fields
        notes[node.name] = top_notes + check_fields(where, node.step, schema)
        if kind == "Condition":
            _check_conditions(where, node.step.get("Arguments", {}).get("Conditions", []))
        unknown = sorted(node.depends_on - set(names))
        if unknown:
            raise DefinitionError(f"{where}: depends on unknown step(s) {', '.join(unknown)}")
    _check_acyclic(nodes)
    return nodes, notes


def _check_acyclic(nodes: list[Node]) -> None:
    remaining = {node.name: set(node.depends_on) for node in nodes}
    while remaining:
        free = [name for name, deps in remaining.items() if not deps & remaining.keys()]
        if not free:
            raise DefinitionError(f"dependency cycle among steps {', '.join(sorted(remaining))}")
        for name in free:
            del remaining[name]
