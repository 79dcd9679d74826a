"""Load and validate the project's configuration.

Three files configure everything:

- ``env_files/<env>.tfvars``: the per-environment values, read by Terraform *and* by this module
  (python-hcl2). ``EnvConfig`` (env_schema.py) is the one schema of those variables; ``make
  generate`` writes ``variables.tf`` and the README's variables table from it.
- ``pipeline_scripts/pipelines.yaml``: settings shared by every environment (``PipelineSettings``,
  settings_schema.py).
- ``tags.json``: tags applied to every job and resource.

The schemas are what a fork edits; the reader machinery (parsing, building the dataclasses,
error formatting) is config_reader.py. Every problem raises ``ConfigError`` with ONE line naming
the file, the field and what was expected, e.g.
``env_files/dev_env.tfvars: variable 'kms_key': expected ..., got '...'``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline_scripts.config_reader import (
    ConfigError,
    Source,
    build,
    load_yaml,
    parse_hcl,
    parse_tfvars,
    plain,
    terraform_jsonencode,
)
from pipeline_scripts.config_reader import (
    load_tags as _load_tags,
)
from pipeline_scripts.env_schema import (
    ARTIFACTS_PREFIX,
    BUCKET_RESERVED_PREFIXES,
    BUCKET_RESERVED_SUFFIXES,
    CUSTOM_NOTIFICATION_MAX_BYTES,
    ENVIRONMENTS,
    EXECUTION_STATUSES,
    NAME_PREFIX_MAX_LENGTH,
    PATTERNS,
    STEP_STATUSES,
    CustomNotification,
    EnvConfig,
    check_env,
)
from pipeline_scripts.settings_schema import (
    BatchSettings,
    CachingSettings,
    ComputeSettings,
    DataQualitySettings,
    ExplanationSettings,
    Hyperparameters,
    ImageSettings,
    ModelQualitySettings,
    ParameterRange,
    PipelineSettings,
    PreprocessingSettings,
    ProcessingSettings,
    RegistrationSettings,
    RetrySettings,
    TrainingSettings,
    TransformSettings,
    TuningSettings,
    check_settings,
)

__all__ = [
    "ARTIFACTS_PREFIX",
    "BUCKET_RESERVED_PREFIXES",
    "BUCKET_RESERVED_SUFFIXES",
    "CUSTOM_NOTIFICATION_MAX_BYTES",
    "DEFAULT_SETTINGS_FILE",
    "DEFAULT_TAGS_FILE",
    "ENVIRONMENTS",
    "ENV_FILES_DIR",
    "EXECUTION_STATUSES",
    "NAME_PREFIX_MAX_LENGTH",
    "PATTERNS",
    "REPO_ROOT",
    "STEP_STATUSES",
    "BatchSettings",
    "CachingSettings",
    "ComputeSettings",
    "ConfigError",
    "CustomNotification",
    "DataQualitySettings",
    "EnvConfig",
    "ExplanationSettings",
    "Hyperparameters",
    "ImageSettings",
    "ModelQualitySettings",
    "ParameterRange",
    "PipelineSettings",
    "PreprocessingSettings",
    "ProcessingSettings",
    "ProjectConfig",
    "RegistrationSettings",
    "RetrySettings",
    "TrainingSettings",
    "TransformSettings",
    "TuningSettings",
    "Variable",
    "env_file_path",
    "environment_values",
    "load_config",
    "load_env_config",
    "load_pipeline_settings",
    "load_tags",
    "parse_tfvars",
    "terraform_jsonencode",
    "terraform_type",
    "variable_schema",
]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
ENV_FILES_DIR = REPO_ROOT / "env_files"
DEFAULT_SETTINGS_FILE = PACKAGE_DIR / "pipelines.yaml"
DEFAULT_TAGS_FILE = REPO_ROOT / "tags.json"


# --------------------------------------------------------------------------- env (tfvars)


def load_env_config(path: Path | str) -> EnvConfig:
    """Read and validate env_files/<env>.tfvars, with TF_VAR_<name> environment values for
    variables the file does not set (see environment_values)."""
    src = Source(path, tfvars=True)
    values = parse_tfvars(path)
    from_env = environment_values(values)
    try:
        env = build(EnvConfig, {**from_env, **values}, "", src)
        check_env(env, src, Path(path).name)
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
            values[f.name] = parse_hcl(f"{f.name} = {raw}\n", where)[f.name]
    return values


def env_file_path(environment: str) -> Path:
    """Path of the tfvars file of an environment (dev, staging or prod)."""
    return ENV_FILES_DIR / f"{environment}_env.tfvars"


@dataclass(frozen=True)
class Variable:
    """One env variable as variables.tf declares it."""

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


def variable_schema(schema: type = EnvConfig) -> tuple[Variable, ...]:
    """Every env variable with its Terraform type, description and default."""
    hints = typing.get_type_hints(schema)
    return tuple(
        Variable(
            name=f.name,
            terraform_type=terraform_type(hints[f.name]),
            description=f.metadata["doc"],
            required=f.default is dataclasses.MISSING,
            default=None if f.default is dataclasses.MISSING else plain(f.default),
        )
        for f in dataclasses.fields(schema)
    )


# --------------------------------------------------------------------------- pipelines.yaml


def load_pipeline_settings(path: Path | str = DEFAULT_SETTINGS_FILE) -> PipelineSettings:
    """Read and validate pipelines.yaml."""
    data = load_yaml(path)
    src = Source(path, tfvars=False)
    settings = build(PipelineSettings, data, "", src)
    check_settings(settings, src)
    return settings


# --------------------------------------------------------------------------- everything


def load_tags(path: Path | str = DEFAULT_TAGS_FILE) -> dict[str, str]:
    """Read and validate tags.json: a flat JSON object of string keys to string values."""
    return _load_tags(path)


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
