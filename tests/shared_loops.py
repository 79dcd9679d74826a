"""Loop runs that several test modules look at, each built once (tests/conftest.py's session
fixtures call these; the tests that use one share an xdist_group, so one worker builds it).

A loop run costs a deployment, a training run and its jobs (tens of CPU-seconds), so scenarios
that fit one after the other in the same embedded AWS share it. The embedded API stops when the
run ends (each test module starts with empty moto state, tests/conftest.py), so a scenario
records what its tests look at while it runs: executions, S3 objects, registry entries, mail.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
TRAIN_DATA = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"


def _settings(path: Path, rounds: int = 30, reject_if_not_better: bool = False) -> Path:
    """pipelines.yaml with small training settings: `rounds` boosting rounds, 2 tuning jobs."""
    from pipeline_scripts.config import DEFAULT_SETTINGS_FILE

    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["training"]["hyperparameters"]["num_round"] = rounds
    settings["tuning"].update(max_jobs=2, max_parallel_jobs=2)
    settings["registration"]["reject_if_not_better"] = reject_if_not_better
    path.write_text(yaml.safe_dump(settings))
    return path


def _s3_object(s3, uri: str) -> dict:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return s3.get_object(Bucket=bucket, Key=key)


def champion_then_batches(tmp: Path) -> dict:
    """One loop run for tests/test_champion.py's and tests/test_batches.py's end-to-end tests:

    1. champion (first part): v1, trained on the first 2000 training rows, is approved; the
       pipelines are redeployed with 2 boosting rounds and registration.reject_if_not_better,
       and v2, trained on the other rows, is compared with v1 and registered Rejected
       (accuracy_mse_threshold is 50 here, so that the weak v2 reaches registration).
    2. batches: the pipelines are redeployed from dev_env.tfvars as it is (threshold 6); two
       batches arrive at once (b2's event twice), then a batch deleted before its run read it.
    3. champion (second part): v1's model.tar.gz is overwritten; the next batch run must fail
       naming it.

    Returns what each test asserts on, recorded at the point of the scenario it belongs to.
    """
    import boto3

    from local_runtime.aws import embedded_aws
    from local_runtime.loop import (
        DEFAULT_BATCH_DATA,
        Loop,
        Options,
        _inbox,
        _mail,
        batch_fields,
        create_project_bucket,
    )
    from local_runtime.router import notifier_environment
    from pipeline_scripts.cli import run as pipeline_cli
    from pipeline_scripts.config import load_config
    from pipeline_scripts.environment import environment

    source_env = DEV_ENV.read_text()
    lenient_env = tmp / "dev_env.tfvars"
    lenient_env.write_text(
        source_env.replace("accuracy_mse_threshold = 6.0", "accuracy_mse_threshold = 50.0")
    )
    settings_file = _settings(tmp / "pipelines.yaml")
    weak_settings = _settings(tmp / "weak.yaml", rounds=2, reject_if_not_better=True)
    config = load_config(DEV_ENV, settings_file=settings_file)
    env = config.env
    lines = TRAIN_DATA.read_text().splitlines()
    (tmp / "first.csv").write_text("\n".join(lines[:2001]) + "\n")
    (tmp / "second.csv").write_text("\n".join([lines[0], *lines[2001:]]) + "\n")
    batch_lines = DEFAULT_BATCH_DATA.read_text().splitlines()
    champion_batch = tmp / "batch.csv"
    champion_batch.write_text("\n".join(batch_lines[:61]) + "\n")
    batches = {"b1": batch_lines[:41], "b2": [batch_lines[0], *batch_lines[41:66]]}  # 40, 25 rows
    for name, rows in batches.items():
        (tmp / f"{name}.csv").write_text("\n".join(rows) + "\n")

    def upsert(env_file: Path, settings: Path) -> None:
        pipeline_cli("upsert", str(env_file), tmp / "pipelines", out=lambda line: None,
                     settings_file=settings)  # fmt: skip

    champion, seen = {"source_env": source_env}, {"config": config, "batches": batches}
    with embedded_aws(env.region):
        s3, sm = boto3.client("s3"), boto3.client("sagemaker")
        create_project_bucket(env)
        topic_arn, mailbox = _inbox(config)
        with environment(**notifier_environment(config, topic_arn)):
            options = Options(str(DEV_ENV), tmp / "out", settings_file=settings_file)
            loop = Loop(config, options, out=lambda line: None)

            # 1. champion versus challenger
            upsert(lenient_env, settings_file)
            loop.upload(tmp / "first.csv", env.train_data_uri)
            loop.drain()
            champion["v1"] = v1 = loop.approve_newest()
            # The pipelines redeployed with 2 rounds and the reject setting (as CI would upsert).
            upsert(lenient_env, weak_settings)
            loop.upload(tmp / "second.csv", env.train_data_uri)
            loop.drain()
            newest = sm.list_model_packages(
                ModelPackageGroupName=env.model_package_group_name,
                SortBy="CreationTime",
                SortOrder="Descending",
            )["ModelPackageSummaryList"][0]
            champion["v2"] = v2 = sm.describe_model_package(
                ModelPackageName=newest["ModelPackageArn"]
            )
            evaluation_uri = v2["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
            champion["report"] = json.loads(_s3_object(s3, evaluation_uri)["Body"].read())
            model = _s3_object(s3, v2["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
            champion["model_sha256"] = hashlib.sha256(model["Body"].read()).hexdigest()
            champion["model_version_id"] = model["VersionId"]

            # 2. two batches at once, then a deleted one, under dev_env.tfvars as it is
            upsert(DEV_ENV, settings_file)
            loop.upload(tmp / "b1.csv", env.inference_data_uri)
            loop.upload(tmp / "b2.csv", env.inference_data_uri)
            duplicate = [e for e in loop.router.events if e["source"] == "aws.s3"][-1]
            loop._on_event(copy.deepcopy(duplicate))  # EventBridge delivered b2's event twice
            loop.drain()
            seen["runs"] = runs = [
                e for e, _ in loop.executions if e.pipeline_name == env.pipeline_inf
            ]
            seen["subjects"] = [m["subject"] for m in _mail(mailbox)]
            loop.upload(tmp / "b1.csv", f"{env.inference_data_uri}gone/")
            deleted = [e for e in loop.router.events if e["source"] == "aws.s3"][-1]["detail"]
            s3.delete_object(Bucket=env.bucket_name, Key=deleted["object"]["key"])
            loop.drain()
            seen["gone"] = loop.executions[-1][0]
            seen["gone_uri"] = f"s3://{env.bucket_name}/{deleted['object']['key']}"
            seen["reports"], seen["predictions"], seen["fields"] = {}, {}, {}
            for run, name in zip(runs, batches, strict=False):
                report = run.steps["PreprocessBatch"].outputs["report"]
                body = _s3_object(s3, f"{report}/batch_report.json")["Body"].read()
                seen["reports"][name] = json.loads(body)
                prefix = f"{env.bucket_prefix}/predictions/{name}/"
                listed = s3.list_objects_v2(Bucket=env.bucket_name, Prefix=prefix)["Contents"]
                # Beside the .out files: report/batch_report.json (what retraining reads).
                listed = [o for o in listed if o["Key"].endswith(".out")]
                seen["predictions"][name] = b"".join(
                    s3.get_object(Bucket=env.bucket_name, Key=o["Key"])["Body"].read()
                    for o in listed
                ).splitlines()
                seen["fields"][name] = batch_fields(run, config)

            # 3. v1 stays the approved one; its model is overwritten after approval.
            model_url = v1["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
            bucket, _, key = model_url.removeprefix("s3://").partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=b"not the approved model")
            loop.upload(champion_batch, env.inference_data_uri)
            loop.drain()
            champion["tampered_model_url"] = model_url
            champion["tampered_run"] = loop.executions[-1][0]
    return {"champion": champion, "batches": seen, "config": config}


def topic_then_bucket_gone(tmp: Path) -> dict:
    """One loop run (`make demo --batch-data F G`: run_loop, small training settings) for two
    faults injected for real in the embedded AWS, one after the other:

    1. tests/test_loop.py: the notification topic is deleted when the demo approves the first
       version, so the approval's e-mail and those of the batch scored next (F, 40 unlabelled
       rows) fail to publish; the loop goes on past the failed deliveries.
    2. tests/test_bad_inputs.py: the data bucket is deleted when F's execution ends, so G's
       upload fails in a way no code anticipates: the loop stops, and still writes summary.json
       (with the error) and report.html.

    Returns the summary, the out folder and the lines the loop printed.
    """
    import os

    import boto3

    from local_runtime.loop import CLEAN_BATCH, Options, run_loop
    from pipeline_scripts.config import load_config

    env = load_config(DEV_ENV).env
    rows = CLEAN_BATCH.read_text().splitlines()[:41]
    unlabelled = "\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n"  # no rings
    batches = (tmp / "batch.csv", tmp / "after.csv")
    for batch in batches:
        batch.write_text(unlabelled)
    inference_ended = f"{env.pipeline_inf} (execution)"
    lines = []

    def out(line: str) -> None:
        lines.append(line)
        if "approving it" in line:
            boto3.client("sns").delete_topic(TopicArn=os.environ["SNS_TOPIC_ARN"])
        elif inference_ended in line and not line.endswith("Executing"):
            bucket = boto3.resource("s3").Bucket(env.bucket_name)
            bucket.object_versions.delete()
            bucket.delete()

    saved = dict(os.environ)  # run_loop sets the notifier's variables for the process
    try:
        summary = run_loop(
            Options(
                env_file=str(DEV_ENV),
                out_dir=tmp / "out",
                batch_data=batches,
                settings_file=_settings(tmp / "pipelines.yaml"),
            ),
            out=out,
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"summary": summary, "out_dir": tmp / "out", "lines": lines}
