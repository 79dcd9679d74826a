"""Load and validate the project's configuration.

Three files configure everything:

- ``env_files/<env>.tfvars``: the per-environment values, read by Terraform *and* by this module
  (python-hcl2). ``EnvConfig`` below is the one Python schema of those variables: names, types,
  defaults, descriptions and checks. ``variables.tf`` declares the same variables for Terraform
  with mirrored validation blocks; tests keep the two in agreement.
- ``pipeline_scripts/pipelines.yaml``: settings shared by every environment (``PipelineSettings``).
- ``tags.json``: tags applied to every job and resource.

Every problem raises ``ConfigError`` with ONE line naming the file, the field and what was
expected, e.g. ``env_files/dev_env.tfvars: variable 'kms_key': expected ..., got '...'``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import typing
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hcl2
import lark
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
ENV_FILES_DIR = REPO_ROOT / "env_files"
DEFAULT_SETTINGS_FILE = PACKAGE_DIR / "pipelines.yaml"
DEFAULT_TAGS_FILE = REPO_ROOT / "tags.json"

ENVIRONMENTS = ("dev", "staging", "prod")
STEP_STATUSES = ("Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded")
EXECUTION_STATUSES = ("Executing", "Stopping", "Stopped", "Failed", "Succeeded")
# Pipelines write under <bucket_prefix>/artifacts; data prefixes must stay out of it, or a
# pipeline's own output would look like newly arrived data.
ARTIFACTS_PREFIX = "artifacts"

# Regular expressions shared with variables.tf, written without backslashes so the very same
# strings are valid in Python and in Terraform (RE2) and a test can find each one there.
PATTERNS = {
    "region": "^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$",
    "bucket": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    "ipv4": "^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$",
    "prefix": "^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$",
    "lambda": "^[a-zA-Z0-9_-]{1,64}$",
    # Lower-case only: SageMaker lower-cases pipeline names in the ARNs that events carry and
    # IAM matches, so a capital would make the rules and policies miss the pipeline.
    "pipeline": "^[a-z0-9](-*[a-z0-9]){0,255}$",
    "model_package_group": "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
    "user_id": "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
    "step_name": "^[A-Za-z0-9_-]{1,64}$",
    "email": "^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*[.][A-Za-z]{2,}$",
    "role_arn": (
        "^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$"
    ),
    # A key ARN (single-Region uuid or multi-Region mrk- id) or an alias ARN.
    "kms_key": (
        "^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:"
        "(key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
        "|alias/[A-Za-z0-9/_-]{1,250})$"
    ),
    "policy_arn": (
        "^arn:aws(-[a-z]+)*:iam::([0-9]{12}|aws):policy/([A-Za-z0-9+=,.@_-]+/)*"
        "[A-Za-z0-9+=,.@_-]{1,128}$"
    ),
    "subnet": "^subnet-[0-9a-f]{8,17}$",
    "security_group": "^sg-[0-9a-f]{8,17}$",
    # EventBridge rate() or cron() schedule expression; EventBridge checks the cron fields.
    "schedule": ("^(rate[(][1-9][0-9]* (minute|minutes|hour|hours|day|days)[)]|cron[(][^()]+[)])$"),
}
# Names S3 reserves for access points, directory buckets, table buckets and documentation.
BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")

# The longest names derived from model_package_group_name, <name>-model-package-approved and
# <name>-inference-data-created (EventBridge rules, at most 64 characters), must fit.
NAME_PREFIX_MAX_LENGTH = 41
# custom_notification_config travels in the notifier's environment, which Lambda limits to
# 4 KB in all ("Lambda quotas", AWS Lambda Developer Guide): 3 KB of it for this JSON.
CUSTOM_NOTIFICATION_MAX_BYTES = 3072

# A check returns None when the value is fine, else what was expected (the "expected ..." text).
Check = Callable[[Any], str | None]


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or holds a value that cannot work."""


# --------------------------------------------------------------------------- checks


def _matches(pattern_name: str, what: str) -> Check:
    pattern = PATTERNS[pattern_name]
    compiled = re.compile(pattern)
    return lambda value: None if compiled.fullmatch(value) else f"{what} (matching {pattern})"


def _one_of(*options: str) -> Check:
    return lambda value: None if value in options else "one of " + ", ".join(map(repr, options))


