"""`make generate`: variables.tf and the README variables table are written from EnvConfig.

The freshness test fails naming the stale file and the command; the others show that the
generator notices a stale file, writes `terraform fmt`-clean HCL with the schema's regular
expressions, and that its tfvars check reports a bad value in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest

from pipeline_scripts import config_generate
from pipeline_scripts.config import (
    PATTERNS,
    REPO_ROOT,
    ConfigError,
    EnvConfig,
    parse_tfvars,
    variable_schema,
)
from pipeline_scripts.config_checks import matches, var
from pipeline_scripts.config_reader import Source, build


def test_generated_files_are_current():
    stale = [str(p.relative_to(REPO_ROOT)) for p in config_generate.stale_files()]
    assert not stale, f"{', '.join(stale)} stale: run `make generate` and commit the result"


@pytest.fixture
def repo_copy(tmp_path):
    """The files `make generate` reads and writes, copied into a scratch repository."""
    for name in ("variables.tf", "README.md"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "env_files", tmp_path / "env_files")
    return tmp_path


def test_an_edited_variables_tf_is_named_stale_with_the_command(repo_copy, capsys):
    tf = repo_copy / "variables.tf"
    tf.write_text(tf.read_text().replace('default     = "training-pipeline"', 'default = "x"'))
    assert config_generate.stale_files(repo_copy) == [tf]
    assert config_generate.main(["--check"], root=repo_copy) == 1
    assert "error: variables.tf is stale: run `make generate`" in capsys.readouterr().out
    # make generate rewrites it; then nothing is stale and the env files load.
    assert config_generate.main([], root=repo_copy) == 0
    assert config_generate.stale_files(repo_copy) == []


def test_an_edited_readme_table_is_named_stale(repo_copy, capsys):
    readme = repo_copy / "README.md"
    readme.write_text(readme.read_text().replace("| `user_id` |", "| `user` |"))
    assert config_generate.main(["--check"], root=repo_copy) == 1
    assert "error: README.md is stale: run `make generate`" in capsys.readouterr().out


def test_readme_without_markers_is_one_line_error():
    with pytest.raises(ConfigError, match="^README.md: expected the marker comments .*, got none$"):
        config_generate.readme_text("# title\n")


def test_tfvars_check_reports_a_bad_value_in_one_line(repo_copy, capsys):
    dev = repo_copy / "env_files" / "dev_env.tfvars"
    dev.write_text(dev.read_text().replace('user_id = "a12345"', 'user_id = "a 1"'))
    assert config_generate.main(["--check"], root=repo_copy) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert f"error: {dev}: variable 'user_id': expected a user id" in error


def test_every_variable_is_declared_once_with_the_schema_regexes():
    text = config_generate.variables_tf()
    for variable in variable_schema():
        assert text.count(f'variable "{variable.name}" {{') == 1, variable.name
    for name, pattern in PATTERNS.items():
        assert f'"{pattern}"' in text, name


def test_variables_tf_is_terraform_fmt_clean(tmp_path, terraform_bin):
    (tmp_path / "variables.tf").write_text(config_generate.variables_tf())
    result = subprocess.run(
        [terraform_bin, "fmt", "-check", "-diff", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": "/dev/null", "PATH": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr


@dataclass(frozen=True, kw_only=True)
class ForkConfig(EnvConfig):
    """What a fork writes to add a variable: one field."""

    team: str = var(
        "Team that owns the pipelines.", matches("^[a-z]+$", "a team name"), default="ml"
    )


def test_a_variable_added_to_the_schema_is_declared_validated_and_read(tmp_path, terraform_bin):
    text = config_generate.variables_tf(ForkConfig)
    block = text[text.index('variable "team" {') :]
    assert block.startswith(
        'variable "team" {\n'
        '  description = "Team that owns the pipelines."\n'
        "  type        = string\n"
        '  default     = "ml"\n'
        "  nullable    = false\n\n"
        "  validation {\n"
        '    condition     = can(regex("^[a-z]+$", var.team))\n'
        '    error_message = "Expected team to be a team name (matching ^[a-z]+$)."\n'
        "  }\n}\n"
    )
    # Terraform refuses a bad value with the generated block, as the Python reader does.
    (tmp_path / "variables.tf").write_text(text)
    (tmp_path / "team.tfvars").write_text(
        (REPO_ROOT / "env_files" / "dev_env.tfvars").read_text() + 'team = "ML Team"\n'
    )
    result = subprocess.run(
        [
            terraform_bin,
            "plan",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-var-file=team.tfvars",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
    )
    assert result.returncode != 0
    assert "Expected team to be a team name" in result.stdout + result.stderr
    with pytest.raises(ConfigError, match="variable 'team': expected a team name"):
        build(ForkConfig, parse_tfvars(tmp_path / "team.tfvars"), "", Source("x", tfvars=True))
