"""Configuration: env files, variables.tf, pipelines.yaml and tags.json.

Bad inputs are modified copies of the shipped files, the way a user would get them wrong. Where
Terraform is installed, the same files are planned against variables.tf (`terraform plan`, or
for many files at once one `terraform test` run), so the Python checks and the Terraform
validation blocks are shown to agree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

from pipeline_scripts import config
from pipeline_scripts.config import (
    ConfigError,
    load_config,
    load_env_config,
    load_pipeline_settings,
    load_tags,
    parse_tfvars,
    variable_schema,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO_ROOT / "env_files").glob("*.tfvars"))
DEV = REPO_ROOT / "env_files" / "dev_env.tfvars"
PROD = REPO_ROOT / "env_files" / "prod_env.tfvars"
VARIABLES_TF = REPO_ROOT / "variables.tf"
SETTINGS = REPO_ROOT / "pipeline_scripts" / "pipelines.yaml"
TAGS = REPO_ROOT / "tags.json"
TERRAFORM = shutil.which("terraform")


def raises_config_error(call, *fragments: str) -> str:
    """Run call, expect ONE-line ConfigError containing every fragment; return the message."""
    with pytest.raises(ConfigError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def edited_env(
    tmp_path: Path,
    values: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
    append: str = "",
    source: Path = DEV,
) -> Path:
    """Copy of an env file with assignments replaced by raw HCL (`values`) or removed (`drop`)."""
    values = values or {}
    out, skipping, depth = [], False, 0
    for line in source.read_text().splitlines():
        match = re.match(r"(\w+)\s*=", line)
        if not skipping and match and match.group(1) in {*values, *drop}:
            skipping, depth = True, 0
        if skipping:  # up to the line that closes a multi-line value
            depth += line.count("[") + line.count("{") - line.count("]") - line.count("}")
            skipping = depth > 0
            continue
        out.append(line)
    out += [f"{name} = {value}" for name, value in values.items()]
    path = tmp_path / source.name
    path.write_text("\n".join(out) + "\n" + append)
    return path


def run_terraform(work: Path, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """`terraform <args>` in `work`, beside a copy of variables.tf alone: offline, no CLI config."""
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(VARIABLES_TF, work)
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1"}
    env["TF_CLI_CONFIG_FILE"] = os.devnull
    return subprocess.run(
        [TERRAFORM, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout
    )


def terraform_plan(tmp_path: Path, var_file: Path) -> subprocess.CompletedProcess:
    """`terraform plan` of variables.tf alone: evaluates every validation block, offline."""
    options = ("-input=false", "-lock=false", "-no-color", f"-var-file={var_file}")
    return run_terraform(tmp_path / "tf", "plan", *options, timeout=120)


def terraform_verdicts(var_files: dict[str, Path], work: Path) -> dict[str, str]:
    """What `terraform plan` of variables.tf alone says of each var file, from one Terraform
    process: `terraform test` with one test file per var file, whose run block plans with the
    file's assignments as its variables (a run that errors skips the rest of its own file only).
    {name: "" when the plan passes, else Terraform's error diagnostics}. One start of Terraform
    instead of one per file: about 0.12 s of CPU each."""
    (work / "tests").mkdir(parents=True)
    for name, path in var_files.items():
        assignments = "\n".join(f"    {line}" for line in path.read_text().splitlines())
        (work / "tests" / f"{name}.tftest.hcl").write_text(
            f'run "plan" {{\n  command = plan\n  variables {{\n{assignments}\n  }}\n}}\n'
        )
    result = run_terraform(work, "test", "-no-color", "-json", timeout=300)
    status, errors = {}, {name: [] for name in var_files}
    for line in result.stdout.splitlines():
        message = json.loads(line)
        name = Path(message.get("@testfile", "")).name.removesuffix(".tftest.hcl")
        if message["type"] == "test_run" and "status" in message["test_run"]:
            status[name] = message["test_run"]["status"]
        elif message["type"] == "diagnostic" and message["@level"] == "error" and name:
            diagnostic = message["diagnostic"]
            errors[name].append(f"{diagnostic['summary']}: {diagnostic.get('detail', '')}")
    assert set(status) == set(var_files), result.stdout + result.stderr
    return {
        name: "" if status[name] == "pass" else "\n".join(errors[name]) or status[name]
        for name in var_files
    }


def declared_variables() -> dict[str, dict]:
    """The variable blocks of variables.tf, by name, in file order."""
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)
    parsed = hcl2.loads(VARIABLES_TF.read_text(), serialization_options=options)
    return {name: body for block in parsed["variable"] for name, body in block.items()}


# Skips where terraform is missing, except in CI, where that fails (tests/conftest.py).
needs_terraform = pytest.mark.usefixtures("terraform_bin")


# --------------------------------------------------------------------------- shipped files


def test_three_env_files_are_shipped():
    assert [p.name for p in ENV_FILES] == [
        "dev_env.tfvars",
        "prod_env.tfvars",
        "staging_env.tfvars",
    ]


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_shipped_env_file_loads(path):
    env = load_env_config(path)
    assert path.name == f"{env.environment}_env.tfvars"
    assert env.kms_key.split(":")[3] == env.region
    assert env.kms_key.split(":")[4] == env.account_id
    assert {env.pipeline_inf, env.pipeline_train, env.pipeline_trainwhpo} == {
        f"batch-inference-pipeline-{env.environment}",
        f"training-pipeline-{env.environment}",
        f"training-hpo-pipeline-{env.environment}",
    }


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_every_tfvars_key_is_declared_in_variables_tf(path):
    assert set(parse_tfvars(path)) <= set(declared_variables())


def test_dev_env_sets_every_variable_explicitly():
    assert set(parse_tfvars(DEV)) == set(declared_variables())


def test_prod_runs_in_a_vpc_on_real_data_only():
    env = load_env_config(PROD)
    assert env.vpc_enabled and env.subnet_id and env.sg_id
    assert not (env.recreate_pipelines or env.upload_training_data or env.upload_inference_data)


def test_dev_values_and_derived_uris():
    env = load_env_config(DEV)
    assert env.region == "eu-west-1"
    assert env.account_id == "123456789012"
    assert env.partition == "aws"
    assert env.bucket_name == "mlops-batch-inference-dev-123456789012"
    assert (
        env.s3_base_uri
        == "s3://mlops-batch-inference-dev-123456789012/pipeline_shared/batch-scoring"
    )
    assert env.train_data_uri == env.s3_base_uri + "/training/data/raw/"
    assert env.inference_data_uri == env.s3_base_uri + "/batch-scoring/data/raw/"
    assert env.artifacts_uri == env.s3_base_uri + "/artifacts"
    assert env.vpc_enabled is False
    assert env.email_recipient == ("ml-team@example.com",)
    assert env.accuracy_mse_threshold == 6.0
    (note,) = env.custom_notification_config
    assert (note.step_name, note.step_status) == ("RegisterModel", "Succeeded")
    assert "approv" in note.step_custom_message


def test_load_config_reads_all_three_files():
    project = load_config(DEV)
    assert project.env == load_env_config(DEV)
    assert project.settings.images.framework_version == "3.0-5"
    assert project.tags["managed-by"] == "terraform"


# --------------------------------------------------------------------------- parsing robustness


def test_commented_assignment_does_not_affect_parsing(tmp_path):
    # The old sample scraped tfvars line by line, so a commented-out line could win.
    text = DEV.read_text()
    text = '# bucket_name = "wrong"\n' + text.replace(
        'bucket_name = "mlops', '# bucket_name = "wrong"\nbucket_name = "mlops'
    )
    text = text.replace(
        '"mlops-batch-inference-dev-123456789012"',
        '"mlops-batch-inference-dev-123456789012" # = "wrong"',
    )
    path = tmp_path / "dev_env.tfvars"
    path.write_text(text)
    assert load_env_config(path).bucket_name == "mlops-batch-inference-dev-123456789012"


def test_variable_whose_name_prefixes_another_is_read_exactly(tmp_path):
    # bucket_prefix / bucket_name / bucket_train_prefix share leading characters; a scraper
    # matching on startswith("bucket_") mixes them up.
    path = edited_env(
        tmp_path,
        {
            "bucket_prefix": '"bucket_name/x"',
            "bucket_train_prefix": '"bucket_prefix"',
            "bucket_name": '"bucket-name"',
        },
    )
    env = load_env_config(path)
    assert (env.bucket_name, env.bucket_prefix, env.bucket_train_prefix) == (
        "bucket-name",
        "bucket_name/x",
        "bucket_prefix",
    )


def test_strings_keep_hash_equals_quotes_and_heredocs(tmp_path):
    message = '<<-EOT\n    Approve #1 = "the new model"\n    then re-run batch scoring.\n    EOT'
    path = edited_env(
        tmp_path,
        {
            "custom_notification_config": (
                "[{\n"
                '  step_name = "RegisterModel"\n'
                '  step_status = "Succeeded"\n'
                f"  step_custom_message = {message}\n"
                "}]"
            )
        },
    )
    (note,) = load_env_config(path).custom_notification_config
    assert note.step_custom_message == 'Approve #1 = "the new model"\nthen re-run batch scoring.\n'


def test_optional_variables_take_the_schema_defaults(tmp_path):
    optional = tuple(v.name for v in variable_schema() if not v.required)
    env = load_env_config(edited_env(tmp_path, drop=optional))
    for variable in variable_schema():
        if not variable.required:
            value = getattr(env, variable.name)
            assert (list(value) if isinstance(value, tuple) else value) == variable.default
    assert env.pipeline_train == "training-pipeline"
    assert env.accuracy_mse_threshold == 6.0
    assert env.upload_training_data is True and env.upload_inference_data is False


@pytest.mark.parametrize(
    "kms_key",
    [
        "arn:aws:kms:eu-west-1:123456789012:alias/mlops-batch-inference",
        "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab",
    ],
    ids=["alias-arn", "multi-region-key"],
)
def test_alias_and_multi_region_key_arns_are_accepted(tmp_path, kms_key):
    path = edited_env(tmp_path, {"kms_key": f'"{kms_key}"'})
    assert load_env_config(path).kms_key == kms_key
    if TERRAFORM:
        assert terraform_plan(tmp_path, path).returncode == 0


def test_gov_cloud_partition_is_accepted(tmp_path):
    path = edited_env(
        tmp_path,
        {
            "region": '"us-gov-west-1"',
            "role_arn": '"arn:aws-us-gov:iam::123456789012:role/path/to/mlops"',
            "kms_key": '"arn:aws-us-gov:kms:us-gov-west-1:123456789012:alias/mlops"',
        },
    )
    assert load_env_config(path).partition == "aws-us-gov"


# --------------------------------------------------------------------------- bad env files

KMS_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def case(case_id, values=None, *, drop=(), append="", variable, expected):
    """A bad edit of dev_env.tfvars: replaced (values) or removed (drop) assignments."""
    return pytest.param(values or {}, drop, append, variable, expected, id=case_id)


# Cases Terraform accepts: it converts "true" to true and 12345 to "12345", only warns about
# undeclared variables, silently drops unknown object keys and cannot see the file name.
ONLY_PYTHON_REJECTS = {
    "unknown-variable",
    "bool-as-string",
    "number-as-string",
    "string-as-number",
    "environment-not-file-name",
    "notification-unknown-key",
}


BAD_ENV_CASES = [
    case("missing-required", drop=("region",), variable="region", expected="required"),
    case("missing-role", drop=("role_arn",), variable="role_arn", expected="IAM role"),
    case(
        "unknown-variable",
        append='bucket_nme = "x"\n',
        variable="bucket_nme",
        expected="did you mean 'bucket_name'?",
    ),
    case(
        "bool-as-string",
        {"recreate_pipelines": '"true"'},
        variable="recreate_pipelines",
        expected="true or false (without quotes), got 'true'",
    ),
    case(
        "number-as-string",
        {"accuracy_mse_threshold": '"6.0"'},
        variable="accuracy_mse_threshold",
        expected="a number (without quotes), got '6.0'",
    ),
    case(
        "list-as-string",
        {"email_recipient": '"ml-team@example.com"'},
        variable="email_recipient",
        expected="a list of strings, got 'ml-team@example.com'",
    ),
    case(
        "string-as-number",
        {"user_id": "12345"},
        variable="user_id",
        expected="a string, got 12345",
    ),
    case("null", {"user_id": "null"}, variable="user_id", expected="a string, got null"),
    case(
        "function-call",
        {"region": 'lower("EU-WEST-1")'},
        variable="region",
        expected="a literal value",
    ),
    case("unquoted-string", {"region": "eu-west-1"}, variable="region", expected="quote strings"),
    case("reference", {"region": "var.region"}, variable="region", expected="a literal value"),
    case(
        "interpolation",
        {"user_id": '"a${var.region}"'},
        variable="user_id",
        expected="got the expression ${var.region}",
    ),
    case(
        "role-user-not-role",
        {"role_arn": '"arn:aws:iam::123456789012:user/bob"'},
        variable="role_arn",
        expected="an IAM role ARN",
    ),
    case(
        "role-short-account",
        {"role_arn": '"arn:aws:iam::12345678901:role/r"'},
        variable="role_arn",
        expected="an IAM role ARN",
    ),
    case(
        "kms-bare-key-id",
        {"kms_key": f'"{KMS_ID}"'},
        variable="kms_key",
        expected="a KMS key ARN",
    ),
    case(
        "kms-not-a-uuid",
        {"kms_key": '"arn:aws:kms:eu-west-1:123456789012:key/my-key"'},
        variable="kms_key",
        expected="a KMS key ARN",
    ),
    case(
        "kms-other-region",
        {"kms_key": f'"arn:aws:kms:us-east-1:123456789012:key/{KMS_ID}"'},
        variable="kms_key",
        expected="a key in region 'eu-west-1'",
    ),
    case(
        "kms-other-account",
        {"kms_key": f'"arn:aws:kms:eu-west-1:999999999999:key/{KMS_ID}"'},
        variable="kms_key",
        expected="a key in account 123456789012",
    ),
    case(
        "kms-other-partition",
        {"kms_key": f'"arn:aws-cn:kms:eu-west-1:123456789012:key/{KMS_ID}"'},
        variable="kms_key",
        expected="partition 'aws'",
    ),
    case("region", {"region": '"Ireland"'}, variable="region", expected="an AWS region name"),
    case("environment", {"environment": '"qa"'}, variable="environment", expected="'staging'"),
    case(
        "environment-not-file-name",
        {"environment": '"staging"'},
        variable="environment",
        expected="'dev' (the file is named dev_env.tfvars)",
    ),
    *[
        case(f"bucket-{why}", {"bucket_name": f'"{name}"'}, variable="bucket_name", expected=why)
        for name, why in [
            ("ab", "3 to 63 characters"),
            ("a" * 64, "3 to 63 characters"),
            ("My_Bucket", "lowercase letters"),
            ("-bucket", "starting and ending alphanumeric"),
            ("bucket-", "starting and ending alphanumeric"),
            ("my..bucket", "two adjacent periods"),
            ("192.168.10.20", "IP address"),
            ("xn--bucket", "reserves"),
            ("sthree-bucket", "reserves"),
            ("bucket-s3alias", "reserves"),
            ("bucket--ol-s3", "reserves"),
        ]
    ],
    *[
        case(
            f"prefix-{why}", {"bucket_prefix": f'"{value}"'}, variable="bucket_prefix", expected=why
        )
        for value, why in [
            ("/pipeline_shared", "leading or trailing '/'"),
            ("pipeline_shared/", "leading or trailing '/'"),
            ("s3://bucket/pipeline_shared", "without 's3://<bucket>/'"),
            ("pipeline_shared//x", "empty segments"),
            ("", "empty segments"),
            ("a/../b", "segments of letters"),
            ("with space", "segments of letters"),
        ]
    ],
    case(
        "train-prefix-repeats-bucket-prefix",
        {"bucket_train_prefix": '"pipeline_shared/batch-scoring/training"'},
        variable="bucket_train_prefix",
        expected="relative to bucket_prefix",
    ),
    case(
        "inference-prefix-inside-artifacts",
        {"bucket_inf_prefix": '"artifacts/batches"'},
        variable="bucket_inf_prefix",
        expected="outside 'artifacts'",
    ),
    case(
        "inference-prefix-inside-training-prefix",
        {"bucket_inf_prefix": '"training/data/raw/batches"'},
        variable="bucket_inf_prefix",
        expected="bucket_train_prefix",
    ),
    case(
        "no-email", {"email_recipient": "[]"}, variable="email_recipient", expected="at least one"
    ),
    case(
        "bad-email",
        {"email_recipient": '["ml-team@example.com", "ml-team.example.com"]'},
        variable="email_recipient[1]",
        expected="an email address",
    ),
    case(
        "duplicate-email",
        {"email_recipient": '["a@example.com", "a@example.com"]'},
        variable="email_recipient",
        expected="no duplicate",
    ),
    case(
        "threshold-zero",
        {"accuracy_mse_threshold": "0"},
        variable="accuracy_mse_threshold",
        expected="a value > 0",
    ),
    case(
        "threshold-negative",
        {"accuracy_mse_threshold": "-6.0"},
        variable="accuracy_mse_threshold",
        expected="a value > 0",
    ),
    *[
        case(
            f"pipeline-name-{i}",
            {"pipeline_train": f'"{name}"'},
            variable="pipeline_train",
            expected="a lower-case SageMaker pipeline name",
        )
        for i, name in enumerate(
            ["-training", "training-", "training_pipeline", "t" * 257, "Training-Pipeline"]
        )
    ],
    case(
        "pipeline-names-not-distinct",
        {"pipeline_trainwhpo": '"training-pipeline-dev"'},
        variable="pipeline_trainwhpo",
        expected="different from pipeline_train",
    ),
    case(
        "model-package-group-too-long",
        {"model_package_group_name": f'"{"g" * 64}"'},
        variable="model_package_group_name",
        expected="a model package group name",
    ),
    case(
        "model-package-group-underscore",
        {"model_package_group_name": '"abalone_rings"'},
        variable="model_package_group_name",
        expected="a model package group name",
    ),
    case(
        "lambda-name",
        {"notification_function_name": '"notify me"'},
        variable="notification_function_name",
        expected="a Lambda function name",
    ),
    case(
        "lambda-name-too-long",
        {"notification_function_name": f'"{"n" * 65}"'},
        variable="notification_function_name",
        expected="a Lambda function name",
    ),
    case(
        "subnet-id",
        {"subnet_id": '["subnet-123"]', "sg_id": '["sg-0123456789abcdef0"]'},
        variable="subnet_id[0]",
        expected="a subnet id",
    ),
    case(
        "sg-id",
        {"subnet_id": '["subnet-0a1b2c3d4e5f60718"]', "sg_id": '["security-group-1"]'},
        variable="sg_id[0]",
        expected="a security group id",
    ),
    case(
        "subnets-without-security-groups",
        {"subnet_id": '["subnet-0a1b2c3d4e5f60718"]'},
        variable="sg_id",
        expected="both empty = no VPC",
    ),
    case(
        "security-groups-without-subnets",
        {"sg_id": '["sg-0123456789abcdef0"]'},
        variable="subnet_id",
        expected="both empty = no VPC",
    ),
    case(
        "notification-unknown-key",
        {
            "custom_notification_config": '[{step_name = "RegisterModel", step_status = "Failed", '
            'step_custom_message = "m", stepname = "x"}]'
        },
        variable="custom_notification_config[0].stepname",
        expected="did you mean 'step_name'?",
    ),
    case(
        "notification-missing-key",
        {"custom_notification_config": '[{step_name = "RegisterModel", step_status = "Failed"}]'},
        variable="custom_notification_config[0].step_custom_message",
        expected="required",
    ),
    case(
        "notification-bad-status",
        {
            "custom_notification_config": '[{step_name = "RegisterModel", step_status = "Success", '
            'step_custom_message = "m"}]'
        },
        variable="custom_notification_config[0].step_status",
        expected="'Succeeded'",
    ),
    case(
        "notification-empty-message",
        {
            "custom_notification_config": '[{step_name = "RegisterModel", step_status = "Failed", '
            'step_custom_message = "  "}]'
        },
        variable="custom_notification_config[0].step_custom_message",
        expected="a non-empty message",
    ),
    case(
        "notification-duplicate",
        {
            "custom_notification_config": '[{step_name = "A", step_status = "Failed", '
            'step_custom_message = "m"}, {step_name = "A", step_status = "Failed", '
            'step_custom_message = "n"}]'
        },
        variable="custom_notification_config[1]",
        expected="one entry per step_name and step_status",
    ),
    case(
        "notify-step-status-as-execution-status",
        {"notify_execution_statuses": '["Starting"]'},
        variable="notify_execution_statuses[0]",
        expected="one of 'Executing', 'Stopping', 'Stopped', 'Failed', 'Succeeded'",
    ),
    case(
        "notify-duplicate-status",
        {"notify_step_statuses": '["Failed", "Failed"]'},
        variable="notify_step_statuses",
        expected="no duplicate entries",
    ),
    case(
        "schedule-not-an-expression",
        {"inference_schedule_expression": '"every day at 6"'},
        variable="inference_schedule_expression",
        expected="an EventBridge schedule",
    ),
    case(
        "notification-not-a-list",
        {"custom_notification_config": '"RegisterModel"'},
        variable="custom_notification_config",
        expected="a list of objects with keys step_name, step_status, step_custom_message",
    ),
    # issue 9: names derived from the group name must fit their resources' limits.
    case(
        "model-package-group-too-long-for-derived-names",
        {"model_package_group_name": f'"{"g" * 42}"'},
        variable="model_package_group_name",
        expected="at most 41 characters",
    ),
    # issue 9: the notifier's environment is limited to 4 KB.
    case(
        "custom-notifications-too-large-for-lambda-environment",
        {
            "custom_notification_config": "["
            + ",".join(
                f'{{ step_name = "Step{i}", step_status = "Failed", '
                f'step_custom_message = "{"m" * 500}" }}'
                for i in range(6)
            )
            + "]"
        },
        variable="custom_notification_config",
        expected="at most 3072 bytes as JSON",
    ),
    case(
        "permissions-boundary-not-a-policy-arn",
        {"permissions_boundary": '"ml-boundary"'},
        variable="permissions_boundary",
        expected="an IAM policy ARN",
    ),
    case(
        "reserved-concurrency-fraction",
        {"lambda_reserved_concurrency": "2.5"},
        variable="lambda_reserved_concurrency",
        expected="0 (none reserved) or a whole number >= 1",
    ),
]


@pytest.mark.parametrize(("values", "drop", "append", "variable", "expected"), BAD_ENV_CASES)
def test_bad_env_file_is_rejected_naming_file_variable_and_expectation(
    tmp_path, values, drop, append, variable, expected
):
    path = edited_env(tmp_path, values, drop, append)
    message = raises_config_error(
        lambda: load_env_config(path), str(path), f"variable '{variable}': expected", expected
    )
    assert ", got " in message


# A var file holds literal values only (Terraform refuses these expressions there), while a run
# block of `terraform test` would evaluate them: they go through `terraform plan -var-file`.
EXPRESSION_CASES = {"function-call", "unquoted-string", "reference", "interpolation"}
TERRAFORM_CASES = [c for c in BAD_ENV_CASES if c.id not in ONLY_PYTHON_REJECTS]


def case_key(values, drop, append) -> str:
    return repr((values, drop, append))


@pytest.fixture(scope="module")
def terraform_says(terraform_bin, tmp_path_factory) -> dict[str, str]:
    """terraform_verdicts() of the shipped env files and of every bad one with literal values,
    by file stem and by case_key()."""
    files, keys = {path.stem: path for path in ENV_FILES}, {}
    for number, param in enumerate(TERRAFORM_CASES):
        if param.id not in EXPRESSION_CASES:
            values, drop, append = param.values[:3]
            name, folder = f"case-{number}", tmp_path_factory.mktemp("case")
            keys[name] = case_key(values, drop, append)
            files[name] = edited_env(folder, values, drop, append)
    verdicts = terraform_verdicts(files, tmp_path_factory.mktemp("terraform-test"))
    return {keys.get(name, name): verdict for name, verdict in verdicts.items()}


@needs_terraform
@pytest.mark.parametrize(("values", "drop", "append", "variable", "expected"), TERRAFORM_CASES)
def test_terraform_rejects_the_same_bad_env_file(
    request, tmp_path, values, drop, append, variable, expected
):
    if request.node.callspec.id in EXPRESSION_CASES:
        result = terraform_plan(tmp_path, edited_env(tmp_path, values, drop, append))
        assert result.returncode != 0
        output = result.stdout + result.stderr
    else:
        output = request.getfixturevalue("terraform_says")[case_key(values, drop, append)]
    assert output, "terraform accepted it"
    assert variable.split("[")[0] in output


@needs_terraform
@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_terraform_accepts_shipped_env_file(terraform_says, path):
    assert terraform_says[path.stem] == ""


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("recreate_pipelines", "true"),
        ("upload_training_data", "true"),
        ("upload_inference_data", "true"),
        ("fail_on_data_quality_violation", "false"),
    ],
)
def test_prod_refuses_settings_that_endanger_production(tmp_path, variable, value):
    path = edited_env(tmp_path, {variable: value}, source=PROD)
    raises_config_error(
        lambda: load_env_config(path), str(path), f"variable '{variable}'", "in prod"
    )
    if TERRAFORM:
        assert terraform_plan(tmp_path, path).returncode != 0


def test_invalid_hcl_names_file_and_line(tmp_path):
    path = edited_env(tmp_path, append="user_id = \n")
    line = len(path.read_text().splitlines())
    raises_config_error(
        lambda: load_env_config(path), str(path), f"line {line}", "expected valid HCL"
    )


def test_unterminated_list_names_the_line(tmp_path):
    path = tmp_path / "dev_env.tfvars"
    path.write_text('region = "eu-west-1"\n\nemail_recipient = ["a@example.com",\nuser_id = "a1"\n')
    raises_config_error(lambda: load_env_config(path), str(path), "line 4", "valid HCL")


def test_duplicate_assignment_is_rejected(tmp_path):
    # python-hcl2 would silently keep the last value; Terraform rejects the file.
    path = edited_env(tmp_path, append='region = "us-east-1"\n')
    lines = path.read_text().splitlines()
    first = lines.index('region = "eu-west-1"') + 1
    raises_config_error(
        lambda: load_env_config(path),
        f"{path}: line {len(lines)}: variable 'region'",
        f"the first is on line {first}",
    )


def test_two_assignments_on_one_line_are_rejected(tmp_path):
    path = edited_env(tmp_path, append='team = "a" owner = "b"\n')
    raises_config_error(lambda: load_env_config(path), str(path), "one assignment per line")


def test_block_is_rejected(tmp_path):
    path = edited_env(tmp_path, append='variable "x" {\n  default = 1\n}\n')
    raises_config_error(lambda: load_env_config(path), str(path), "variable 'variable'", "block")


def test_missing_env_file(tmp_path):
    path = tmp_path / "qa_env.tfvars"
    raises_config_error(lambda: load_env_config(path), str(path), "no such file")


# --------------------------------------------------------------------------- schema vs variables.tf


def normalise_type(expression: str) -> str:
    # python-hcl2 returns complex type expressions unevaluated as "${...}".
    return re.sub(r"\s+", "", expression.removeprefix("${").removesuffix("}"))


def test_python_schema_matches_variables_tf():
    declared = declared_variables()
    schema = variable_schema()
    assert [v.name for v in schema] == list(declared)
    for variable in schema:
        body = declared[variable.name]
        assert normalise_type(body["type"]) == normalise_type(variable.terraform_type)
        assert body["description"] == variable.description
        assert ("default" not in body) == variable.required, variable.name
        assert body.get("default") == variable.default, variable.name
        assert body["nullable"] is False, variable.name


def test_every_declared_variable_is_described_and_validated():
    for name, body in declared_variables().items():
        assert body.get("description", "").strip(), name
        assert body.get("validation"), name
        for rule in body["validation"]:
            assert rule["condition"] and rule["error_message"].startswith("Expected"), name


def test_python_patterns_and_reserved_names_appear_verbatim_in_variables_tf():
    text = VARIABLES_TF.read_text()
    for name, pattern in config.PATTERNS.items():
        assert f'"{pattern}"' in text, name
    for reserved in config.BUCKET_RESERVED_PREFIXES + config.BUCKET_RESERVED_SUFFIXES:
        assert f'"{reserved}"' in text, reserved


def test_schema_names_the_blog_variables_and_the_additions():
    required = {v.name for v in variable_schema() if v.required}
    assert required == {
        "region",
        "environment",
        "bucket_name",
        "bucket_prefix",
        "bucket_train_prefix",
        "bucket_inf_prefix",
        "email_recipient",
        "model_package_group_name",
        "role_arn",
        "kms_key",
        "user_id",
    }
    defaults = {v.name: v.default for v in variable_schema() if not v.required}
    assert defaults == {
        "notification_function_name": "pipeline-notification-lambda",
        "custom_notification_config": [],
        "pipeline_inf": "batch-inference-pipeline",
        "pipeline_train": "training-pipeline",
        "pipeline_trainwhpo": "training-hpo-pipeline",
        "recreate_pipelines": False,
        "accuracy_mse_threshold": 6.0,
        "subnet_id": [],
        "sg_id": [],
        "upload_training_data": True,
        "upload_inference_data": False,
        "fail_on_data_quality_violation": True,
        "notify_execution_statuses": ["Succeeded", "Failed", "Stopped"],
        "notify_step_statuses": ["Failed"],
        "inference_schedule_expression": "",
        "permissions_boundary": "",
        "lambda_reserved_concurrency": 0,
    }


# --------------------------------------------------------------------------- pipelines.yaml


def test_shipped_settings():
    settings = load_pipeline_settings()
    assert settings.images.framework == "xgboost"
    assert settings.training.hyperparameters.num_round == 300
    assert settings.training.hyperparameters.objective == "reg:squarederror"
    assert settings.tuning.early_stopping == "Off"
    assert settings.tuning.ranges["max_depth"].type == "integer"
    assert settings.tuning.ranges["max_depth"].scaling == "Auto"
    assert settings.tuning.ranges["eta"].scaling == "Logarithmic"
    assert settings.caching.expire_after == "P30D"


def test_shipped_image_version_is_known_to_the_pinned_sagemaker_sdk():
    # A plain import: sagemaker is pinned and required, so a moved module must fail, not skip.
    from sagemaker.core import image_uris

    images = load_pipeline_settings().images
    uri = image_uris.retrieve(images.framework, "eu-west-1", version=images.framework_version)
    assert uri.endswith(f":{images.framework_version}")


def edited_settings(tmp_path: Path, key: str, value=None, *, delete: bool = False) -> Path:
    data = yaml.safe_load(SETTINGS.read_text())
    *parents, last = key.split(".")
    node = data
    for part in parents:
        node = node[part]
    if delete:
        del node[last]
    else:
        node[last] = value
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


BAD_SETTINGS = [
    ("tuning.strateg", "Bayesian", "tuning.strateg", "did you mean 'strategy'?"),
    ("training.hyperparameters.etaa", 0.1, "training.hyperparameters.etaa", "did you mean 'eta'?"),
    ("processing.instance_count", "1", "processing.instance_count", "an integer (without quotes)"),
    ("processing.instance_count", 1.5, "processing.instance_count", "an integer, got 1.5"),
    ("processing.instance_count", 0, "processing.instance_count", "a value >= 1"),
    ("processing.instance_type", "m5.large", "processing.instance_type", "an instance type"),
    ("processing.volume_size_gb", 0, "processing.volume_size_gb", "[1, 16384]"),
    ("training.volume_size_gb", 16385, "training.volume_size_gb", "[1, 16384]"),
    ("training.max_runtime_seconds", 432001, "training.max_runtime_seconds", "[1, 432000]"),
    ("transform.volume_size_gb", 30, "transform.volume_size_gb", "one of the keys"),
    ("transform.batch_strategy", "Multi", "transform.batch_strategy", "'MultiRecord'"),
    ("transform.max_payload_mb", 101, "transform.max_payload_mb", "[1, 100]"),
    ("transform.max_concurrent_transforms", 20, "transform.max_concurrent_transforms", "<= 100"),
    ("transform.max_concurrent_transforms", -1, "transform.max_concurrent_transforms", ">= 0"),
    ("caching.enabled", "yes", "caching.enabled", "true or false"),
    ("caching.expire_after", "30 days", "caching.expire_after", "ISO-8601 duration"),
    ("caching.expire_after", "PT", "caching.expire_after", "ISO-8601 duration"),
    ("images.framework_version", 3.0, "images.framework_version", "a string, got 3.0"),
    ("images.framework", "sklearn", "images.framework", "'xgboost'"),
    ("training.hyperparameters.eta", 0, "training.hyperparameters.eta", "(0, 1]"),
    (
        "training.hyperparameters.objective",
        "binary:logistic",
        "training.hyperparameters.objective",
        "'reg:squarederror'",
    ),
    ("tuning.strategy", "Grid", "tuning.strategy", "Bayesian, Random or Hyperband"),
    ("tuning.objective_type", "Lowest", "tuning.objective_type", "'Minimize'"),
    ("tuning.max_parallel_jobs", 13, "tuning.max_parallel_jobs", "at most max_jobs (12)"),
    ("tuning.ranges", {}, "tuning.ranges", "a non-empty mapping"),
    (
        "tuning.ranges.learning_rate",
        {"type": "continuous", "min": 0.1, "max": 0.2},
        "tuning.ranges.learning_rate",
        "a numeric hyperparameter",
    ),
    (
        "tuning.ranges.objective",
        {"type": "continuous", "min": 0.1, "max": 0.2},
        "tuning.ranges.objective",
        "a numeric hyperparameter",
    ),
    ("tuning.ranges.eta.type", "integer", "tuning.ranges.eta.type", "type continuous"),
    ("tuning.ranges.eta.kind", "x", "tuning.ranges.eta.kind", "one of the keys"),
    ("tuning.ranges.max_depth.min", 3.5, "tuning.ranges.max_depth.min", "an integer"),
    ("tuning.ranges.subsample.max", 1.5, "tuning.ranges.subsample.max", "(0, 1]"),
    ("tuning.ranges.subsample.min", 1.0, "tuning.ranges.subsample.max", "a value > min (1.0)"),
    ("tuning.ranges.eta.scaling", "Log", "tuning.ranges.eta.scaling", "'Logarithmic'"),
    (
        "tuning.ranges.min_child_weight",
        {"type": "continuous", "min": 0, "max": 10, "scaling": "Logarithmic"},
        "tuning.ranges.min_child_weight.min",
        "> 0 with Logarithmic",
    ),
    (
        "tuning.ranges.min_child_weight.scaling",
        "ReverseLogarithmic",
        "tuning.ranges.min_child_weight.scaling",
        "within [0, 1)",
    ),
    ("preprocessing.test_fraction", 0, "preprocessing.test_fraction", "(0, 1)"),
    ("preprocessing.test_fraction", 1.0, "preprocessing.test_fraction", "(0, 1)"),
    (
        "preprocessing.test_fraction",
        0.9,
        "preprocessing.validation_fraction",
        "test_fraction + validation_fraction < 1",
    ),
    (
        "preprocessing.validation_fraction",
        0.85,
        "preprocessing.validation_fraction",
        "test_fraction + validation_fraction < 1",
    ),
    ("data_quality.comparison_threshold", 0, "data_quality.comparison_threshold", "(0, 1]"),
    (
        "data_quality.domain_content_threshold",
        1.5,
        "data_quality.domain_content_threshold",
        "(0, 1]",
    ),
    ("data_quality.instance_count", 0, "data_quality.instance_count", "[1, 100]"),
    ("retry.max_attempts", 21, "retry.max_attempts", "[1, 20]"),
    ("retry.backoff_rate", 0.5, "retry.backoff_rate", ">= 1"),
    ("retry", [5, 10, 2.0], "retry", "an object with keys max_attempts"),
    # settings added for batches, labels, champion, explanations and drift
    ("model_quality.min_labelled_records", 0, "model_quality.min_labelled_records", ">= 1"),
    (
        "model_quality.retrain_cooldown_minutes",
        "six",
        "model_quality.retrain_cooldown_minutes",
        "an integer (without quotes)",
    ),
    ("registration.reject_if_not_better", "yes", "registration.reject_if_not_better", "true"),
    ("batch.id_column", 5, "batch.id_column", "a string, got 5"),
    ("explanations.per_record", "no", "explanations.per_record", "true or false"),
    ("data_quality.drift_alpha", 1.5, "data_quality.drift_alpha", "(0, 1)"),
    ("data_quality.drift_min_shift_sd", -1, "data_quality.drift_min_shift_sd", ">= 0"),
    ("data_quality.drift_min_rows", 0, "data_quality.drift_min_rows", ">= 1"),
    ("retraining.labelled_batches_days", -1, "retraining.labelled_batches_days", "[0, 3650]"),
]


@pytest.mark.parametrize(("key", "value", "reported", "expected"), BAD_SETTINGS)
def test_bad_settings_are_rejected(tmp_path, key, value, reported, expected):
    path = edited_settings(tmp_path, key, value)
    raises_config_error(
        lambda: load_pipeline_settings(path), f"{path}: '{reported}': expected", expected
    )


@pytest.mark.parametrize(
    "key", ["retry.max_attempts", "training.hyperparameters", "tuning", "tuning.ranges.eta.min"]
)
def test_missing_setting_is_rejected(tmp_path, key):
    path = edited_settings(tmp_path, key, delete=True)
    raises_config_error(lambda: load_pipeline_settings(path), f"'{key}': expected", "required")


def test_optional_scaling_defaults_to_auto(tmp_path):
    path = edited_settings(tmp_path, "tuning.ranges.eta.scaling", delete=True)
    assert load_pipeline_settings(path).tuning.ranges["eta"].scaling == "Auto"


def test_hyperband_requires_early_stopping_off(tmp_path):
    data = yaml.safe_load(SETTINGS.read_text())
    data["tuning"].update(strategy="Hyperband", early_stopping="Auto")
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(data))
    raises_config_error(
        lambda: load_pipeline_settings(path), "'tuning.early_stopping'", "with strategy Hyperband"
    )


def test_unquoted_off_is_explained(tmp_path):
    # YAML 1.1 reads a bare Off as false.
    path = tmp_path / "pipelines.yaml"
    path.write_text(SETTINGS.read_text().replace('early_stopping: "Off"', "early_stopping: Off"))
    raises_config_error(
        lambda: load_pipeline_settings(path),
        "'tuning.early_stopping'",
        "quote it in YAML",
        "got false",
    )


def test_duplicate_yaml_key_is_rejected(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text(SETTINGS.read_text().replace("  seed: 42\n", "  seed: 42\n  seed: 7\n"))
    raises_config_error(lambda: load_pipeline_settings(path), str(path), "duplicate key 'seed'")


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text("images:\n  framework: xgboost\n framework_version: [\n")
    raises_config_error(lambda: load_pipeline_settings(path), str(path), "line 3", "valid YAML")


def test_settings_must_be_a_mapping(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text("- images\n")
    raises_config_error(lambda: load_pipeline_settings(path), "'(top level)'", "an object")


def test_missing_settings_file(tmp_path):
    raises_config_error(lambda: load_pipeline_settings(tmp_path / "nope.yaml"), "no such file")


# --------------------------------------------------------------------------- tags.json


def test_shipped_tags():
    tags = load_tags(TAGS)
    assert tags == {
        "project": "batch-inference-mlops",
        "managed-by": "terraform",
        "cost-center": "ml-platform",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"aws:team": "ml"}', "not starting with 'aws:'"),
        ('{"AWS:team": "ml"}', "not starting with 'aws:'"),
        (json.dumps({"k" * 129: "v"}), "a key of 1-128"),
        ('{"": "v"}', "a key of 1-128"),
        (json.dumps({"team": "v" * 257}), "a string value of 0-256"),
        ('{"team": 7}', "a string value"),
        ('{"team": {"name": "ml"}}', "a string value"),
        ('{"team": "ml;drop"}', "a string value"),
        ('{"team": "ml", "team": "ops"}', "each key once"),
        ('["project"]', "a JSON object"),
        ('{"team": "ml",}', "line 1"),
        (json.dumps({f"k{i}": "v" for i in range(51)}), "at most 50 tags"),
    ],
)
def test_bad_tags_are_rejected(tmp_path, text, expected):
    path = tmp_path / "tags.json"
    path.write_text(text)
    raises_config_error(lambda: load_tags(path), str(path), expected)


def test_empty_tag_value_is_allowed(tmp_path):
    path = tmp_path / "tags.json"
    path.write_text('{"owner": ""}')
    assert load_tags(path) == {"owner": ""}


# --------------------------------------------------------------------------- issue 9 limits


def test_longest_allowed_names_and_notifications_are_accepted(tmp_path):
    """The limits are exact: 41 characters and 3072 bytes pass, in Python and Terraform."""
    message_size = 3072 - len(
        config.terraform_jsonencode(
            [{"step_custom_message": "", "step_name": "S", "step_status": "Failed"}]
        )
    )
    values = {
        "model_package_group_name": f'"{"g" * 41}"',
        "custom_notification_config": (
            f'[{{ step_name = "S", step_status = "Failed", '
            f'step_custom_message = "{"é" * (message_size // 2)}" }}]'
        ),
        "permissions_boundary": '"arn:aws:iam::123456789012:policy/ml-boundary"',
        "lambda_reserved_concurrency": "5",
    }
    path = edited_env(tmp_path, values)
    env = load_env_config(path)
    assert len(
        config.terraform_jsonencode(config.plain(env.custom_notification_config)).encode()
    ) in (3071, 3072)
    if TERRAFORM:
        result = terraform_plan(tmp_path, path)
        assert result.returncode == 0, result.stdout + result.stderr


# --- issue 11: tfvars the way users get them wrong -------------------------------------------


def test_an_empty_tfvars_names_every_missing_variable_one_line_each(tmp_path):
    empty = tmp_path / "empty.tfvars"
    empty.write_text("")
    with pytest.raises(ConfigError) as info:
        load_env_config(empty)
    lines = str(info.value).splitlines()
    required = [v.name for v in config.variable_schema() if v.required]
    assert len(lines) == len(required) > 1
    for name, line in zip(required, lines, strict=True):
        assert line.startswith(f"{empty}: variable '{name}': expected ")
        assert line.endswith("(required, it has no default), got nothing")


def test_a_negative_number_is_a_number_then_validated(tmp_path):
    path = edited_env(tmp_path, {"accuracy_mse_threshold": "-1"})
    message = raises_config_error(
        lambda: load_env_config(path), "variable 'accuracy_mse_threshold'", "got -1"
    )
    assert "expression" not in message


def test_a_utf8_byte_order_mark_is_not_content(tmp_path):
    path = tmp_path / "dev_env.tfvars"
    path.write_bytes(b"\xef\xbb\xbf" + DEV.read_bytes())
    assert load_env_config(path) == load_env_config(DEV)


def test_tf_var_environment_values_apply_as_terraform_applies_them(tmp_path, monkeypatch):
    """Terraform: -var-file beats TF_VAR_; TF_VAR_ beats the declared default."""
    path = edited_env(tmp_path, drop=("notify_step_statuses",))
    monkeypatch.setenv("TF_VAR_notify_step_statuses", '["Failed", "Stopped"]')
    monkeypatch.setenv("TF_VAR_accuracy_mse_threshold", "99")  # the file sets it: ignored
    env = load_env_config(path)
    assert env.notify_step_statuses == ("Failed", "Stopped")
    assert env.accuracy_mse_threshold == load_env_config(DEV).accuracy_mse_threshold
    monkeypatch.setenv("TF_VAR_notify_step_statuses", '["Broken"]')
    raises_config_error(
        lambda: load_env_config(path),
        "variable 'notify_step_statuses[0]'",
        "TF_VAR_notify_step_statuses from the environment",
    )
    monkeypatch.setenv("TF_VAR_notify_step_statuses", "[Failed")
    raises_config_error(
        lambda: load_env_config(path), "environment variable TF_VAR_notify_step_statuses"
    )