def _between(
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

    return check


def _all(*checks: Check) -> Check:
    def check(value: Any) -> str | None:
        return next((e for c in checks if (e := c(value)) is not None), None)

    return check


def _max_length(limit: int, why: str) -> Check:
    return lambda value: None if len(value) <= limit else f"at most {limit} characters: {why}"


def _reserved_concurrency(value: float) -> str | None:
    if value >= 0 and float(value).is_integer():
        return None
    return "0 (none reserved) or a whole number >= 1"


def terraform_jsonencode(value: Any) -> str:
    """Terraform's jsonencode(): compact, keys sorted, <, >, & and U+2028/9 escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def _custom_notification_size(value: tuple) -> str | None:
    size = len(terraform_jsonencode(_plain(value)).encode())
    if size <= CUSTOM_NOTIFICATION_MAX_BYTES:
        return None
    return (
        f"at most {CUSTOM_NOTIFICATION_MAX_BYTES} bytes as JSON (it is {size}): it is passed in "
        "the notifier's environment, which Lambda limits to 4 KB"
    )


def _empty_or(check: Check) -> Check:
    return lambda value: None if value == "" else check(value)


def _non_empty(value: tuple) -> str | None:
    return None if value else "at least one entry"


def _distinct(value: tuple) -> str | None:
    return None if len(set(value)) == len(value) else "no duplicate entries"


def _bucket_name(name: str) -> str | None:
    what = "an S3 bucket name"
    if not 3 <= len(name) <= 63:
        return f"{what} of 3 to 63 characters"
    if not re.fullmatch(PATTERNS["bucket"], name):
        return f"{what} of lowercase letters, digits, '.' and '-', starting and ending alphanumeric"
    if ".." in name:
        return f"{what} without two adjacent periods"
    if re.fullmatch(PATTERNS["ipv4"], name):
        return f"{what} not formatted as an IP address"
    if name.startswith(BUCKET_RESERVED_PREFIXES) or name.endswith(BUCKET_RESERVED_SUFFIXES):
        reserved = BUCKET_RESERVED_PREFIXES + BUCKET_RESERVED_SUFFIXES
        return f"{what} without a prefix or suffix S3 reserves ({', '.join(reserved)})"
    return None


def _s3_prefix(prefix: str) -> str | None:
    what = "an S3 key prefix"
    if prefix.startswith("s3://"):
        return f"{what} inside the bucket, without 's3://<bucket>/'"
    if prefix.startswith("/") or prefix.endswith("/"):
        return f"{what} without a leading or trailing '/'"
    if "//" in prefix or not prefix:
        return f"{what} without empty segments"
    if not re.fullmatch(PATTERNS["prefix"], prefix) or {".", ".."} & set(prefix.split("/")):
        return f"{what} of '/'-separated segments of letters, digits, '_', '.', '=' or '-'"
    return None


def _iso_duration(value: str) -> str | None:
    # ISO-8601 duration as SageMaker pipeline caching takes it, e.g. P30D, PT12H, P1Y2M.
    ok = re.fullmatch(r"P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?", value)
    if ok and value not in ("P", "PT") and not value.endswith("T"):
        return None
    return "an ISO-8601 duration such as P30D or PT12H"


# --------------------------------------------------------------------------- schema plumbing


def _field(
    check: Check | None = None, *, doc: str = "", items: Check | None = None, default: Any = ...
) -> Any:
    """A dataclass field carrying its description, its check and the check of each list item."""
    return dataclasses.field(
        default=dataclasses.MISSING if default is ... else default,
        metadata={"check": check, "items": items, "doc": doc},
    )


def _var(doc: str, check: Check | None = None, *, items: Check | None = None, default=...) -> Any:
    """An env variable: its one-line description (shared with variables.tf) comes first."""
    return _field(check, doc=doc, items=items, default=default)


# --------------------------------------------------------------------------- env (tfvars)


@dataclass(frozen=True, kw_only=True)
class CustomNotification:
    """A custom message the notifier adds for one pipeline step reaching one status."""

    step_name: str = _field(_matches("step_name", "a pipeline step name"))
    step_status: str = _field(_one_of(*STEP_STATUSES))
    step_custom_message: str = _field(lambda v: None if v.strip() else "a non-empty message")


@dataclass(frozen=True, kw_only=True)
class EnvConfig:
    """The variables of env_files/<env>.tfvars: the Python twin of variables.tf."""

    region: str = _var(
        "AWS region the pipelines, jobs and resources run in, e.g. eu-west-1.",
        _matches("region", "an AWS region name such as eu-west-1"),
    )
    environment: str = _var("Deployment environment: dev, staging or prod.", _one_of(*ENVIRONMENTS))
    bucket_name: str = _var(
        "Name of the existing S3 bucket that holds the data and the pipeline artefacts.",
        _bucket_name,
    )
    bucket_prefix: str = _var(
        "S3 prefix inside bucket_name for all data and artefacts of this project, "
        "e.g. pipeline_shared/batch-scoring.",
        _s3_prefix,
    )
    bucket_train_prefix: str = _var(
        "Prefix of the training data, relative to bucket_prefix, e.g. training/data/raw.",
        _s3_prefix,
    )
    bucket_inf_prefix: str = _var(
        "Prefix of the batch-inference data, relative to bucket_prefix, "
        "e.g. batch-scoring/data/raw.",
        _s3_prefix,
    )
    notification_function_name: str = _var(
        "Name of the Lambda function that turns pipeline status changes into notifications.",
        _matches("lambda", "a Lambda function name"),
        default="pipeline-notification-lambda",
    )
    custom_notification_config: tuple[CustomNotification, ...] = _var(
        "Custom notification messages, each for one pipeline step (step_name) reaching one "
        "status (step_status: Starting, Executing, Stopping, Stopped, Failed or Succeeded).",
        _custom_notification_size,
        default=(),
    )
    email_recipient: tuple[str, ...] = _var(
        "Email addresses that receive the pipeline notifications (at least one).",
        _all(_non_empty, _distinct),
        items=_matches("email", "an email address"),
    )
    pipeline_inf: str = _var(
        "Name of the batch-inference SageMaker pipeline.",
        _matches("pipeline", "a lower-case SageMaker pipeline name"),
        default="batch-inference-pipeline",
    )
    pipeline_train: str = _var(
        "Name of the training SageMaker pipeline.",
        _matches("pipeline", "a lower-case SageMaker pipeline name"),
        default="training-pipeline",
    )
    pipeline_trainwhpo: str = _var(
        "Name of the training-with-hyperparameter-tuning SageMaker pipeline.",
        _matches("pipeline", "a lower-case SageMaker pipeline name"),
        default="training-hpo-pipeline",
    )
    recreate_pipelines: bool = _var(
        "Delete and recreate existing pipelines on upsert instead of updating them in place.",
        default=False,
    )
    model_package_group_name: str = _var(
        "Name of the SageMaker model package group (model registry) the models are registered in.",
        _all(
            _matches("model_package_group", "a model package group name"),
            _max_length(
                NAME_PREFIX_MAX_LENGTH,
                "the names derived from it, such as <name>-model-package-approved (an "
                "EventBridge rule, at most 64 characters), must fit",
            ),
        ),
    )
    accuracy_mse_threshold: float = _var(
        "Maximum mean squared error a model may have: a worse model is not registered, and a "
        "batch scored worse triggers retraining.",
        _between(0, open_low=True),
        default=6.0,
    )
    role_arn: str = _var(
        "ARN of the IAM role the SageMaker pipelines and their jobs run as.",
        _matches("role_arn", "an IAM role ARN arn:aws:iam::<account>:role/<name>"),
    )
    kms_key: str = _var(
        "ARN of the KMS key (key or alias ARN, in region and in the account of role_arn) that "
        "encrypts S3 outputs, job volumes and the pipelines.",
        _matches("kms_key", "a KMS key ARN arn:aws:kms:<region>:<account>:key/<id> or alias ARN"),
    )
    subnet_id: tuple[str, ...] = _var(
        "Subnet ids the jobs and the Lambda functions run in; empty runs them outside a VPC "
        "(set with sg_id).",
        _distinct,
        items=_matches("subnet", "a subnet id"),
        default=(),
    )
    sg_id: tuple[str, ...] = _var(
        "Security group ids of the jobs and the Lambda functions; empty runs them outside a "
        "VPC (set with subnet_id).",
        _distinct,
        items=_matches("security_group", "a security group id"),
        default=(),
    )
    upload_training_data: bool = _var(
        "Upload the sample training data in data/ to the training data prefix.", default=True
    )
    upload_inference_data: bool = _var(
        "Upload the sample batch-inference data in data/ to the inference data prefix.",
        default=False,
    )
    user_id: str = _var(
        "Id of the SageMaker user, e.g. a12345, to tell the pipelines and jobs of users apart.",
        _matches("user_id", "a user id such as a12345"),
    )
    fail_on_data_quality_violation: bool = _var(
        "Fail the batch-inference pipeline execution on data-quality violations "
        "(violations are always reported).",
        default=True,
    )
    notify_execution_statuses: tuple[str, ...] = _var(
        "Pipeline execution statuses that send an e-mail: any of Executing, Stopping, Stopped, "
        "Failed, Succeeded.",
        _distinct,
        items=_one_of(*EXECUTION_STATUSES),
        default=("Succeeded", "Failed", "Stopped"),
    )
    notify_step_statuses: tuple[str, ...] = _var(
        "Pipeline step statuses that send an e-mail: any of Starting, Executing, Stopping, "
        "Stopped, Failed, Succeeded (custom_notification_config entries are sent whatever this "
        "says).",
        _distinct,
        items=_one_of(*STEP_STATUSES),
        default=("Failed",),
    )
    inference_schedule_expression: str = _var(
        "EventBridge schedule that also starts the batch-inference pipeline, e.g. "
        "cron(0 6 * * ? *) or rate(1 day); empty for no schedule.",
        _empty_or(_matches("schedule", "an EventBridge schedule such as rate(1 day)")),
        default="",
    )
    permissions_boundary: str = _var(
        "ARN of an IAM policy set as the permissions boundary of every IAM role this "
        "configuration creates; empty for none.",
        _empty_or(_matches("policy_arn", "an IAM policy ARN arn:aws:iam::<account>:policy/<name>")),
        default="",
    )
    lambda_reserved_concurrency: float = _var(
        "Concurrent executions reserved for each of the Lambda functions; 0 reserves "
        "none (accounts with the concurrency quota of new accounts, 10, cannot reserve any).",
        _reserved_concurrency,
        default=0,
    )

    @property
    def partition(self) -> str:
        """AWS partition of role_arn: aws, aws-cn, aws-us-gov, ..."""
        return self.role_arn.split(":")[1]

    @property
    def account_id(self) -> str:
        """The account the pipelines run in: the account of role_arn."""
        return self.role_arn.split(":")[4]

    @property
    def s3_base_uri(self) -> str:
        return f"s3://{self.bucket_name}/{self.bucket_prefix}"

    @property
    def train_data_uri(self) -> str:
        return f"{self.s3_base_uri}/{self.bucket_train_prefix}/"

    @property
    def inference_data_uri(self) -> str:
        return f"{self.s3_base_uri}/{self.bucket_inf_prefix}/"

    @property
    def artifacts_uri(self) -> str:
        return f"{self.s3_base_uri}/{ARTIFACTS_PREFIX}"

    @property
    def vpc_enabled(self) -> bool:
        return bool(self.subnet_id)


@dataclass(frozen=True)
class Variable:
    """One env variable as declared in variables.tf."""

    name: str
    terraform_type: str
    description: str
    required: bool
    default: Any  # None when required; lists as Python lists, like python-hcl2 returns them


def terraform_type(annotation: Any) -> str:
    """The Terraform type expression of a Python annotation of EnvConfig."""
    if annotation is str:
        return "string"
    if annotation is float:
        return "number"
    if annotation is bool:
        return "bool"
    if typing.get_origin(annotation) is tuple:
        return f"list({terraform_type(typing.get_args(annotation)[0])})"
    hints = typing.get_type_hints(annotation)
    members = ", ".join(f"{name} = {terraform_type(tp)}" for name, tp in hints.items())
    return f"object({{{members}}})"


def variable_schema() -> tuple[Variable, ...]:
    """Every env variable with its Terraform type, description and default."""
    hints = typing.get_type_hints(EnvConfig)
    return tuple(
        Variable(
            name=f.name,
            terraform_type=terraform_type(hints[f.name]),
            description=f.metadata["doc"],
            required=f.default is dataclasses.MISSING,
            default=None if f.default is dataclasses.MISSING else _plain(f.default),
        )
        for f in dataclasses.fields(EnvConfig)
    )


def _plain(value: Any) -> Any:
    """Tuples and dataclasses as the lists and dicts a parser returns."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


# --------------------------------------------------------------------------- generic reader


class _Source:
    """One file being read: formats every error as `<file>: <field>: expected ..., got ...`."""

    def __init__(self, file: Path | str, *, tfvars: bool) -> None:
        self.file = str(file)
        self.tfvars = tfvars

    def error(self, key: str, expected: str, got: str) -> ConfigError:
        field = f"variable '{key}'" if self.tfvars else f"'{key or '(top level)'}'"
        return ConfigError(f"{self.file}: {field}: expected {expected}, got {got}")

    def bad(self, key: str, expected: str, value: Any) -> ConfigError:
        return self.error(key, expected, _show(value))


def _show(value: Any) -> str:
    # Booleans and null as written in tfvars and YAML, so true and "true" look different.
    text = json.dumps(value) if value is None or isinstance(value, bool) else repr(_plain(value))
    return text if len(text) <= 160 else text[:157] + "..."


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _describe(tp: Any, value: Any = None) -> str:
    """What a value of annotation `tp` looks like, with a hint for the usual mistakes."""
    unquote = " (without quotes)" if isinstance(value, str) else ""
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false" + unquote
    if tp is int:
        return "an integer" + unquote
    if tp is float:
        return "a number" + unquote
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        # YAML 1.1 reads bare Off/On/Yes/No as booleans.
        hint = " (quote it in YAML)" if isinstance(value, bool) else ""
        return "one of " + ", ".join(map(repr, args)) + hint
    if origin is tuple:
        if args[0] is str:
            return "a list of strings"
        return "a list of objects with keys " + _keys(args[0])
    if origin is dict:
        return f"a mapping of names to {_describe(args[1])}"
    return f"an object with keys {_keys(tp)}"


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def _build(cls: type, data: Any, key: str, src: _Source) -> Any:
    """Instantiate dataclass `cls` from `data`: exact keys, right types, every field's checks."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise src.bad(key, _describe(cls), data)
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if src.tfvars and not key:
                expected = "a variable declared in variables.tf"
            else:
                expected = "one of the keys " + ", ".join(fields)
            raise src.error(_join(key, name), expected + hint, f"unknown name {str(name)!r}")
    hints = typing.get_type_hints(cls)
    missing = [
        src.error(
            _join(key, name),
            (f.metadata.get("doc", "").rstrip(".") or _describe(hints[name]))
            + " (required, it has no default)",
            "nothing",
        )
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING
    ]
    if missing:  # all of them at once, one line each: an empty file is fixed in one go
        raise ConfigError("\n".join(str(error) for error in missing))
    values = {}
    for name, f in fields.items():
        field_key = _join(key, name)
        if name not in data:
            continue
        value = _convert(hints[name], data[name], field_key, src)
        for i, item in enumerate(value if f.metadata.get("items") else ()):
            if (expected := f.metadata["items"](item)) is not None:
                raise src.bad(f"{field_key}[{i}]", expected, item)
        if f.metadata.get("check") and (expected := f.metadata["check"](value)) is not None:
            raise src.bad(field_key, expected, value)
        values[name] = value
    return cls(**values)


def _convert(tp: Any, value: Any, key: str, src: _Source) -> Any:
    """Type-check `value` against annotation `tp`, turning lists into tuples."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key, src)
    if origin is tuple:
        if not isinstance(value, list):
            raise src.bad(key, _describe(tp), value)
        return tuple(_convert(args[0], v, f"{key}[{i}]", src) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not value:
            raise src.bad(key, "a non-empty " + _describe(tp).removeprefix("a "), value)
        return {k: _convert(args[1], v, _join(key, k), src) for k, v in value.items()}
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise src.bad(key, _describe(tp, value), value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: is_number and isinstance(value, int),
        float: is_number and math.isfinite(value),
    }[tp]
    if not ok:
        raise src.bad(key, _describe(tp, value), value)
    return value


def _read_text(path: Path | str) -> str:
    try:
        # utf-8-sig: a leading byte-order mark (Windows editors write one) is not content;
        # Terraform reads such a tfvars file too.
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: expected an existing file, got no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: expected a readable UTF-8 text file, got {exc}") from None


# --------------------------------------------------------------------------- tfvars


_HCL_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True,  # values, not source text: "abc" rather than '"abc"'
    with_comments=False,
    explicit_blocks=False,
    # python-hcl2 turns a heredoc into an escaped string but keeps the escapes (\") and drops
    # the final newline, so heredocs stay source text for _evaluate_heredocs().
    preserve_heredocs=True,
    preserve_scientific_notation=False,  # 1e3 becomes 1000.0, not the string "${1e3}"
)


def parse_tfvars(path: Path | str) -> dict[str, Any]:
    """The assignments of a .tfvars file as plain Python values (lists, dicts, str, ...)."""
    return _parse_hcl(_read_text(path), path)


def _parse_hcl(text: str, path: Path | str) -> dict[str, Any]:
    """parse_tfvars() of `text`; errors name it as `path`."""
    try:
        tree = hcl2.parses_to_tree(text)
    except lark.exceptions.UnexpectedInput as exc:
        token = getattr(exc, "token", None) or getattr(exc, "char", None) or ""
        got = repr(str(token).strip()) if str(token).strip() else "end of line or file"
        lines = text.splitlines()
        near = lines[exc.line - 1].strip() if 0 < exc.line <= len(lines) else ""
        raise ConfigError(
            f"{path}: line {exc.line}, column {exc.column}: expected valid HCL "
            f"('name = value' assignments), got {got} in {near!r}"
        ) from None
    _check_assignments(tree, path)
    try:
        values = hcl2.serialize(hcl2.transform(tree), serialization_options=_HCL_OPTIONS)
    except (lark.exceptions.LarkError, RuntimeError) as exc:
        raise ConfigError(f"{path}: expected valid HCL, got {exc}".replace("\n", " ")) from None
    return _evaluate_heredocs(values)


_HEREDOC = re.compile(r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n(.*\n)?[ \t]*\2", re.DOTALL)


def _evaluate_heredocs(value: Any) -> Any:
    """Terraform's value of every heredoc: its lines, each ending in a newline, and for <<-
    without their common indentation."""
    if isinstance(value, dict):
        return {k: _evaluate_heredocs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_evaluate_heredocs(v) for v in value]
    match = _HEREDOC.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return value
    lines = (match.group(3) or "").splitlines(keepends=True)
    indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
    trim = min(indents, default=0) if match.group(1) else 0
    return "".join(line[trim:] for line in lines)


# Parse-tree nodes of literal values. Anything else (a bare word, reference, function call,
# operator, interpolation) is an expression: Terraform refuses those in tfvars, and
# python-hcl2 would return a bare word such as eu-west-1 as if it were the string "eu-west-1".
_LITERAL_NODES = {
    "expr_term",
    "string",
    "string_part",
    "int_lit",
    "float_lit",
    "literal_value",
    "tuple",
    "object",
    "object_elem",
    "object_elem_key",
    "heredoc_template",
    "heredoc_template_trim",
    "new_line_or_comment",
}


def _negative_number(node: lark.Tree) -> bool:
    """-1 or -1.5: Terraform's unary minus on a number literal, a number in tfvars too."""
    operand = node.children[-1]
    return (
        node.data == "unary_op"
        and str(node.children[0]) == "-"
        and isinstance(operand, lark.Tree)
        and operand.data == "expr_term"
        and len(operand.children) == 1
        and isinstance(operand.children[0], lark.Tree)
        and operand.children[0].data in ("int_lit", "float_lit")
    )


def _non_literal(node: Any, in_key: bool = False) -> lark.Tree | None:
    """The first part of a value that is not a literal; object keys may be bare names."""
    if not isinstance(node, lark.Tree) or (in_key and node.data == "identifier"):
        return None
    if _negative_number(node):
        return None
    if node.data not in _LITERAL_NODES:
        return node
    in_key = in_key or node.data == "object_elem_key"
    return next(filter(None, (_non_literal(child, in_key) for child in node.children)), None)


def _check_assignments(tree: lark.Tree, path: Path | str) -> None:
    """Only top-level `name = <literal>` lines, each name once: python-hcl2 silently keeps the
    last of two assignments and accepts two on one line, where Terraform rejects both."""
    seen: dict[str, int] = {}
    last_line = 0
    for node in tree.children[0].children:
        if not isinstance(node, lark.Tree) or node.data not in ("attribute", "block"):
            continue
        token = node.children[0].children[0]
        name, line = str(token), token.line
        where = f"{path}: line {line}: variable '{name}'"
        if node.data == "block":
            raise ConfigError(f"{where}: expected 'name = value', got a block 'name {{ ... }}'")
        if name in seen:
            first = seen[name]
            raise ConfigError(
                f"{where}: expected one assignment, got a second (the first is on line {first})"
            )
        if line == last_line:
            raise ConfigError(f"{where}: expected one assignment per line, got two on this line")
        seen[name], last_line = line, line
        if (expression := _non_literal(node.children[-1])) is not None:
            text = "".join(expression.scan_values(lambda v: isinstance(v, lark.Token)))
            expected = "a literal value (quote strings; tfvars cannot hold expressions)"
            raise ConfigError(f"{where}: expected {expected}, got the expression {text}")


def load_env_config(path: Path | str) -> EnvConfig:
    """Read and validate env_files/<env>.tfvars, with TF_VAR_<name> environment values for
    variables the file does not set (see environment_values)."""
    src = _Source(path, tfvars=True)
    values = parse_tfvars(path)
    from_env = environment_values(values)
    try:
        env = _build(EnvConfig, {**from_env, **values}, "", src)
        _check_env(env, src, Path(path).name)
    except ConfigError as error:
        names = [name for name in from_env if f"variable '{name}" in str(error)]
        if not names:
            raise
        raise ConfigError(
            f"{error} (the value is TF_VAR_{names[0]} from the environment, which Terraform "
            f"uses as {Path(path).name} does not set {names[0]})"
        ) from None
    return env


def environment_values(file_values: dict[str, Any]) -> dict[str, Any]:
    """The TF_VAR_<name> environment values Terraform uses, as Python values.

    Terraform reads variables from the environment first and from -var-file (how CI runs it)
    last, later sources overriding earlier ones ("Variable definition precedence",
    developer.hashicorp.com/terraform/language/values/variables). So a TF_VAR_ value counts
    only for a variable the tfvars file does not set, here as in Terraform; a string
    variable's value is taken literally, any other type's is parsed as HCL ("Environment
    Variables: TF_VAR_name", developer.hashicorp.com/terraform/cli/config/environment-variables).
    """
    hints = typing.get_type_hints(EnvConfig)
    values = {}
    for f in dataclasses.fields(EnvConfig):
        raw = os.environ.get(f"TF_VAR_{f.name}")
        if raw is None or f.name in file_values:
            continue
        if hints[f.name] is str:
            values[f.name] = raw
        else:
            where = f"environment variable TF_VAR_{f.name}"
            values[f.name] = _parse_hcl(f"{f.name} = {raw}\n", where)[f.name]
    return values


def env_file_path(environment: str) -> Path:
    """Path of the tfvars file of an environment (dev, staging or prod)."""
    return ENV_FILES_DIR / f"{environment}_env.tfvars"


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


# Settings prod must have: (variable, required value, why).
_PROD_RULES = (
    ("recreate_pipelines", False, "recreating drops the pipelines' execution history"),
    ("upload_training_data", False, "sample data must not train a production model"),
    ("upload_inference_data", False, "sample batches must not be scored as production data"),
    (
        "fail_on_data_quality_violation",
        True,
        "a batch that breaks the training baseline must not look like a good run",
    ),
)


def _check_env(env: EnvConfig, src: _Source, file_name: str) -> None:
    """Checks across variables (each one is mirrored by a validation block in variables.tf)."""
    kms = env.kms_key.split(":")
    if kms[3] != env.region:
        expected = f"a key in region {env.region!r} (the value of region)"
        raise src.bad("kms_key", expected, env.kms_key)
    if kms[4] != env.account_id:
        expected = f"a key in account {env.account_id} (the account of role_arn)"
        raise src.bad("kms_key", expected, env.kms_key)
    if kms[1] != env.partition:
        expected = f"a key in partition {env.partition!r} (the partition of role_arn)"
        raise src.bad("kms_key", expected, env.kms_key)

    if bool(env.subnet_id) != bool(env.sg_id):
        empty = "sg_id" if env.subnet_id else "subnet_id"
        other = "subnet_id" if env.subnet_id else "sg_id"
        expected = f"at least one id because {other} is set (both empty = no VPC)"
        raise src.bad(empty, expected, getattr(env, empty))

    if env.pipeline_train == env.pipeline_inf:
        raise src.bad("pipeline_train", "a name different from pipeline_inf", env.pipeline_train)
    for other in ("pipeline_train", "pipeline_inf"):
        if env.pipeline_trainwhpo == getattr(env, other):
            expected = f"a name different from {other}"
            raise src.bad("pipeline_trainwhpo", expected, env.pipeline_trainwhpo)

    for name in ("bucket_train_prefix", "bucket_inf_prefix"):
        value = getattr(env, name)
        if _nested(value, env.bucket_prefix):
            expected = f"a prefix relative to bucket_prefix (drop {env.bucket_prefix!r})"
            raise src.bad(name, expected, value)
        if _nested(value, ARTIFACTS_PREFIX):
            expected = f"a prefix outside {ARTIFACTS_PREFIX!r}, where the pipelines write outputs"
            raise src.bad(name, expected, value)
    if _nested(env.bucket_inf_prefix, env.bucket_train_prefix):
        # Overlapping prefixes would make new batches look like new training data and vice versa.
        expected = "a prefix neither inside nor around bucket_train_prefix"
        raise src.bad("bucket_inf_prefix", expected, env.bucket_inf_prefix)

    pairs = [(c.step_name, c.step_status) for c in env.custom_notification_config]
    for i, pair in enumerate(pairs):
        if pair in pairs[:i]:
            expected = "one entry per step_name and step_status"
            raise src.bad(f"custom_notification_config[{i}]", expected, _plain(pair))

    if env.environment == "prod":
        for name, wanted, why in _PROD_RULES:
            if getattr(env, name) != wanted:
                expected = f"{str(wanted).lower()} in prod: {why}"
                raise src.bad(name, expected, getattr(env, name))

    named = file_name.removesuffix("_env.tfvars")
    if named in ENVIRONMENTS and env.environment != named:
        expected = f"{named!r} (the file is named {file_name})"
        raise src.bad("environment", expected, env.environment)


# --------------------------------------------------------------------------- pipelines.yaml


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """The one SageMaker framework image used for processing, training and serving."""

    framework: Literal["xgboost"] = _field()
    framework_version: str = _field(
        lambda v: None if re.fullmatch(r"\d+\.\d+-\d+", v) else "a version such as '3.0-5'"
    )
    py_version: Literal["py3"] = _field()


_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")


@dataclass(frozen=True, kw_only=True)
class ComputeSettings:
    """What every job type has: instances and a run-time limit."""

    instance_type: str = _field(
        lambda v: None if _INSTANCE_TYPE.fullmatch(v) else "an instance type such as ml.m5.large"
    )
    instance_count: int = _field(_between(1))
    max_runtime_seconds: int = _field(_between(1, 432000))


@dataclass(frozen=True, kw_only=True)
class ProcessingSettings(ComputeSettings):
    volume_size_gb: int = _field(_between(1, 16384))


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """XGBoost hyperparameters, passed to scripts/train.py as --name value flags."""

    num_round: int = _field(_between(1))
    max_depth: int = _field(_between(1))
    eta: float = _field(_between(0, 1, open_low=True))
    subsample: float = _field(_between(0, 1, open_low=True))
    colsample_bytree: float = _field(_between(0, 1, open_low=True))
    min_child_weight: float = _field(_between(0))
    gamma: float = _field(_between(0))
    # Regression objectives only: the evaluation and model-quality checks compute MSE.
    objective: Literal[
        "reg:squarederror",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:squaredlogerror",
        "reg:gamma",
        "reg:tweedie",
        "count:poisson",
    ] = _field()


@dataclass(frozen=True, kw_only=True)
class TrainingSettings(ProcessingSettings):
    hyperparameters: Hyperparameters = _field()


@dataclass(frozen=True, kw_only=True)
class ParameterRange:
    """Search range of one hyperparameter in the tuning job."""

    type: Literal["continuous", "integer"] = _field()
    min: float = _field()
    max: float = _field()
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = _field(default="Auto")


@dataclass(frozen=True, kw_only=True)
class TuningSettings:
    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"] = _field()
    objective_type: Literal["Minimize", "Maximize"] = _field()
    max_jobs: int = _field(_between(1))
    max_parallel_jobs: int = _field(_between(1))
    early_stopping: Literal["Off", "Auto"] = _field()
    ranges: dict[str, ParameterRange] = _field()


@dataclass(frozen=True, kw_only=True)
class PreprocessingSettings:
    target: str = _field(
        lambda v: None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) else "a column name"
    )
    test_fraction: float = _field(_between(0, 1, open_low=True, open_high=True))
    validation_fraction: float = _field(_between(0, 1, open_low=True, open_high=True))
    seed: int = _field(_between(0, 2**32 - 1))


@dataclass(frozen=True, kw_only=True)
class TransformSettings(ComputeSettings):
    max_payload_mb: int = _field(_between(1, 100))
    max_concurrent_transforms: int = _field(_between(1))
    batch_strategy: Literal["MultiRecord", "SingleRecord"] = _field()


@dataclass(frozen=True, kw_only=True)
class DataQualitySettings:
    """Thresholds of the data-quality check, as in Model Monitor's constraints, and how many
    instances profile the data (> 1: sharded profiling steps, then a merge step)."""

    comparison_threshold: float = _field(_between(0, 1, open_low=True))
    datatype_check_threshold: float = _field(_between(0, 1, open_low=True))
    domain_content_threshold: float = _field(_between(0, 1, open_low=True))
    # Robust drift verdict (scripts/drift_tests.py): family-wise false-alarm rate per batch,
    # smallest mean shift in baseline sd that alarms, rows below which it is "inconclusive".
    drift_alpha: float = _field(_between(0, 1, open_low=True, open_high=True), default=0.05)
    drift_min_shift_sd: float = _field(_between(0), default=0.1)
    drift_min_rows: int = _field(_between(1), default=50)
    instance_count: int = _field(_between(1, 100), default=1)


@dataclass(frozen=True, kw_only=True)
class RegistrationSettings:
    """How a new model version is registered next to the champion (issue 10 point 5)."""

    # True: a challenger whose test MSE is not below the champion's is registered Rejected.
    reject_if_not_better: bool = _field(default=False)


@dataclass(frozen=True, kw_only=True)
class ModelQualitySettings:
    """When a batch's model-quality result may start retraining (README "Retraining")."""

    min_labelled_records: int = _field(_between(1), default=30)
    retrain_cooldown_minutes: int = _field(_between(0), default=360)


@dataclass(frozen=True, kw_only=True)
class RetrainingSettings:
    """What the training pipelines train on besides the training data (README "Batches,
    predictions and retraining")."""

    # Labelled batches whose labels arrived within this many days join the training data;
    # 0: the training data only.
    labelled_batches_days: int = _field(_between(0, 3650), default=30)


@dataclass(frozen=True, kw_only=True)
class ExplanationSettings:
    """Explanations of the inference pipeline (README "Explanations")."""

    # True: ExplainBatch also writes every record's attributions next to its predictions.
    per_record: bool = _field(default=False)


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """How a batch's records are identified (README "Batches, predictions and retraining")."""

    # "" (default): record_id is the data line in the batch file (1 = first after the header).
    id_column: str = _field(
        lambda v: None if re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", v) else "a column name or ''",
        default="",
    )


@dataclass(frozen=True, kw_only=True)
class CachingSettings:
    enabled: bool = _field()
    expire_after: str = _field(_iso_duration)


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Retry policy of every job step for throttling and capacity errors."""

    max_attempts: int = _field(_between(1, 20))
    interval_seconds: int = _field(_between(1))
    backoff_rate: float = _field(_between(1))


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Everything in pipelines.yaml."""

    images: ImageSettings = _field()
    processing: ProcessingSettings = _field()
    training: TrainingSettings = _field()
    tuning: TuningSettings = _field()
    preprocessing: PreprocessingSettings = _field()
    transform: TransformSettings = _field()
    data_quality: DataQualitySettings = _field()
    model_quality: ModelQualitySettings = _field(default=ModelQualitySettings())
    explanations: ExplanationSettings = _field(default=ExplanationSettings())
    registration: RegistrationSettings = _field(default=RegistrationSettings())
    batch: BatchSettings = _field(default=BatchSettings())
    retraining: RetrainingSettings = _field(default=RetrainingSettings())
    caching: CachingSettings = _field()
    retry: RetrySettings = _field()


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently overwrite."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_pipeline_settings(path: Path | str = DEFAULT_SETTINGS_FILE) -> PipelineSettings:
    """Read and validate pipelines.yaml."""
    text = _read_text(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"{path}: line {mark.line + 1}, column {mark.column + 1}: expected valid YAML, "
            f"got {exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: expected valid YAML, got {exc}".replace("\n", " ")) from None
    src = _Source(path, tfvars=False)
    settings = _build(PipelineSettings, data, "", src)
    _check_settings(settings, src)
    return settings


def _check_settings(s: PipelineSettings, src: _Source) -> None:
    """Checks across keys of pipelines.yaml."""
    p = s.preprocessing
    if p.test_fraction + p.validation_fraction >= 1:
        expected = f"test_fraction + validation_fraction < 1 (test_fraction is {p.test_fraction})"
        raise src.bad("preprocessing.validation_fraction", expected, p.validation_fraction)

    t = s.transform
    if t.max_payload_mb * t.max_concurrent_transforms > 100:
        expected = "max_payload_mb * max_concurrent_transforms <= 100 MB (SageMaker's limit)"
        raise src.bad("transform.max_concurrent_transforms", expected, t.max_concurrent_transforms)

    tuning = s.tuning
    if tuning.max_parallel_jobs > tuning.max_jobs:
        expected = f"at most max_jobs ({tuning.max_jobs})"
        raise src.bad("tuning.max_parallel_jobs", expected, tuning.max_parallel_jobs)
    if tuning.strategy == "Grid":
        # SageMaker grid search takes categorical ranges only; these are continuous or integer.
        raise src.bad("tuning.strategy", "Bayesian, Random or Hyperband", tuning.strategy)
    if tuning.strategy == "Hyperband" and tuning.early_stopping != "Off":
        expected = "'Off' with strategy Hyperband (it stops jobs early itself)"
        raise src.bad("tuning.early_stopping", expected, tuning.early_stopping)

    hyperparameters = {f.name: f for f in dataclasses.fields(Hyperparameters)}
    hint_types = typing.get_type_hints(Hyperparameters)
    for name, r in tuning.ranges.items():
        key = f"tuning.ranges.{name}"
        if name not in hyperparameters or hint_types[name] not in (int, float):
            numeric = [n for n, tp in hint_types.items() if tp in (int, float)]
            close = difflib.get_close_matches(str(name), numeric, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise src.error(key, "a numeric hyperparameter of training" + hint, repr(name))
        is_int = hint_types[name] is int
        if (r.type == "integer") != is_int:
            expected = f"type {'integer' if is_int else 'continuous'} for this hyperparameter"
            raise src.bad(f"{key}.type", expected, r.type)
        for bound in ("min", "max"):
            value = getattr(r, bound)
            expected = hyperparameters[name].metadata["check"](value)
            if r.type == "integer" and not isinstance(value, int):
                expected = "an integer"
            if expected is not None:
                raise src.bad(f"{key}.{bound}", expected, value)
        if r.min >= r.max:
            raise src.bad(f"{key}.max", f"a value > min ({r.min})", r.max)
        if r.scaling == "Logarithmic" and r.min <= 0:
            raise src.bad(f"{key}.min", "a value > 0 with Logarithmic scaling", r.min)
        if r.scaling == "ReverseLogarithmic" and (r.type == "integer" or r.max >= 1):
            expected = "a continuous range within [0, 1) with ReverseLogarithmic scaling"
            raise src.bad(f"{key}.scaling", expected, r.scaling)


# --------------------------------------------------------------------------- tags.json


def load_tags(path: Path | str = DEFAULT_TAGS_FILE) -> dict[str, str]:
    """Read and validate tags.json: a flat JSON object of string keys to string values."""
    text = _read_text(path)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if dup := next((k for i, k in enumerate(keys) if k in keys[:i]), None):
            raise ConfigError(f"{path}: tag {dup!r}: expected each key once, got it twice")
        return dict(pairs)

    try:
        tags = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}, column {exc.colno}: expected valid JSON, got {exc.msg}"
        ) from None
    if not isinstance(tags, dict):
        raise ConfigError(f"{path}: expected a JSON object of tags, got {_show(tags)}")
    if len(tags) > 50:
        raise ConfigError(f"{path}: expected at most 50 tags (AWS's limit), got {len(tags)}")

    def allowed(text: str) -> bool:
        return all(ch.isalnum() or ch in " _.:/=+-@" for ch in text)

    for key, value in tags.items():
        where = f"{path}: tag {key!r}"
        if not 1 <= len(key) <= 128 or not allowed(key):
            expected = "a key of 1-128 letters, digits, spaces or _.:/=+-@"
            raise ConfigError(f"{where}: expected {expected}, got {key!r}")
        if key.lower().startswith("aws:"):
            expected = "a key not starting with 'aws:' (reserved by AWS)"
            raise ConfigError(f"{where}: expected {expected}, got {key!r}")
        if not isinstance(value, str) or len(value) > 256 or not allowed(value):
            expected = "a string value of 0-256 letters, digits, spaces or _.:/=+-@"
            raise ConfigError(f"{where}: expected {expected}, got {_show(value)}")
    return tags


# --------------------------------------------------------------------------- everything


@dataclass(frozen=True)
class ProjectConfig:
    env: EnvConfig
    settings: PipelineSettings
    tags: dict[str, str]


def load_config(
    env_file: Path | str,
    settings_file: Path | str = DEFAULT_SETTINGS_FILE,
    tags_file: Path | str = DEFAULT_TAGS_FILE,
) -> ProjectConfig:
    """Load and validate the env file, pipelines.yaml and tags.json together."""
    return ProjectConfig(
        env=load_env_config(env_file),
        settings=load_pipeline_settings(settings_file),
        tags=load_tags(tags_file),
    )
