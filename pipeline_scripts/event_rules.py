"""The EventBridge rules of this project, read from their one definition in events/*.json.

Each ``events/<name>.json`` is one rule: ``{"description", "event_pattern", "input_transformer"
(null or {"input_paths", "input_template"}), "target"}``. Values that differ per deployment are
Terraform template placeholders (``${name}``): Terraform renders the files with ``templatefile()``
in events.tf, and :func:`load_rules` renders them here with the same values, for the tests and
the local runtime's event router. Neither side holds a copy of any pattern.

Only the plain ``${name}`` placeholder of Terraform's template syntax is supported; anything else
(expressions, ``%{`` directives, ``$${`` escapes) is rejected so both renderings stay identical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_scripts.config import REPO_ROOT, EnvConfig, ProjectConfig
from pipeline_scripts.contract import RULE_TARGETS, STEPS

EVENTS_DIR = REPO_ROOT / "events"
# What a rule can start (contract.json rule_targets); events.tf maps each to a Lambda function
# or a SageMaker pipeline (dispatch_batch and retrain_gate: the Lambdas of dispatcher.tf).
TARGETS = RULE_TARGETS
RULE_KEYS = ("description", "event_pattern", "input_transformer", "target")
TRANSFORMER_KEYS = ("input_paths", "input_template")

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
# Characters that would need escaping inside a JSON string: templatefile() does not escape,
# so a value holding one would render differently (or not at all) in the two runtimes.
_UNSAFE = re.compile(r'["\\\x00-\x1f]')
# <name> placeholders of an input template.
_TEMPLATE_FIELD = re.compile(r"<([A-Za-z0-9_.-]+)>")


class EventRuleError(ValueError):
    """A rule file is malformed, or an event does not fit a rule's input transformer."""


@dataclass(frozen=True)
class InputTransformer:
    """EventBridge InputTransformer: JSON paths into the event and the template they fill."""

    input_paths: dict[str, str]
    input_template: str


