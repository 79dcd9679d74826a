"""Command line: render, upsert and delete the three pipelines; check the AWS prerequisites.

    python -m pipeline_scripts render --env-file env_files/dev_env.tfvars
    python -m pipeline_scripts upsert --env-file env_files/dev_env.tfvars
    python -m pipeline_scripts delete --env-file env_files/dev_env.tfvars
    python -m pipeline_scripts preflight --env-file env_files/dev_env.tfvars
    python -m pipeline_scripts rollback --env-file env_files/dev_env.tfvars --reason TEXT [--yes]
    python -m pipeline_scripts rollback --env-file env_files/dev_env.tfvars --undo [--yes]
    python -m pipeline_scripts model-card --env-file env_files/dev_env.tfvars --version N

upsert/delete/preflight/rollback talk to whatever endpoint boto3 is configured for: real AWS, or
AWS_ENDPOINT_URL (e.g. the local runtime's embedded AWS API). preflight exits 1 when a
prerequisite is missing, printing what and how to fix it. rollback rejects the Approved
version batch inference uses so the next batch uses the previous one (see rollback.py); it
exits 1, changing nothing, when there is nothing to roll back or undo.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import boto3

from pipeline_scripts.config import DEFAULT_SETTINGS_FILE, ConfigError, load_config
from pipeline_scripts.deploy import delete_pipeline, upload_code, upsert_pipeline
from pipeline_scripts.model_card import ModelCardError, card_for_version_number
from pipeline_scripts.preflight import PreflightFailed, preflight
from pipeline_scripts.render import render
from pipeline_scripts.rollback import (
    DEFAULT_REASON,
    Registry,
    RollbackError,
    check_reason,
    rollback,
    undo,
)

DEFAULT_ENV_FILE = "env_files/dev_env.tfvars"
DEFAULT_OUT_DIR = Path("build/pipelines")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline_scripts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "command", choices=["render", "upsert", "delete", "preflight", "rollback", "model-card"]
    )
    parser.add_argument(
        "--env-file",
        default=DEFAULT_ENV_FILE,
        help=f"the environment's tfvars file (default {DEFAULT_ENV_FILE})",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help=f"where render/upsert write definitions (default {DEFAULT_OUT_DIR})",
    )
    rollback_options = parser.add_argument_group("rollback")
    rollback_options.add_argument(
        "--reason", default=DEFAULT_REASON, help="why: recorded on the model version"
    )
    rollback_options.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollback_options.add_argument("--undo", action="store_true", help="undo the last rollback")
    rollback_options.add_argument(
        "--further",
        action="store_true",
        help="roll back again when the version in use is itself the result of a rollback",
    )
    parser.add_argument(
        "--version", type=int, help="model-card: the version number whose live card to print"
    )
    return parser  # fmt: skip


def run(
    command: str,
    env_file: str,
    out_dir: Path = DEFAULT_OUT_DIR,
    out=print,
    settings_file: Path = DEFAULT_SETTINGS_FILE,
) -> None:
    """Runs one command; `out` receives one line per thing done."""
    config = load_config(env_file, settings_file=settings_file)
    if command == "preflight":
        findings = preflight(config.env)
        for finding in findings:
            out(finding.line())
        if missing := sum(finding.status == "missing" for finding in findings):
            raise PreflightFailed(f"{env_file}: {missing} prerequisite(s) missing, see above")
        return
    if command == "delete":
        sagemaker = boto3.client("sagemaker", region_name=config.env.region)
        for name in (
            config.env.pipeline_train,
            config.env.pipeline_trainwhpo,
            config.env.pipeline_inf,
        ):
            out(f"pipeline {name}: {delete_pipeline(sagemaker, name)}")
        return

    rendered = render(config)
    for pipeline in rendered.pipelines:
        out(f"rendered {pipeline.write(out_dir)}")
    if command == "render":
        return

    s3 = boto3.client("s3", region_name=config.env.region)
    for uri, outcome in upload_code(s3, rendered.code_assets, config.env.kms_key):
        out(f"code {uri}: {outcome}")
    sagemaker = boto3.client("sagemaker", region_name=config.env.region)
    for pipeline in rendered.pipelines:
        outcome = upsert_pipeline(sagemaker, pipeline, config, config.env.recreate_pipelines)
        out(f"pipeline {pipeline.name}: {outcome}")


def run_rollback(args: argparse.Namespace, out=print, settings_file=DEFAULT_SETTINGS_FILE):
    check_reason(args.reason)
    config = load_config(args.env_file, settings_file=settings_file)
    region = config.env.region

    def confirm(question: str) -> bool:
        if args.yes:
            return True
        try:
            return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
        except EOFError:  # no terminal: only --yes confirms
            return False

    try:
        registry = Registry(
            boto3.client("sagemaker", region_name=region),
            boto3.client("s3", region_name=region),
            config.env.model_package_group_name,
        )
        if args.undo:
            undo(registry, args.reason, confirm, out)
        else:
            rollback(registry, args.reason, confirm, out, further=args.further)
    except RollbackError as error:  # say which environment refused
        raise RollbackError(f"{args.env_file}: {error}") from None


def run_model_card(args: argparse.Namespace, out=print, settings_file=DEFAULT_SETTINGS_FILE):
    """Prints the live Markdown card of --version (pipeline_scripts/model_card.py)."""
    if args.version is None:
        raise ModelCardError("model-card: --version N is required (the model version number)")
    config = load_config(args.env_file, settings_file=settings_file)
    region = config.env.region
    out(
        card_for_version_number(
            boto3.client("sagemaker", region_name=region),
            boto3.client("s3", region_name=region),
            config.env.model_package_group_name,
            args.version,
        )
    )


def quiet_sdk() -> None:
    """The SDK logs every field it drops and warns that nothing runs while rendering; both are
    expected here and would bury what the commands print."""
    logging.getLogger().setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("sagemaker", "botocore", "werkzeug")):
            logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"sagemaker\..*")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    quiet_sdk()
    try:
        if args.command == "rollback":
            run_rollback(args)
        elif args.command == "model-card":
            run_model_card(args)
        else:
            run(args.command, args.env_file, args.out_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (PreflightFailed, RollbackError, ModelCardError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
