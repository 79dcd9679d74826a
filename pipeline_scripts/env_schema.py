"""The variables of env_files/<env>.tfvars: the part of the configuration a fork edits.

``EnvConfig`` is the ONE schema of the variables: name, type, default, description and checks.
``make generate`` (pipeline_scripts/config_generate.py) writes variables.tf and the README's
variables table from it and checks the shipped tfvars files; tests/test_config_generated.py
fails when either file is stale. A check given as a Check (config_checks.py) becomes a
validation block too; rules across variables are written once in Python (check_env) and once
in HCL (the field's `terraform=`), next to each other, and tests feed both the same files.

To add a variable: add a field here, run `make generate`, set it in env_files/*.tfvars.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline_scripts.config_checks import (
    Check,
    all_of,
    between,
    distinct,
    empty_or,
    field,
    hcl_list,
    hcl_string,
    matches,
    max_length,
    non_blank,
    non_empty,
    one_of,
    var,
)
from pipeline_scripts.config_reader import Source, plain, terraform_jsonencode

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


def _pattern(name: str, what: str) -> Check:
    return matches(PATTERNS[name], what)


def _bucket_name_test(name: str) -> str | None:
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


_bucket_name = Check(
    _bucket_name_test,
    lambda v: [
        (
            f'can(regex({hcl_string(PATTERNS["bucket"])}, {v})) && !strcontains({v}, "..")',
            "to be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting "
            "and ending alphanumeric, without '..'",
        ),
        (
            f"!can(regex({hcl_string(PATTERNS['ipv4'])}, {v}))",
            "not to be formatted as an IP address",
        ),
        (
            f"alltrue(concat([for p in {hcl_list(BUCKET_RESERVED_PREFIXES)} : "
            f"!startswith({v}, p)], [for s in {hcl_list(BUCKET_RESERVED_SUFFIXES)} : "
            f"!endswith({v}, s)]))",
            "without a prefix or suffix S3 reserves ("
            + ", ".join(BUCKET_RESERVED_PREFIXES + BUCKET_RESERVED_SUFFIXES)
            + ")",
        ),
    ],
)


def _s3_prefix_test(prefix: str) -> str | None:
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


_s3_prefix = Check(
    _s3_prefix_test,
    lambda v: [
        (
            f"can(regex({hcl_string(PATTERNS['prefix'])}, {v})) && "
            f'length(setintersection(split("/", {v}), [".", ".."])) == 0',
            "to be an S3 key prefix inside the bucket: '/'-separated segments of letters, "
            "digits, '_', '.', '=' or '-', without s3://, a leading or trailing '/' or empty "
            "segments",
        )
    ],
)


def _custom_notification_size_test(value: tuple) -> str | None:
    size = len(terraform_jsonencode(plain(value)).encode())
    if size <= CUSTOM_NOTIFICATION_MAX_BYTES:
        return None
    return (
        f"at most {CUSTOM_NOTIFICATION_MAX_BYTES} bytes as JSON (it is {size}): it is passed in "
        "the notifier's environment, which Lambda limits to 4 KB"
    )


_custom_notification_size = Check(
    _custom_notification_size_test,
    # Terraform has no byte length; base64 has one character per 6 bits, so 4 characters per
    # 3 bytes: 4096 base64 characters are 3072 bytes.
    lambda v: [
        (
            f"length(base64encode(jsonencode({v}))) <= {CUSTOM_NOTIFICATION_MAX_BYTES * 4 // 3}",
            f"of at most {CUSTOM_NOTIFICATION_MAX_BYTES} bytes as JSON: it is passed in the "
            "notifier's environment, which Lambda limits to 4 KB",
        )
    ],
)

_reserved_concurrency = Check(
    lambda value: (
        None
        if value >= 0 and float(value).is_integer()
        else "0 (none reserved) or a whole number >= 1"
    ),
    lambda v: [
        (f"{v} >= 0 && floor({v}) == {v}", "to be 0 (none reserved) or a whole number >= 1")
    ],
)


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _hcl_nested(a: str, b: str) -> str:
    """_nested() in HCL, of two HCL expressions."""
    return f'({a} == {b} || startswith({a}, "${{{b}}}/") || startswith({b}, "${{{a}}}/"))'


def _prefix_rules(name: str) -> tuple[tuple[str, str], ...]:
    """variables.tf's side of check_env's rules on a data prefix."""
    artifacts = hcl_string(ARTIFACTS_PREFIX)
    return (
        (
            f"!{_hcl_nested(f'var.{name}', 'var.bucket_prefix')}",
            "relative to bucket_prefix: do not repeat bucket_prefix in it",
        ),
        (
            f'!(var.{name} == {artifacts} || startswith(var.{name}, "{ARTIFACTS_PREFIX}/"))',
            f"outside '{ARTIFACTS_PREFIX}', where the pipelines write their outputs",
        ),
    )


@dataclass(frozen=True, kw_only=True)
class CustomNotification:
    """A custom message the notifier adds for one pipeline step reaching one status."""

    step_name: str = field(_pattern("step_name", "a pipeline step name"))
    step_status: str = field(one_of(*STEP_STATUSES))
    step_custom_message: str = field(non_blank)


@dataclass(frozen=True, kw_only=True)
class EnvConfig:
    """The variables of env_files/<env>.tfvars; variables.tf is generated from this class."""

    region: str = var(
        "AWS region the pipelines, jobs and resources run in, e.g. eu-west-1.",
        _pattern("region", "an AWS region name such as eu-west-1"),
    )
    environment: str = var("Deployment environment: dev, staging or prod.", one_of(*ENVIRONMENTS))
    bucket_name: str = var(
        "Name of the existing S3 bucket that holds the data and the pipeline artefacts.",
        _bucket_name,
    )
    bucket_prefix: str = var(
        "S3 prefix inside bucket_name for all data and artefacts of this project, "
        "e.g. pipeline_shared/batch-scoring.",
        _s3_prefix,
    )
    bucket_train_prefix: str = var(
        "Prefix of the training data, relative to bucket_prefix, e.g. training/data/raw.",
        _s3_prefix,
        terraform=_prefix_rules("bucket_train_prefix"),
    )
    bucket_inf_prefix: str = var(
        "Prefix of the batch-inference data, relative to bucket_prefix, "
        "e.g. batch-scoring/data/raw.",
        _s3_prefix,
        terraform=(
            *_prefix_rules("bucket_inf_prefix"),
            (
                "!" + _hcl_nested("var.bucket_inf_prefix", "var.bucket_train_prefix"),
                "neither inside nor around bucket_train_prefix",
            ),
        ),
    )
    notification_function_name: str = var(
        "Name of the Lambda function that turns pipeline status changes into notifications.",
        _pattern("lambda", "a Lambda function name"),
        default="pipeline-notification-lambda",
    )
    custom_notification_config: tuple[CustomNotification, ...] = var(
        "Custom notification messages, each for one pipeline step (step_name) reaching one "
        "status (step_status: Starting, Executing, Stopping, Stopped, Failed or Succeeded).",
        _custom_notification_size,
        default=(),
        terraform=(
            (
                "length(distinct([for c in var.custom_notification_config : "
                '"${c.step_name}/${c.step_status}"])) == length(var.custom_notification_config)',
                "to have one entry per step_name and step_status",
            ),
        ),
    )
    email_recipient: tuple[str, ...] = var(
        "Email addresses that receive the pipeline notifications (at least one).",
        all_of(non_empty, distinct),
        items=_pattern("email", "an email address"),
    )
    pipeline_inf: str = var(
        "Name of the batch-inference SageMaker pipeline.",
        _pattern("pipeline", "a lower-case SageMaker pipeline name"),
        default="batch-inference-pipeline",
    )
    pipeline_train: str = var(
        "Name of the training SageMaker pipeline.",
        _pattern("pipeline", "a lower-case SageMaker pipeline name"),
        default="training-pipeline",
        terraform=(("var.pipeline_train != var.pipeline_inf", "to differ from pipeline_inf"),),
    )
    pipeline_trainwhpo: str = var(
        "Name of the training-with-hyperparameter-tuning SageMaker pipeline.",
        _pattern("pipeline", "a lower-case SageMaker pipeline name"),
        default="training-hpo-pipeline",
        terraform=(
            (
                "var.pipeline_trainwhpo != var.pipeline_train && "
                "var.pipeline_trainwhpo != var.pipeline_inf",
                "to differ from pipeline_train and pipeline_inf",
            ),
        ),
    )
    recreate_pipelines: bool = var(
        "Delete and recreate existing pipelines on upsert instead of updating them in place.",
        default=False,
    )
    model_package_group_name: str = var(
        "Name of the SageMaker model package group (model registry) the models are registered in.",
        all_of(
            _pattern("model_package_group", "a model package group name"),
            max_length(
                NAME_PREFIX_MAX_LENGTH,
                "the names derived from it, such as <name>-model-package-approved (an "
                "EventBridge rule, at most 64 characters), must fit",
            ),
        ),
    )
    accuracy_mse_threshold: float = var(
        "Maximum mean squared error a model may have: a worse model is not registered, and a "
        "batch scored worse triggers retraining.",
        between(0, open_low=True),
        default=6.0,
    )
    role_arn: str = var(
        "ARN of the IAM role the SageMaker pipelines and their jobs run as.",
        _pattern("role_arn", "an IAM role ARN arn:aws:iam::<account>:role/<name>"),
    )
    kms_key: str = var(
        "ARN of the KMS key (key or alias ARN, in region and in the account of role_arn) that "
        "encrypts S3 outputs, job volumes and the pipelines.",
        _pattern("kms_key", "a KMS key ARN arn:aws:kms:<region>:<account>:key/<id> or alias ARN"),
        terraform=(
            (
                'try(split(":", var.kms_key)[3], "") == var.region',
                "to be a key in region (the value of the region variable)",
            ),
            (
                'try(split(":", var.kms_key)[4], "") == try(split(":", var.role_arn)[4], "") && '
                'try(split(":", var.kms_key)[1], "") == try(split(":", var.role_arn)[1], "")',
                "to be a key in the account and partition of role_arn",
            ),
        ),
    )
    subnet_id: tuple[str, ...] = var(
        "Subnet ids the jobs and the Lambda functions run in; empty runs them outside a VPC "
        "(set with sg_id).",
        distinct,
        items=_pattern("subnet", "a subnet id"),
        default=(),
    )
    sg_id: tuple[str, ...] = var(
        "Security group ids of the jobs and the Lambda functions; empty runs them outside a "
        "VPC (set with subnet_id).",
        distinct,
        items=_pattern("security_group", "a security group id"),
        default=(),
        # On sg_id only: validations of two variables referring to each other form a cycle.
        terraform=(
            (
                "(length(var.subnet_id) == 0) == (length(var.sg_id) == 0)",
                "and subnet_id to be both empty (no VPC) or both set",
            ),
        ),
    )
    upload_training_data: bool = var(
        "Upload the sample training data in data/ to the training data prefix.", default=True
    )
    upload_inference_data: bool = var(
        "Upload the sample batch-inference data in data/ to the inference data prefix.",
        default=False,
    )
    user_id: str = var(
        "Id of the SageMaker user, e.g. a12345, to tell the pipelines and jobs of users apart.",
        _pattern("user_id", "a user id such as a12345"),
    )
    fail_on_data_quality_violation: bool = var(
        "Fail the batch-inference pipeline execution on data-quality violations "
        "(violations are always reported).",
        default=True,
    )
    notify_execution_statuses: tuple[str, ...] = var(
        "Pipeline execution statuses that send an e-mail: any of Executing, Stopping, Stopped, "
        "Failed, Succeeded.",
        distinct,
        items=one_of(*EXECUTION_STATUSES),
        default=("Succeeded", "Failed", "Stopped"),
    )
    notify_step_statuses: tuple[str, ...] = var(
        "Pipeline step statuses that send an e-mail: any of Starting, Executing, Stopping, "
        "Stopped, Failed, Succeeded (custom_notification_config entries are sent whatever this "
        "says).",
        distinct,
        items=one_of(*STEP_STATUSES),
        default=("Failed",),
    )
    inference_schedule_expression: str = var(
        "EventBridge schedule that also starts the batch-inference pipeline, e.g. "
        "cron(0 6 * * ? *) or rate(1 day); empty for no schedule.",
        empty_or(_pattern("schedule", "an EventBridge schedule such as rate(1 day)")),
        default="",
    )
    permissions_boundary: str = var(
        "ARN of an IAM policy set as the permissions boundary of every IAM role this "
        "configuration creates; empty for none.",
        empty_or(_pattern("policy_arn", "an IAM policy ARN arn:aws:iam::<account>:policy/<name>")),
        default="",
    )
    lambda_reserved_concurrency: float = var(
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


# Settings prod must have: (variable, required value, why).
PROD_RULES = (
    ("recreate_pipelines", False, "recreating drops the pipelines' execution history"),
    ("upload_training_data", False, "sample data must not train a production model"),
    ("upload_inference_data", False, "sample batches must not be scored as production data"),
    (
        "fail_on_data_quality_violation",
        True,
        "a batch that breaks the training baseline must not look like a good run",
    ),
)


def check_env(env: EnvConfig, src: Source, file_name: str) -> None:
    """Checks across variables. Each is mirrored in HCL by a `terraform=` rule above (or, for
    PROD_RULES, by config_generate.py), except the file-name rule Terraform cannot see."""
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
            raise src.bad(f"custom_notification_config[{i}]", expected, plain(pair))

    if env.environment == "prod":
        for name, wanted, why in PROD_RULES:
            if getattr(env, name) != wanted:
                expected = f"{str(wanted).lower()} in prod: {why}"
                raise src.bad(name, expected, getattr(env, name))

    named = file_name.removesuffix("_env.tfvars")
    if named in ENVIRONMENTS and env.environment != named:
        expected = f"{named!r} (the file is named {file_name})"
        raise src.bad("environment", expected, env.environment)
