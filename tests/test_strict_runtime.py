"""The strict local runtime: each rule the service enforces, shown by a definition that breaks it
failing in a local run with AWS's own message. Reuses the embedded API and the small
definitions of tests/test_runner.py."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from local_runtime import lambdas
from local_runtime.errors import DefinitionError
from pipeline_scripts.api_model import ApiValidationError, check_request, constraint_errors
from pipeline_scripts.api_model import input_shape as shape_of
from tests import test_runner
from tests.conftest import REPO_ROOT, all_steps
from tests.test_runner import Small

# The embedded API and the small-definition builder of tests/test_runner.py.
aws, small = test_runner.aws, test_runner.small
XGBOOST_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"

METADATA_PATTERN = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"  # botocore: CustomerMetadataValue


def _register(small: Small, name: str, metadata: dict, **extra) -> dict:
    """A RegisterModel step as the SDK renders one, with `metadata` as its
    CustomerMetadataProperties."""
    return {
        "Name": name,
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "strict-runtime-models",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": XGBOOST_IMAGE,
                        "ModelDataUrl": f"s3://{small.bucket}/strict/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": metadata,
            **extra,
        },
    }


@pytest.mark.e2e
def test_a_value_known_only_at_run_time_is_checked_against_the_api_model(small):
    """Defect 1's kind: a metadata value that breaks CreateModelPackage's pattern once the
    expressions are resolved fails RegisterModel with the service's ValidationException."""
    value = {
        "Std:Join": {
            "On": " ",
            "Values": ["s3://b/p/", "(1 objects,", {"Get": "Execution.PipelineExecutionId"}, ")"],
        }
    }
    step = _register(small, "RegisterModel", {"data_version": value})
    execution = small.runner().run_definition(small.definition(step), "strict-metadata")
    record = execution.step("RegisterModel")
    assert record.status == "Failed"
    shown = f"s3://b/p/ (1 objects, {execution.execution_id} )"
    assert record.failure_reason == (
        "ValidationException: 1 validation error detected: "
        f"Value '{shown}' at 'customerMetadataProperties.data_version' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {METADATA_PATTERN}"
    )


@pytest.mark.e2e
def test_the_same_request_with_valid_values_registers(small):
    step = _register(small, "RegisterModel", {"data_version": "s3://b/p/ 1 objects sha256:f2"})
    execution = small.runner().run_definition(small.definition(step), "strict-metadata-ok")
    assert execution.status == "Succeeded", execution.failure_reason


@pytest.mark.e2e
def test_several_violations_are_counted_and_joined_as_aws_does(small):
    step = _register(
        small,
        "RegisterModel",
        {"k" * 129: "ok", "v": "x" * 257},
        ModelApprovalStatus="Accepted",
    )
    execution = small.runner().run_definition(small.definition(step), "strict-many")
    reason = execution.step("RegisterModel").failure_reason
    assert reason.startswith("ValidationException: 3 validation errors detected: Value '")
    assert "at 'modelApprovalStatus' failed to satisfy constraint: Member must satisfy enum " in (
        reason
    )
    assert "Member must have length less than or equal to 128" in reason
    assert "Member must have length less than or equal to 256" in reason
    assert reason.count("; Value ") == 2