@dataclass(frozen=True)
class Rule:
    """One rendered rule; `name` is its file name without .json."""

    name: str
    description: str
    event_pattern: dict[str, Any]
    input_transformer: InputTransformer | None
    target: str

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether EventBridge would route `event` to this rule (moto's pattern matcher)."""
        # Imported here: rendering rules must not need moto, matching events does.
        from moto.events.models import EventPattern

        return EventPattern.load(json.dumps(self.event_pattern)).matches_event(event)

    def target_input(self, event: dict[str, Any]) -> dict[str, Any]:
        """What the target receives for `event`: the event itself, or the transformer's output.

        Placeholders must stand for whole JSON values (``"key": <name>``), as in every rule
        here; EventBridge inserts each value as JSON there.
        """
        if self.input_transformer is None:
            return event
        values = {
            field: _resolve(event, path, self.name)
            for field, path in self.input_transformer.input_paths.items()
        }

        def fill(match: re.Match) -> str:
            field = match.group(1)
            if field not in values:
                raise EventRuleError(
                    f"rule {self.name!r}: input_template placeholder <{field}> is not one of "
                    f"input_paths ({', '.join(values)})"
                )
            return json.dumps(values[field])

        text = _TEMPLATE_FIELD.sub(fill, self.input_transformer.input_template)
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise EventRuleError(
                f"rule {self.name!r}: input_template does not give JSON ({error}); put "
                "placeholders where whole JSON values go, not inside strings"
            ) from None


def _resolve(event: dict[str, Any], path: str, rule: str) -> Any:
    """The value at a JSON path in dot notation ($.detail.stepName), as EventBridge reads it."""
    if not path.startswith("$."):
        raise EventRuleError(f"rule {rule!r}: input path {path!r} must start with '$.'")
    value: Any = event
    for key in path[2:].split("."):
        if not isinstance(value, dict) or key not in value:
            raise EventRuleError(f"rule {rule!r}: input path {path} is not in the event")
        value = value[key]
    return value


def pipeline_arn(env: EnvConfig, pipeline_name: str) -> str:
    """ARN of a SageMaker pipeline, as its events carry it."""
    # SageMaker lowercases the name in a pipeline's ARN (ListPipelines shows
    # pipeline/abalonepipeline for AbalonePipeline); events.tf does the same with lower().
    return (
        f"arn:{env.partition}:sagemaker:{env.region}:{env.account_id}:"
        f"pipeline/{pipeline_name.lower()}"
    )


def template_variables(config: ProjectConfig) -> dict[str, str]:
    """The values of the ${...} placeholders: local.event_template_vars in events.tf."""
    env = config.env
    return {
        "pipeline_train_arn": pipeline_arn(env, env.pipeline_train),
        "pipeline_trainwhpo_arn": pipeline_arn(env, env.pipeline_trainwhpo),
        "pipeline_inf_arn": pipeline_arn(env, env.pipeline_inf),
        "model_package_group_name": env.model_package_group_name,
        "bucket_name": env.bucket_name,
        "train_prefix": f"{env.bucket_prefix}/{env.bucket_train_prefix}/",
        "inference_prefix": f"{env.bucket_prefix}/{env.bucket_inf_prefix}/",
        "labels_prefix": f"{env.bucket_prefix}/labels/",
        "model_quality_failed_step": STEPS["model_quality_failed"],
        "labels_quality_failed_step": STEPS["labels_quality_failed"],
    }


def render(text: str, variables: dict[str, str], source: Path | str) -> str:
    """Substitute ${name} placeholders as Terraform's templatefile() does."""
    for marker in ("%{", "$${"):
        if marker in text:
            raise EventRuleError(
                f"{source}: expected only ${{name}} placeholders, got Terraform template "
                f"syntax {marker!r}"
            )

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise EventRuleError(
                f"{source}: placeholder ${{{name}}}: expected one of {', '.join(variables)}"
            )
        value = variables[name]
        if _UNSAFE.search(value):
            raise EventRuleError(
                f"{source}: placeholder ${{{name}}}: expected a value without quotes, "
                f"backslashes or control characters, got {value!r}"
            )
        return value

    return _PLACEHOLDER.sub(substitute, text)


def load_rules(config: ProjectConfig, events_dir: Path | str = EVENTS_DIR) -> dict[str, Rule]:
    """Every rule in events_dir, rendered for this configuration, by name."""
    variables = template_variables(config)
    paths = sorted(Path(events_dir).glob("*.json"))
    if not paths:
        raise EventRuleError(f"{events_dir}: expected rule files <name>.json, found none")
    return {path.stem: _load_rule(path, variables) for path in paths}


def _load_rule(path: Path, variables: dict[str, str]) -> Rule:
    if not _NAME.fullmatch(path.stem):
        raise EventRuleError(
            f"{path}: expected a file name of lowercase letters, digits and '_' (it names the "
            f"rule), got {path.name!r}"
        )
    text = render(path.read_text(encoding="utf-8"), variables, path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise EventRuleError(
            f"{path}: line {error.lineno}, column {error.colno}: expected valid JSON, "
            f"got {error.msg}"
        ) from None
    _expect_keys(data, RULE_KEYS, path, "the rule")
    if data["target"] not in TARGETS:
        raise EventRuleError(
            f"{path}: 'target': expected one of {', '.join(TARGETS)}, got {data['target']!r}"
        )
    if not isinstance(data["event_pattern"], dict) or not data["event_pattern"]:
        raise EventRuleError(f"{path}: 'event_pattern': expected a non-empty JSON object")
    transformer = data["input_transformer"]
    if transformer is not None:
        _expect_keys(transformer, TRANSFORMER_KEYS, path, "'input_transformer'")
        transformer = InputTransformer(**transformer)
    return Rule(
        name=path.stem,
        description=data["description"],
        event_pattern=data["event_pattern"],
        input_transformer=transformer,
        target=data["target"],
    )


def _expect_keys(data: Any, keys: tuple[str, ...], path: Path, what: str) -> None:
    if not isinstance(data, dict) or set(data) != set(keys):
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise EventRuleError(f"{path}: {what}: expected the keys {', '.join(keys)}, got {got}")


def matching_rules(rules: dict[str, Rule], event: dict[str, Any]) -> list[Rule]:
    """The rules EventBridge would route `event` to, in name order."""
    return [rule for _, rule in sorted(rules.items()) if rule.matches(event)]