@pytest.mark.e2e
def test_a_processing_request_broken_at_run_time_fails_before_the_job_runs(small):
    """An instance count from a parameter: 0 is below CreateProcessingJob's minimum."""
    step = small.processing("Prepare", "write", "data", "1", outputs=["data"])
    count = {"Get": "Parameters.Instances"}
    step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = count
    definition = small.definition(
        step, parameters=[{"Name": "Instances", "Type": "Integer", "DefaultValue": 1}]
    )
    execution = small.runner().run_definition(definition, "strict-count", {"Instances": 0})
    record = execution.step("Prepare")
    assert record.failure_reason == (
        "ValidationException: 1 validation error detected: Value '0' at "
        "'processingResources.clusterConfig.instanceCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    assert not (record.workdir / "processing").exists()  # no job was started


def test_required_members_and_types_are_checked():
    shape = shape_of("CreateModelPackage")
    assert constraint_errors({"ModelApprovalStatus": "Approved"}, shape) == []
    with pytest.raises(ApiValidationError) as raised:
        check_request("StartPipelineExecution", {"PipelineParameters": [{"Name": "x"}]})
    assert str(raised.value) == (
        "ValidationException: 2 validation errors detected: Value null at 'pipelineName' failed "
        "to satisfy constraint: Member must not be null; Value null at "
        "'pipelineParameters.1.member.value' failed to satisfy constraint: Member must not be null"
    )


@pytest.mark.e2e
def test_a_processing_job_that_explains_its_failure_keeps_its_message(small):
    step = small.processing("Check", "explain", "MSE 9.1 exceeds threshold 6.00")
    execution = small.runner().run_definition(small.definition(step), "strict-message")
    assert execution.step("Check").failure_reason == "MSE 9.1 exceeds threshold 6.00"


# -- killing the runner (issue 11 point 11) ---------------------------------------------------

RUNNER_SCRIPT = """
import gc
import sys
from pathlib import Path

gc.disable()  # imports only, as python -m local_runtime does (local_runtime/heap.py)
import boto3

from local_runtime.aws import embedded_aws
from local_runtime.heap import settle_heap
from local_runtime.runner import PipelineRunner

settle_heap()

root, seconds, form = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with embedded_aws("eu-west-1"):
    boto3.client("s3").create_bucket(
        Bucket="kill-test", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    out = "/opt/ml/processing/output/out"
    command = "import sys, time, pathlib; out = sys.argv[1]; " \
        "pathlib.Path(out, 'started').write_text('1'); " \
        f"time.sleep({seconds}); pathlib.Path(out, 'done').write_text('1')"
    # A script file runs forked from the fork server; `python -c` as a fresh process.
    script = root / "hang.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(command)
    entrypoint = ["python3", *([str(script)] if form == "file" else ["-c", command]), out]
    step = {
        "Name": "Hang",
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/any:1",
                "ContainerEntrypoint": entrypoint,
            },
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                "S3Uri": "s3://kill-test/out", "LocalPath": out, "S3UploadMode": "EndOfJob"}}]},
            "ProcessingResources": {"ClusterConfig": {
                "InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}},
            "RoleArn": "arn:aws:iam::123456789012:role/test",
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
    definition = {"Version": "2020-12-01", "Parameters": [], "Steps": [step]}
    execution = PipelineRunner(root).run_definition(definition, "kill-test")
    print(execution.status, execution.sandbox, flush=True)
"""


def _cwd(entry: Path) -> str:
    try:
        return os.readlink(entry / "cwd") + "/"
    except OSError:
        return ""


def _processes_mentioning(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                status = (entry / "stat").read_text().split()[2]
            except OSError:
                continue
            # a forked job runs under the fork server's command line, in the job's folder
            if (marker.encode() in cmdline or _cwd(entry).startswith(marker)) and status != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.e2e
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("mechanism", ["prctl", "watchdog", "fork server"])
def test_killing_the_runner_kills_its_jobs_and_a_rerun_starts_clean(tmp_path, mechanism):
    """PR_SET_PDEATHSIG (Linux), or the watchdog used where prctl is missing (macOS); a job
    forked from the fork server dies with the server, which dies with the runner."""
    root = tmp_path / "runs"
    marker = f"{root}/"
    form = "file" if mechanism == "fork server" else "inline"
    command = [sys.executable, "-c", RUNNER_SCRIPT, str(root)]
    env = {**os.environ, "LOCAL_RUNTIME_JOB_WATCHDOG": "1" if mechanism == "watchdog" else "0"}
    runner = subprocess.Popen(
        [*command, "60", form], cwd=REPO_ROOT, stdout=subprocess.PIPE, env=env
    )
    try:
        deadline = time.monotonic() + 60
        while not list(root.glob("kill-test/*/Hang/processing/output/out/started")):
            assert runner.poll() is None and time.monotonic() < deadline, "job never started"
            time.sleep(0.2)
        (first,) = list(root.glob("kill-test/*"))
        # The job's command line holds its mapped paths under `root`: nobody else's does.
        jobs = set(_processes_mentioning(marker)) - {runner.pid}
        assert jobs, "the job is running"
        forked = {p for p in jobs if b"fork_server.py" in Path(f"/proc/{p}/cmdline").read_bytes()}
        assert bool(forked) == (mechanism == "fork server"), jobs
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _processes_mentioning(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_mentioning(marker) == [], "a job outlived the runner"
    finally:
        runner.kill()
        runner.wait()
        for pid in _processes_mentioning(marker):  # only after a failure: leave nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # The rerun gets a new execution folder; nothing of the killed one is read or overwritten.
    rerun = subprocess.run(
        [*command, "0", form], cwd=REPO_ROOT, capture_output=True, text=True, env=env
    )
    status, sandbox = rerun.stdout.split()
    assert status == "Succeeded", rerun.stderr[-2000:]
    assert Path(sandbox) != first and Path(sandbox).parent == first.parent
    assert (Path(sandbox) / "Hang/processing/output/out/done").is_file()
    assert not (first / "Hang/processing/output/out/done").exists()


# -- Lambda timeouts and payloads (issue 11 point 12) -----------------------------------------

HANG = "import time\n\ndef handler(event, context):\n    time.sleep(90)\n    return {'x': 'late'}\n"


def _deploy(name: str, code: str, timeout: int) -> str:
    """Creates the function in the embedded Lambda API, as Terraform does in AWS."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hang.py", code)
    role = boto3.client("iam").create_role(
        RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    return boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="hang.handler",
        Code={"ZipFile": archive.getvalue()},
        Timeout=timeout,
    )["FunctionArn"]


@pytest.mark.e2e
def test_a_hanging_lambda_step_fails_at_the_deployed_function_timeout(small):
    """A 90 s hang against a 1 s deployed timeout: the step fails after 1 s with Lambda's
    message (the project's functions get lambda.tf's timeouts, 60 s for the resolver)."""
    arn = _deploy("strict-hang", HANG, timeout=1)
    step = {
        "Name": "Resolve",
        "Type": "Lambda",
        "FunctionArn": arn,
        "Arguments": {},
        "OutputParameters": [{"OutputName": "x", "OutputType": "String"}],
    }
    started = time.monotonic()
    execution = small.runner().run_definition(small.definition(step), "strict-hang")
    assert time.monotonic() - started < 15
    reason = execution.step("Resolve").failure_reason
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [0-9a-f-]{36} Task timed out after 1\.00 seconds",
        reason,
    ), reason
    assert execution.status == "Failed"


@pytest.mark.e2e
def test_project_functions_get_the_timeouts_lambda_tf_deploys(aws):
    group = aws.env.model_package_group_name
    arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{group}-model-resolver"
    assert lambdas.function_for(arn).timeout == 60
    arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{group}-data-version"
    assert lambdas.function_for(arn).timeout == 300


@pytest.mark.e2e
def test_an_event_over_lambdas_request_limit_fails_before_the_call(small, aws):
    group = aws.env.model_package_group_name
    step = {
        "Name": "Version",
        "Type": "Lambda",
        "FunctionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{group}-data-version",
        "Arguments": {"s3_uri": "s3://b/p/", "padding": "x" * lambdas.REQUEST_LIMIT},
        "OutputParameters": [{"OutputName": "data_version", "OutputType": "String"}],
    }
    execution = small.runner().run_definition(small.definition(step), "strict-payload")
    assert execution.step("Version").failure_reason == (
        "RequestEntityTooLargeException: Request must be smaller than 6291456 bytes for the "
        "InvokeFunction operation"
    )


# -- SageMaker algorithm images: no metric overrides, built-in metrics --------------------------


def _on_xgboost_image(step: dict, metric_definitions: bool) -> dict:
    """The toy tuning step of tests/test_runner.py on the sagemaker-xgboost image, objective
    validation:rmse, with or without its own MetricDefinitions."""
    config = step["Arguments"]["HyperParameterTuningJobConfig"]
    config["HyperParameterTuningJobObjective"]["MetricName"] = "validation:rmse"
    specification = step["Arguments"]["TrainingJobDefinition"]["AlgorithmSpecification"]
    specification["TrainingImage"] = XGBOOST_IMAGE
    if metric_definitions:
        specification["MetricDefinitions"] = [
            {"Name": "validation:rmse", "Regex": r"validation-rmse:(\S+)"}
        ]
    else:
        del specification["MetricDefinitions"]
    return step


def _training_from(tuning: dict, name: str) -> dict:
    """A training step with the tuning step's job definition and one point of its ranges."""
    definition = dict(tuning["Arguments"]["TrainingJobDefinition"])
    static = definition.pop("StaticHyperParameters")
    return {
        "Name": name,
        "Type": "Training",
        "Arguments": {**definition, "HyperParameters": {**static, "x": "0.5", "k": "1"}},
    }


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["Tuning", "Training"])
def test_metric_definitions_on_the_xgboost_image_are_refused_with_the_services_message(small, kind):
    tuning = _on_xgboost_image(
        test_runner._tuning_step(small, "Tune", "Random", 2, 2, "unused"), metric_definitions=True
    )
    step = tuning if kind == "Tuning" else _training_from(tuning, "Train")
    execution = small.runner().run_definition(small.definition(step), f"strict-{kind.lower()}")
    assert execution.step(step["Name"]).failure_reason == (
        "ValidationException: You can't override the metric definitions for Amazon SageMaker "
        "algorithms. Please retry the request without specifying metric definitions."
    )


@pytest.mark.e2e
def test_the_xgboost_image_is_scraped_with_its_built_in_metric_regexes(small):
    tuning = _on_xgboost_image(
        test_runner._tuning_step(small, "Tune", "Random", 2, 2, "unused"), metric_definitions=False
    )
    training = _training_from(tuning, "Train")
    definition = small.definition(tuning, training)
    execution = small.runner().run_definition(definition, "strict-builtin-metrics")
    assert execution.status == "Succeeded", execution.failure_reason
    # x = 0.5, k = 1: (0.5 - 0.3) ** 2 + 0.1, logged as "[0]\ttrain-rmse:1.5\tvalidation-rmse:…"
    assert execution.step("Train").metrics["validation:rmse"] == pytest.approx(0.14)
    best = execution.step("Tune").properties["BestTrainingJob"]
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    assert objective["MetricName"] == "validation:rmse"
    tuned = best["TunedHyperParameters"]
    expected = (float(tuned["x"]) - 0.3) ** 2 + int(tuned["k"]) / 10
    assert objective["Value"] == pytest.approx(expected)


# -- step caching by AWS's cache keys --------------------------------------------------------


@pytest.mark.e2e
def test_a_cached_step_reuses_the_earlier_result_until_a_key_attribute_changes(small):
    def definition(environment: str, expire: str = "P30D") -> dict:
        step = small.processing(
            "Prepare",
            "write",
            "data",
            "1",
            outputs=["data"],
            CacheConfig={"Enabled": True, "ExpireAfter": expire},
        )
        step["Arguments"]["Environment"] = {"MODE": environment}
        return small.definition(step)

    runner = small.runner()
    first = runner.run_definition(definition("a"), "strict-cache")
    second = runner.run_definition(definition("a"), "strict-cache")
    assert first.step("Prepare").cache_hit_source is None
    hit = second.step("Prepare")
    assert hit.status == "Succeeded" and hit.cache_hit_source == first.execution_arn
    # The earlier job's outputs and name, even though the output path holds the execution id.
    assert (
        hit.outputs == first.step("Prepare").outputs
        and hit.job_name == first.step("Prepare").job_name
    )
    assert not (hit.workdir / "processing").exists()  # nothing ran
    assert "cache hit: reusing" in hit.log_path.read_text()

    changed = runner.run_definition(definition("b"), "strict-cache")  # Environment is a key
    assert changed.step("Prepare").cache_hit_source is None
    expired = runner.run_definition(definition("a", expire="PT0S"), "strict-cache")
    assert expired.step("Prepare").cache_hit_source is None
    other = runner.run_definition(definition("a"), "strict-cache-other-pipeline")
    assert other.step("Prepare").cache_hit_source is None


@pytest.mark.e2e
def test_an_invalid_expire_after_is_refused_before_anything_runs(small):
    step = small.processing("Prepare", "write", "data", "1", CacheConfig={"Enabled": True})
    step["CacheConfig"]["ExpireAfter"] = "30 days"
    with pytest.raises(DefinitionError, match=r"ExpireAfter = '30 days' .*ISO 8601 duration"):
        small.runner().run_definition(small.definition(step), "strict-expiry")


def _model_location(definition: dict, base: str, execution_scoped: bool) -> dict:
    """The rendered HPO definition with the tuning output under `base`, with or without the
    execution id, and the two consumers of the best model (EvaluateModel's 'model' input and
    RegisterModel's ModelDataUrl) joined from the same parts, as the rendering did when defect 3
    was found. Also takes out what the `defects` branch fixes (defects 1 and 2), so that this
    test shows caching alone."""
    definition = json.loads(json.dumps(definition))
    steps = {s["Name"]: s for s in all_steps(definition)}
    scope = [{"Get": "Execution.PipelineExecutionId"}] if execution_scoped else []
    prefix = [base, *scope, "TuneModel", "models"]
    best = {"Get": "Steps.TuneModel.BestTrainingJob.TrainingJobName"}
    model = {"Std:Join": {"On": "/", "Values": [*prefix, best, "output", "model.tar.gz"]}}
    job = steps["TuneModel"]["Arguments"]["TrainingJobDefinition"]
    job["OutputDataConfig"]["S3OutputPath"] = {"Std:Join": {"On": "/", "Values": prefix}}
    job["AlgorithmSpecification"].pop("MetricDefinitions", None)  # defect 2
    register = steps["RegisterModel"]["Arguments"]
    rendered_model = register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]

    def relocate(value):
        """Every consumer of the best model (evaluation, registration, integrity, the
        champion fallback) reads it from the location under test."""
        if value == rendered_model:
            return model
        if isinstance(value, dict):
            return {k: relocate(v) for k, v in value.items()}
        if isinstance(value, list):
            return [relocate(v) for v in value]
        return value

    definition["Steps"] = relocate(definition["Steps"])
    steps = {s["Name"]: s for s in all_steps(definition)}
    register = steps["RegisterModel"]["Arguments"]
    register.get("CustomerMetadataProperties", {}).pop("training_data_version", None)  # defect 1
    return definition


@pytest.mark.e2e
def test_defect_3_a_cached_tuning_step_leaves_an_execution_scoped_model_path_dangling(aws, small):
    """AWS's tuning cache key ignores OutputDataConfig: on a cache hit the best model lives
    under the earlier execution, so a model path joined from the current execution id points
    at nothing (defect 3 as it happens in AWS); a path that does not depend on the execution
    works on a cache hit."""
    env = aws.env
    sagemaker = boto3.client("sagemaker")
    stored = sagemaker.describe_pipeline(PipelineName=env.pipeline_trainwhpo)
    rendered = json.loads(stored["PipelineDefinition"])
    base = f"s3://{env.bucket_name}/strict-runtime/cache"
    runner = small.runner()

    runs = iter(range(1, 100))

    def run(execution_scoped: bool):
        definition = _model_location(rendered, base, execution_scoped)
        # A fingerprint of its own per run (the Lambda step is not cached), so that the
        # duplicate-version check lets each run register and the model location is exercised.
        steps = {s["Name"]: s for s in all_steps(definition)}
        steps["CompareWithNewestVersion"]["Arguments"]["code_and_settings"] = f"run-{next(runs)}"
        return runner.run_definition(
            definition, env.pipeline_trainwhpo, pipeline_arn=stored["PipelineArn"]
        )

    first = run(execution_scoped=False)
    assert first.status == "Succeeded", first.failure_reason
    second = run(execution_scoped=False)
    assert second.status == "Succeeded", second.failure_reason
    for name in ("Preprocess", "TuneModel", "EvaluateModel"):
        assert second.step(name).cache_hit_source == first.execution_arn, name
    container = second.step("RegisterModel").properties["InferenceSpecification"]["Containers"][0]
    bucket, _, key = container["ModelDataUrl"].removeprefix("s3://").partition("/")
    boto3.client("s3").head_object(Bucket=bucket, Key=key)  # the registered model exists

    scoped = run(execution_scoped=True)
    assert scoped.step("TuneModel").cache_hit_source == first.execution_arn
    # Whichever reader of the best model runs first (EvaluateModel, or the integrity Lambda
    # that hashes model.tar.gz) fails on the execution-scoped path; the run stops there.
    missing = f"{base}/{scoped.execution_id}/TuneModel/"
    failed = [
        scoped.step(name)
        for name in ("EvaluateModel", "RecordArtifactIntegrity", "ExplainModel")
        if scoped.step(name).status == "Failed"
    ]
    assert failed and all(missing in step.failure_reason for step in failed), [
        (step.name, step.failure_reason) for step in failed
    ]
    assert all(step.cache_hit_source is None for step in failed)
    assert scoped.status == "Failed"
    assert scoped.step("RegisterModel").status == "NotExecuted"


@pytest.mark.e2e
def test_every_sagemaker_call_to_the_embedded_api_is_validated_as_aws_does(small):
    """UpdateModelPackage (the approval) and any other call: moto would accept this value."""
    sagemaker = boto3.client("sagemaker")
    with pytest.raises(ClientError) as raised:
        sagemaker.update_model_package(
            ModelPackageArn="arn:aws:sagemaker:eu-west-1:123456789012:model-package/g/1",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"data_version": "s3://b/p/ (1 objects)"},
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert str(raised.value) == (
        "An error occurred (ValidationException) when calling the UpdateModelPackage operation: "
        "1 validation error detected: Value 's3://b/p/ (1 objects)' at "
        "'customerMetadataProperties.data_version' failed to satisfy constraint: Member must "
        f"satisfy regular expression pattern: {METADATA_PATTERN}"
    )


@pytest.mark.e2e
def test_training_code_can_come_from_an_input_channel(small):
    """Network-isolated training: the code is a channel, not downloaded by the job; the
    toolkit installs sagemaker_submit_directory from the local path."""
    tuning = _on_xgboost_image(
        test_runner._tuning_step(small, "Tune", "Random", 2, 2, "unused"), metric_definitions=False
    )
    training = _training_from(tuning, "Train")
    arguments = training["Arguments"]
    source = f"s3://{small.bucket}/runner-tests/toy/sourcedir.tar.gz"
    channel = json.loads(json.dumps(arguments["InputDataConfig"][0]))
    channel["ChannelName"] = "code"
    channel["DataSource"]["S3DataSource"]["S3Uri"] = source
    arguments["InputDataConfig"] = [*arguments["InputDataConfig"], channel]
    local = "/opt/ml/input/data/code/sourcedir.tar.gz"
    arguments["HyperParameters"]["sagemaker_submit_directory"] = json.dumps(local)
    execution = small.runner().run_definition(small.definition(training), "strict-code-channel")
    assert execution.status == "Succeeded", execution.failure_reason
    assert execution.step("Train").metrics["validation:rmse"] == pytest.approx(0.14)
