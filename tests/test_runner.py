"""local_runtime.runner against the embedded AWS API (moto server in this process).

End to end: the three pipeline definitions exactly as upserted run the MLOps loop (training,
no approved model, approval, drifted batch failing the model-quality check, retraining with
tuning). Small hand-written definitions pin each behaviour: failure propagation, timeouts,
unsupported fields, concurrency, branches, Lambda and tuning steps, events and isolation of
executions.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import yaml

from local_runtime import events as event_shapes
from local_runtime.aws import embedded_aws
from local_runtime.errors import DefinitionError
from local_runtime.runner import PipelineRunner
from local_runtime.transform import requests, select
from local_runtime.tuning import Range, propose_bayesian
from pipeline_scripts.config import DEFAULT_SETTINGS_FILE, load_config
from pipeline_scripts.deploy import upload_code, upsert_pipeline
from pipeline_scripts.render import render
from tests.conftest import REPO_ROOT, SAMPLE_TRAIN_CSV

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
DRIFT_BATCH = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
ROLE = "arn:aws:iam::123456789012:role/test"
# The envelope of every event SageMaker sends to EventBridge.
EVENT_KEYS = {
    *("version", "id", "detail-type", "source", "account", "time", "region", "resources"),
    "detail",
}
EVENT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """The embedded API with the project's bucket, the training data and the three pipelines
    upserted from a test configuration, for speed: 100 boosting rounds (still well within the
    accuracy threshold) and tuning limited to 4 jobs, 2 at a time."""
    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["training"]["hyperparameters"]["num_round"] = 100
    settings["tuning"].update(max_jobs=4, max_parallel_jobs=2)
    settings_file = tmp_path_factory.mktemp("settings") / "pipelines.yaml"
    settings_file.write_text(yaml.safe_dump(settings))
    config = load_config(DEV_ENV, settings_file=settings_file)
    env = config.env
    with embedded_aws(env.region):
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
        )
        bucket, key = _split(env.train_data_uri)
        s3.upload_file(str(SAMPLE_TRAIN_CSV), bucket, f"{key}{SAMPLE_TRAIN_CSV.name}")
        rendered = render(config)
        upload_code(s3, rendered.code_assets, env.kms_key)
        sagemaker = boto3.client("sagemaker")
        for pipeline in rendered.pipelines:
            upsert_pipeline(sagemaker, pipeline, config, recreate=False)
        yield config


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _read(uri: str) -> bytes:
    bucket, key = _split(uri)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


class Recorder:
    """on_event target: keeps every event, in order."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        json.dumps(event)  # an event must be plain JSON
        self.events.append(event)

    def of(self, execution):
        return [e for e in self.events if execution.execution_arn in e["resources"]]


@pytest.fixture(scope="module")
def loop(aws, tmp_path_factory):
    """The MLOps loop, once: train, infer with nothing approved, approve, infer on a drifted
    batch with ground truth, retrain with tuning."""
    env = aws.env
    recorder = Recorder()
    runner = PipelineRunner(tmp_path_factory.mktemp("runs"), on_event=recorder)
    sagemaker = boto3.client("sagemaker")
    runs = {"recorder": recorder, "runner": runner}
    runs["training"] = runner.start(env.pipeline_train)
    runs["no_approved_model"] = runner.start(env.pipeline_inf)

    version = runs["training"].step("RegisterModel").outputs["model_package_arn"]
    # moto's UpdateModelPackage replaces CustomerMetadataProperties with what the call passes
    # (AWS keeps them), so the approval passes them unchanged.
    metadata = sagemaker.describe_model_package(ModelPackageName=version)
    sagemaker.update_model_package(
        ModelPackageArn=version,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=metadata["CustomerMetadataProperties"],
    )
    runs["approval_event"] = event_shapes.model_package_event(version)

    bucket, key = _split(env.inference_data_uri)
    boto3.client("s3").upload_file(str(DRIFT_BATCH), bucket, f"{key}{DRIFT_BATCH.name}")
    runs["inference"] = runner.start(env.pipeline_inf)
    runs["hpo"] = runner.start(env.pipeline_trainwhpo)
    return runs


# -- the loop, end to end -------------------------------------------------------------------


@pytest.mark.e2e
def test_training_pipeline_registers_a_pending_version_with_metrics_and_baselines(loop, aws):
    execution = loop["training"]
    assert execution.status == "Succeeded", execution.failure_reason
    statuses = {name: step.status for name, step in execution.steps.items()}
    assert statuses.pop("ModelAccuracyBelowThreshold") == "NotExecuted"
    assert set(statuses.values()) == {"Succeeded"}
    assert execution.step("TrainModel").metrics["validation:rmse"] > 0

    sagemaker = boto3.client("sagemaker")
    arn = execution.step("RegisterModel").outputs["model_package_arn"]
    package = sagemaker.describe_model_package(ModelPackageName=arn)
    assert package["ModelPackageGroupName"] == aws.env.model_package_group_name
    evaluation = json.loads(_read(package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    assert evaluation["regression_metrics"]["mse"]["value"] <= aws.env.accuracy_mse_threshold
    baselines = package["DriftCheckBaselines"]["ModelDataQuality"]
    assert "features" in json.loads(_read(baselines["Constraints"]["S3Uri"]))
    assert "features" in json.loads(_read(baselines["Statistics"]["S3Uri"]))
    lineage = package["CustomerMetadataProperties"]
    assert lineage["pipeline_execution_arn"] == execution.execution_arn
    assert lineage["training_data_version"].startswith(aws.env.train_data_uri)
    model = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    with tarfile.open(fileobj=io.BytesIO(_read(model))) as tar:
        assert tar.getnames() == ["xgboost-model"]
    # The execution is in the API too, with its real outcome.
    described = sagemaker.describe_pipeline_execution(PipelineExecutionArn=execution.execution_arn)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    record = json.loads(json.dumps(execution.to_dict()))
    succeeded = {s["name"] for s in record["steps"] if s["status"] == "Succeeded"}
    assert not [s["name"] for s in record["steps"] if s["status"] == "Failed"]
    assert succeeded >= {
        "RecordTrainingDataVersion", "Preprocess", "DataQualityBaseline", "TrainModel",
        "ResolveChampion", "RecordArtifactIntegrity", "EvaluateModel", "CheckModelAccuracy",
        "CompareWithNewestVersion", "CheckModelIsNew", "FindPreviousTrainingData",
        "CompareTrainingData", "ExplainModel", "ModelCard", "RegisterModel",
    }  # fmt: skip
    (train,) = [s for s in record["steps"] if s["name"] == "TrainModel"]
    assert train["duration_seconds"] > 0


@pytest.mark.e2e
def test_registering_emits_the_model_package_state_change(loop):
    execution = loop["training"]
    events = loop["recorder"].events
    registered = [e for e in events if e["detail-type"] == event_shapes.MODEL_PACKAGE_STATE_CHANGE]
    arn = execution.step("RegisterModel").outputs["model_package_arn"]
    first = next(e for e in registered if e["resources"] == [arn])
    assert set(first) == EVENT_KEYS and first["source"] == "aws.sagemaker"
    assert first["detail"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert first["detail"]["ModelPackageArn"] == arn and EVENT_TIME.match(
        first["detail"]["CreationTime"]
    )
    # ... before the step's Succeeded event, as SageMaker creates the package first.
    succeeded = next(
        e
        for e in loop["recorder"].of(execution)
        if e["detail"].get("stepName") == "RegisterModel"
        and e["detail"]["currentStepStatus"] == "Succeeded"
    )
    assert events.index(first) < events.index(succeeded)
    assert loop["approval_event"]["detail"]["ModelApprovalStatus"] == "Approved"
    assert loop["approval_event"]["resources"] == [arn]


@pytest.mark.e2e
def test_without_an_approved_model_the_resolver_fails_the_inference_pipeline(loop, aws):
    execution = loop["no_approved_model"]
    assert execution.status == "Failed"
    step = execution.step("ResolveApprovedModel")
    group = aws.env.model_package_group_name
    assert step.status == "Failed"
    assert step.failure_reason.startswith(
        f"Model package group '{group}' has 1 model version(s) but none is Approved."
    )
    assert execution.step("ModeGate").status == "Succeeded"  # chose scoring (Mode=score)
    others = {s.status for n, s in execution.steps.items() if n not in (step.name, "ModeGate")}
    assert others == {"NotExecuted"}
    assert step.failure_reason in execution.failure_reason


@pytest.mark.e2e
def test_drifted_batch_fails_model_quality_with_the_scripts_reason(loop, aws):
    execution = loop["inference"]
    assert execution.status == "Failed"
    # The check measures the failure; the Fail step it leads to (the retraining trigger) fails.
    check = execution.step("ModelQualityCheck")
    assert check.status == "Succeeded"
    failed = execution.step("ModelQualityBelowThreshold")
    assert failed.status == "Failed"
    reason = failed.failure_reason
    assert re.match(r"MSE \d+\.\d+ exceeds threshold 6\.00 on 1000 records", reason), reason
    assert "data quality:" in reason
    # The script's result line, kept in the check's log.
    assert any(reason in line for line in check.log_path.read_text().splitlines())
    assert reason in execution.failure_reason
    assert execution.step("DataQualityGate").status in ("Succeeded", "NotExecuted")
    assert execution.step("DataQualityViolations").status == "NotExecuted"

    quality = execution.step("DataQualityCheck")
    assert quality.status == "Succeeded"
    summary = json.loads(_read(f"{quality.outputs['data_quality']}/summary.json"))
    assert summary["violation_count"] > 0

    predictions = execution.step("BatchTransform").outputs["predictions"]
    bucket, prefix = _split(predictions)
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]
    # The batch's predictions, and next to them the report retraining reads (batch_report.json).
    keys = sorted(o["Key"].removeprefix(prefix) for o in listed)
    assert keys == ["/batch.csv.out", "/report/batch_report.json"]
    lines = _read(f"{predictions}/batch.csv.out").decode().splitlines()
    assert len(lines) == 1000
    assert [int(line.split(",")[0]) for line in lines] == list(range(1, 1001))  # data lines
    assert all(np.isfinite(float(line.split(",")[1])) for line in lines)

    described = boto3.client("sagemaker").describe_pipeline_execution(
        PipelineExecutionArn=execution.execution_arn
    )
    assert described["PipelineExecutionStatus"] == "Failed"


@pytest.mark.e2e
def test_hpo_pipeline_tunes_within_its_limits_and_registers_a_new_version(loop):
    execution = loop["hpo"]
    assert execution.status == "Succeeded", execution.failure_reason
    tuning = execution.step("TuneModel").properties
    summaries = tuning["TrainingJobSummaries"]
    assert len(summaries) == 4
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values)  # Minimize: best first
    best = tuning["BestTrainingJob"]
    assert best == summaries[0] and best["TrainingJobStatus"] == "Completed"
    assert set(best["TunedHyperParameters"]) == {
        "eta",
        "max_depth",
        "min_child_weight",
        "subsample",
    }
    assert execution.step("TuneModel").metrics == {"validation:rmse": values[0]}

    # EvaluateModel read the best job's model, found through BestTrainingJob.TrainingJobName.
    model_input = execution.step("EvaluateModel").properties["ProcessingInputs"][0]
    assert best["TrainingJobName"] in model_input["S3Input"]["S3Uri"]
    package = boto3.client("sagemaker").describe_model_package(
        ModelPackageName=execution.step("RegisterModel").outputs["model_package_arn"]
    )
    assert package["ModelPackageVersion"] == 2
    assert package["ModelApprovalStatus"] == "PendingManualApproval"


@pytest.mark.e2e
def test_events_follow_every_status_change_in_order_with_the_documented_shape(loop):
    execution = loop["inference"]
    events = loop["recorder"].of(execution)
    for event in events:
        assert set(event) == EVENT_KEYS
        assert event["source"] == "aws.sagemaker" and event["version"] == "0"
        assert event["account"] == "123456789012" and event["region"] == "eu-west-1"
        assert event["resources"] == [execution.pipeline_arn, execution.execution_arn]
        assert EVENT_TIME.match(event["time"])
    first, last = events[0]["detail"], events[-1]["detail"]
    assert events[0]["detail-type"] == event_shapes.EXECUTION_STATUS_CHANGE
    assert first["currentPipelineExecutionStatus"] == "Executing"
    assert "previousPipelineExecutionStatus" not in first and "executionEndTime" not in first
    assert events[-1]["detail-type"] == event_shapes.EXECUTION_STATUS_CHANGE
    assert last["previousPipelineExecutionStatus"] == "Executing"
    assert last["currentPipelineExecutionStatus"] == "Failed"
    assert EVENT_TIME.match(last["executionEndTime"])
    assert last["pipelineExecutionDisplayName"] == execution.display_name

    by_step = {}
    for event in events[1:-1]:
        assert event["detail-type"] == event_shapes.STEP_STATUS_CHANGE
        detail = event["detail"]
        by_step.setdefault(detail["stepName"], []).append(
            (detail.get("previousStepStatus"), detail["currentStepStatus"])
        )
        assert detail["stepType"] == execution.step(detail["stepName"]).type
        assert ("failureReason" in detail) == (detail["currentStepStatus"] == "Failed")
    ran = [n for n, s in execution.steps.items() if s.status != "NotExecuted"]
    assert sorted(by_step) == sorted(ran)
    for name, changes in by_step.items():
        final = execution.step(name).status
        assert changes == [(None, "Starting"), ("Starting", "Executing"), ("Executing", final)]

    failed = next(e["detail"] for e in events if e["detail"].get("currentStepStatus") == "Failed")
    record = execution.step("ModelQualityBelowThreshold")  # the Fail step
    assert failed["stepName"] == record.name and failed["stepType"] == "Fail"
    assert failed["failureReason"] == record.failure_reason
    assert failed["metadata"] == {"fail": {"errorMessage": record.failure_reason}}
    assert EVENT_TIME.match(failed["stepStartTime"]) and EVENT_TIME.match(failed["stepEndTime"])
    check = execution.step("ModelQualityCheck")
    succeeded = next(
        e["detail"]
        for e in events
        if e["detail"].get("stepName") == check.name
        and e["detail"]["currentStepStatus"] == "Succeeded"
    )
    job_arn = succeeded["metadata"]["processingJob"]["arn"]
    assert (
        job_arn
        == f"arn:aws:sagemaker:eu-west-1:123456789012:processing-job/{check.job_name.lower()}"
    )


@pytest.mark.e2e
def test_emitted_events_have_the_keys_of_the_real_event_fixtures(loop):
    """tests/events/ holds real-shaped events the notifier and rules are tested with."""
    fixtures = REPO_ROOT / "tests" / "events"
    pairs = {
        "pipeline_execution_failed.json": (loop["inference"], None, "Failed"),
        "pipeline_step_failed_model_quality_gate.json": (
            loop["inference"],
            "ModelQualityBelowThreshold",
            "Failed",
        ),
        "pipeline_step_succeeded_register_model.json": (
            loop["training"],
            "RegisterModel",
            "Succeeded",
        ),
    }
    checked = 0
    for file_name, (execution, step, status) in pairs.items():
        if not (fixtures / file_name).exists():
            continue
        fixture = json.loads((fixtures / file_name).read_text())
        emitted = next(
            e
            for e in loop["recorder"].of(execution)
            if e["detail"].get("stepName") == step
            and status
            in (
                e["detail"].get("currentStepStatus"),
                e["detail"].get("currentPipelineExecutionStatus"),
            )
        )
        assert set(emitted) == set(fixture)
        assert set(emitted["detail"]) == set(fixture["detail"]) - {"pipelineExecutionDescription"}
        checked += 1
    if not checked:
        pytest.skip("no event fixtures in tests/events/")


# -- small definitions ----------------------------------------------------------------------

TOOL = '''\
"""Test step: write <output> <value> <args...> | copy <input> <output> | fail <message> |
explain <message> (writes /opt/ml/output/message, exits 1) | hang <seconds>."""
import json
import shutil
import sys
from pathlib import Path

root = Path(__file__).resolve().parents[2]  # the processing root, as the project's scripts find it
mode, *rest = sys.argv[1:]
if mode == "write":
    report = {"value": float(rest[1]), "args": rest[2:], "root": str(root)}
    (root / "output" / rest[0] / "report.json").write_text(json.dumps(report))
elif mode == "copy":
    shutil.copytree(root / "input" / rest[0], root / "output" / rest[1], dirs_exist_ok=True)
elif mode == "fail":
    print("reading the input")
    raise ValueError(" ".join(rest))
elif mode == "explain":
    message = root.parent / "output" / "message"  # /opt/ml/output/message, mapped
    message.parent.mkdir(parents=True, exist_ok=True)
    message.write_text(" ".join(rest))
    sys.exit(1)
elif mode == "hang":
    import time
    (root / "output" / "started").parent.mkdir(parents=True, exist_ok=True)
    (root / "output" / "started").write_text("yes")
    time.sleep(float(rest[0]))
'''


@pytest.fixture(scope="module")
def small(aws, tmp_path_factory):
    """Builds small definitions around a test script in the embedded S3."""
    return Small(aws.env.bucket_name, tmp_path_factory.mktemp("small"))


class Small:
    def __init__(self, bucket: str, root: Path):
        self.bucket, self.root = bucket, root
        self.code = f"s3://{bucket}/runner-tests/code/"
        boto3.client("s3").put_object(Bucket=bucket, Key="runner-tests/code/tool.py", Body=TOOL)

    def runner(self, **options) -> PipelineRunner:
        self.recorder = Recorder()
        return PipelineRunner(self.root, on_event=self.recorder, **options)

    def output(self, step: str, name: str) -> dict:
        values = [
            f"s3://{self.bucket}/runner-tests",
            {"Get": "Execution.PipelineName"},
            {"Get": "Execution.PipelineExecutionId"},
            step,
            name,
        ]
        return {"Std:Join": {"On": "/", "Values": values}}

    @staticmethod
    def ref(step: str, name: str) -> dict:
        path = f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"
        return {"Get": path}

    def processing(
        self,
        name,
        *arguments,
        inputs=None,
        outputs=(),
        entrypoint=None,
        max_runtime=60,
        code=True,
        **fields,
    ):
        sources = {**(inputs or {}), **({"code": self.code} if code else {})}
        return {
            "Name": name,
            "Type": "Processing",
            "Arguments": {
                "AppSpecification": {
                    "ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/any:1",
                    "ContainerEntrypoint": entrypoint
                    or ["python3", "/opt/ml/processing/input/code/tool.py"],
                    **({"ContainerArguments": list(arguments)} if arguments else {}),
                },
                "ProcessingInputs": [
                    {
                        "InputName": input_name,
                        "S3Input": {
                            "S3Uri": uri,
                            "LocalPath": f"/opt/ml/processing/input/{input_name}",
                            "S3DataType": "S3Prefix",
                            "S3InputMode": "File",
                        },
                    }
                    for input_name, uri in sources.items()
                ],
                "ProcessingOutputConfig": {
                    "Outputs": [
                        {
                            "OutputName": o,
                            "S3Output": {
                                "S3Uri": self.output(name, o),
                                "LocalPath": f"/opt/ml/processing/output/{o}",
                                "S3UploadMode": "EndOfJob",
                            },
                        }
                        for o in outputs
                    ]
                },
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceCount": 1,
                        "InstanceType": "ml.m5.large",
                        "VolumeSizeInGB": 1,
                    }
                },
                "RoleArn": ROLE,
                "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime},
            },
            **fields,
        }

    @staticmethod
    def definition(*steps, parameters=()) -> dict:
        return {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": list(parameters),
            "Steps": list(steps),
        }


@pytest.mark.e2e
def test_a_step_that_dies_silently_fails_with_aws_generic_reason_and_nothing_downstream_runs(
    small,
):
    """The script raises without writing /opt/ml/output/message: SageMaker's FailureReason is
    its generic AlgorithmError; the traceback is only in the job's log."""
    definition = small.definition(
        small.processing("Prepare", "write", "data", "1", outputs=["data"]),
        small.processing(
            "Clean",
            "fail",
            "column",
            "weight",
            "is",
            "missing",
            inputs={"data": small.ref("Prepare", "data")},
            outputs=["clean"],
        ),
        small.processing(
            "Train",
            "copy",
            "clean",
            "model",
            inputs={"clean": small.ref("Clean", "clean")},
            outputs=["model"],
        ),
        small.processing("Report", "write", "report", "2", outputs=["report"], DependsOn=["Train"]),
    )
    execution = small.runner().run_definition(definition, "failing-pipeline")
    assert execution.status == "Failed"
    clean = execution.step("Clean")
    assert clean.status == "Failed"
    assert clean.failure_reason == "AlgorithmError: See job logs for more information"
    log = clean.log_path.read_text()
    assert "reading the input" in log and "ValueError: column weight is missing" in log
    assert execution.step("Prepare").status == "Succeeded"
    assert execution.step("Train").status == "NotExecuted"
    assert execution.step("Report").status == "NotExecuted"
    assert execution.failure_reason == (
        "Step failure: One or multiple steps failed: Clean: AlgorithmError: See job logs for "
        "more information"
    )
    failed = [e for e in small.recorder.events if e["detail"].get("currentStepStatus") == "Failed"]
    assert [e["detail"]["failureReason"] for e in failed] == [clean.failure_reason]


@pytest.mark.e2e
def test_a_step_over_its_max_runtime_is_killed_and_fails(small):
    step = small.processing("Sleep", entrypoint=["sleep", "30"], max_runtime=2, code=False)
    started = time.monotonic()
    execution = small.runner().run_definition(small.definition(step), "slow-pipeline")
    assert time.monotonic() - started < 20
    record = execution.step("Sleep")
    assert record.status == "Failed" and execution.status == "Failed"
    assert record.failure_reason.startswith("MaxRuntimeExceeded")
    assert "MaxRuntimeInSeconds (2 s)" in record.failure_reason


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.update(Type="EMR"), "step 'Odd': Type 'EMR' is not supported"),
        (
            lambda s: s["Arguments"]["ProcessingInputs"][0]["S3Input"].update(S3InputMode="Pipe"),
            r"step 'Odd': Arguments\.ProcessingInputs\[0\]\.S3Input\.S3InputMode = 'Pipe' is not "
            r"supported by the local runtime \(expected one of 'File'\)",
        ),
        (
            lambda s: s["Arguments"].update(ExperimentConfig={"TrialName": "t"}),
            r"step 'Odd': field Arguments\.ExperimentConfig is not supported by the local runtime",
        ),
        (
            lambda s: s["Arguments"]["ProcessingResources"]["ClusterConfig"].update(
                InstanceCount=2
            ),
            r"step 'Odd': Arguments\.ProcessingResources\.ClusterConfig\.InstanceCount = 2",
        ),
        (lambda s: s.update(DependsOn=["Ghost"]), "step 'Odd': depends on unknown step"),
    ],
)
def test_unsupported_step_types_and_fields_are_refused_before_anything_runs(small, change, message):
    step = small.processing("Odd", "write", "out", "1", outputs=["out"])
    change(step)
    with pytest.raises(DefinitionError, match=message):
        small.runner().run_definition(small.definition(step), "refused-pipeline")
    assert not (small.root / "refused-pipeline").exists()
    assert small.recorder.events == []


@pytest.mark.e2e
def test_independent_steps_overlap_and_a_dependent_step_waits_for_both(small):
    def sleeper(name, **fields):
        return small.processing(name, entrypoint=["sleep", "0.5"], code=False, **fields)

    definition = small.definition(sleeper("A"), sleeper("B"), sleeper("C", DependsOn=["A", "B"]))
    execution = small.runner(max_workers=2).run_definition(definition, "parallel-pipeline")
    a, b, c = (execution.step(n) for n in "ABC")
    assert execution.status == "Succeeded"
    assert a.start_time < b.end_time and b.start_time < a.end_time  # they overlapped
    assert c.start_time >= max(a.end_time, b.end_time)

    serial = small.runner(max_workers=1).run_definition(definition, "parallel-pipeline")
    a, b = serial.step("A"), serial.step("B")
    assert a.end_time <= b.start_time or b.end_time <= a.start_time


@pytest.mark.e2e
def test_conditions_choose_a_branch_and_a_fail_step_fails_with_its_message(small):
    report = {"Get": "Steps.Measure.PropertyFiles.Report"}
    value = {"Std:JsonGet": {"PropertyFile": report, "Path": "value"}}
    threshold = {"Get": "Parameters.Threshold"}
    definition = small.definition(
        small.processing(
            "Measure",
            "write",
            "report",
            "4.25",
            outputs=["report"],
            PropertyFiles=[
                {"PropertyFileName": "Report", "OutputName": "report", "FilePath": "report.json"}
            ],
        ),
        {
            "Name": "Gate",
            "Type": "Condition",
            "Arguments": {
                "Conditions": [
                    {"Type": "LessThanOrEqualTo", "LeftValue": value, "RightValue": threshold}
                ],
                "IfSteps": [small.processing("Publish", "write", "out", "1", outputs=["out"])],
                "ElseSteps": [
                    {
                        "Name": "TooHigh",
                        "Type": "Fail",
                        "Arguments": {
                            "ErrorMessage": {
                                "Std:Join": {
                                    "On": " ",
                                    "Values": ["value", value, "exceeds", threshold],
                                }
                            }
                        },
                    }
                ],
            },
        },
        parameters=[{"Name": "Threshold", "Type": "Float", "DefaultValue": 5.0}],
    )
    runner = small.runner()
    passed = runner.run_definition(definition, "gated-pipeline")
    assert passed.status == "Succeeded"
    assert passed.step("Gate").outputs == {"outcome": True}
    assert passed.step("Publish").status == "Succeeded"
    assert passed.step("TooHigh").status == "NotExecuted"

    failed = runner.run_definition(definition, "gated-pipeline", {"Threshold": "3.5"})
    assert failed.parameters == {"Threshold": 3.5}
    assert failed.step("Gate").metadata == {"condition": {"outcome": "False"}}
    assert failed.step("Publish").status == "NotExecuted"
    assert failed.step("TooHigh").status == "Failed"
    assert failed.step("TooHigh").failure_reason == "value 4.25 exceeds 3.5"
    assert failed.status == "Failed" and failed.failure_reason == "value 4.25 exceeds 3.5"


@pytest.mark.e2e
def test_commands_get_execution_variables_and_paths_mapped_into_the_sandbox(small):
    step = small.processing(
        "Echo",
        "write",
        "out",
        "1",
        {"Get": "Execution.PipelineExecutionId"},
        {"Get": "Execution.ProcessingJobName"},
        {"Std:Join": {"On": "=", "Values": ["--threshold", {"Get": "Parameters.Threshold"}]}},
        "/opt/ml/processing/input/code/tool.py",
        outputs=["out"],
    )
    parameters = [{"Name": "Threshold", "Type": "Float", "DefaultValue": 5.0}]
    execution = small.runner().run_definition(
        small.definition(step, parameters=parameters), "echo-pipeline"
    )
    record = execution.step("Echo")
    assert record.status == "Succeeded", record.failure_reason
    report = json.loads(_read(f"{record.outputs['out']}/report.json"))
    processing_root = str(record.workdir / "processing")
    assert report["args"] == [
        execution.execution_id,
        record.job_name,
        "--threshold=5.0",
        f"{processing_root}/input/code/tool.py",
    ]
    assert report["root"] == processing_root  # the scripts' default --base-dir rule holds
    assert re.fullmatch(
        rf"pipelines-{execution.execution_id}-Echo-[A-Za-z0-9]{{10}}", record.job_name
    )
    assert record.outputs["out"].endswith(f"/echo-pipeline/{execution.execution_id}/Echo/out")


@pytest.mark.e2e
def test_a_second_execution_never_overwrites_the_first(small):
    definition = small.definition(
        small.processing(
            "Stamp", "write", "out", "1", {"Get": "Execution.PipelineExecutionId"}, outputs=["out"]
        )
    )
    runner = small.runner()
    first = runner.run_definition(definition, "stamp-pipeline")
    second = runner.run_definition(definition, "stamp-pipeline")
    assert first.execution_id != second.execution_id
    assert first.sandbox != second.sandbox and first.sandbox.exists() and second.sandbox.exists()
    for execution in (first, second):
        out = execution.step("Stamp").outputs["out"]
        assert json.loads(_read(f"{out}/report.json"))["args"] == [execution.execution_id]
        local = execution.step("Stamp").workdir / "processing" / "output" / "out" / "report.json"
        assert json.loads(local.read_text())["args"] == [execution.execution_id]


@pytest.mark.e2e
def test_a_failing_event_consumer_changes_nothing_in_the_execution(small, caplog):
    def broken(event):
        raise RuntimeError("router down")

    runner = PipelineRunner(small.root, on_event=broken)
    step = small.processing("Solo", "write", "out", "1", outputs=["out"])
    execution = runner.run_definition(small.definition(step), "broken-consumer")
    assert execution.status == "Succeeded"
    assert "on_event failed" in caplog.text and "router down" in caplog.text


def _lambda_step(name: str, function: str, arguments: dict, outputs: list[str]) -> dict:
    return {
        "Name": name,
        "Type": "Lambda",
        "FunctionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{function}",
        "Arguments": arguments,
        "OutputParameters": [{"OutputName": o, "OutputType": "String"} for o in outputs],
    }


@pytest.mark.e2e
def test_lambda_steps_call_the_handler_in_process(small, aws):
    data = f"s3://{small.bucket}/runner-tests/lambda-data/"
    bucket, key = _split(data)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{key}a.csv", Body=b"x\n1\n")
    group = aws.env.model_package_group_name
    definition = small.definition(
        _lambda_step("Version", f"{group}-data-version", {"s3_uri": data}, ["data_version"]),
        small.processing(
            "Use",
            "write",
            "out",
            "1",
            {"Get": "Steps.Version.OutputParameters['data_version']"},
            outputs=["out"],
        ),
    )
    execution = small.runner().run_definition(definition, "lambda-pipeline")
    assert execution.status == "Succeeded", execution.failure_reason
    version = execution.step("Version").outputs["data_version"]
    assert version.startswith(f"{data} objects=1 sha256=")
    assert json.loads(_read(f"{execution.step('Use').outputs['out']}/report.json"))["args"] == [
        version
    ]
    metadata = execution.step("Version").metadata["lambda"]
    assert metadata["outputParameters"] == [{"name": "data_version", "value": version}]
    assert "versioned training data prefix" in execution.step("Version").log_path.read_text()


@pytest.mark.e2e
def test_lambda_errors_fail_the_step_with_their_message(small, aws):
    group = aws.env.model_package_group_name
    empty = f"s3://{small.bucket}/runner-tests/nothing-here/"
    step = _lambda_step("Version", f"{group}-data-version", {"s3_uri": empty}, ["data_version"])
    execution = small.runner().run_definition(small.definition(step), "lambda-errors")
    version = execution.step("Version")
    assert version.status == "Failed" and execution.status == "Failed"
    # The handler's exception message, as the step's failure reason.
    assert version.failure_reason.startswith(f"no training data at {empty}: it is not an object")

    step = _lambda_step("Unknown", "someone-elses-function", {}, ["x"])
    execution = small.runner().run_definition(small.definition(step), "lambda-errors")
    assert execution.step("Unknown").failure_reason.startswith(
        "no local handler for Lambda function 'someone-elses-function'"
    )


TRAIN = '''\
"""Toy training script: objective = (x - 0.3)^2 + k/10; records what the toolkit gave it."""
import argparse
import json
import os
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("-x", type=float)  # one-letter names arrive as -x, the toolkit's rule
parser.add_argument("-k", type=int)
parser.add_argument("--label", default="")
args = parser.parse_args()
model = Path(os.environ["SM_MODEL_DIR"])
config = Path(os.environ["SM_INPUT_CONFIG_DIR"])
(model / "contract.json").write_text(json.dumps({
    "argv": sys.argv[1:],
    "env": {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB"))},
    "hyperparameters": json.loads((config / "hyperparameters.json").read_text()),
    "channel": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
    "cwd": os.getcwd(),
}))
objective = (args.x - 0.3) ** 2 + args.k / 10
print(f"objective={objective}")
print(f"[0]\\ttrain-rmse:1.5\\tvalidation-rmse:{objective}")  # as xgboost logs an eval
'''


def _tuning_step(small, name: str, strategy: str, jobs: int, parallel: int, regex: str) -> dict:
    files = {"train.py": TRAIN.encode()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for file_name, body in files.items():
            info = tarfile.TarInfo(file_name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=small.bucket, Key="runner-tests/toy/sourcedir.tar.gz", Body=buffer.getvalue()
    )
    s3.put_object(Bucket=small.bucket, Key="runner-tests/toy/data/train.csv", Body=b"1,2\n")
    static = {
        "label": json.dumps("toy run"),
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(
            f"s3://{small.bucket}/runner-tests/toy/sourcedir.tar.gz"
        ),
    }
    return {
        "Name": name,
        "Type": "Tuning",
        "Arguments": {
            "HyperParameterTuningJobConfig": {
                "Strategy": strategy,
                "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "objective"},
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": jobs,
                    "MaxParallelTrainingJobs": parallel,
                },
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}
                    ],
                    "IntegerParameterRanges": [
                        {"Name": "k", "MinValue": "0", "MaxValue": "3", "ScalingType": "Auto"}
                    ],
                },
                "TrainingJobEarlyStoppingType": "Off",
                "RandomSeed": 7,
            },
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {
                    "TrainingImage": "any",
                    "TrainingInputMode": "File",
                    "MetricDefinitions": [{"Name": "objective", "Regex": regex}],
                },
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {
                            "S3DataSource": {
                                "S3DataType": "S3Prefix",
                                "S3Uri": f"s3://{small.bucket}/runner-tests/toy/data/",
                                "S3DataDistributionType": "FullyReplicated",
                            }
                        },
                    }
                ],
                "OutputDataConfig": {"S3OutputPath": small.output(name, "models")},
                "ResourceConfig": {
                    "InstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                    "VolumeSizeInGB": 1,
                },
                "RoleArn": ROLE,
                "StaticHyperParameters": static,
                "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            },
        },
    }


@pytest.mark.e2e
@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_tuning_runs_training_jobs_in_script_mode_and_ranks_them(small, strategy):
    step = _tuning_step(
        small, "Tune", strategy, jobs=5, parallel=2, regex=r"objective=([0-9.eE+-]+)"
    )
    after = small.processing(
        "After",
        "write",
        "out",
        "1",
        {"Get": "Steps.Tune.BestTrainingJob.TrainingJobName"},
        outputs=["out"],
    )
    execution = small.runner().run_definition(
        small.definition(step, after), f"tune-{strategy.lower()}"
    )
    assert execution.status == "Succeeded", execution.failure_reason
    tuning = execution.step("Tune").properties
    summaries = tuning["TrainingJobSummaries"]
    assert len(summaries) == 5 and tuning["ObjectiveStatusCounters"]["Succeeded"] == 5
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values)
    for summary in summaries:  # each metric is the objective of its own hyperparameters
        x, k = (
            float(summary["TunedHyperParameters"]["x"]),
            int(summary["TunedHyperParameters"]["k"]),
        )
        assert 0 <= x <= 1 and 0 <= k <= 3
        metric = summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        assert metric == pytest.approx((x - 0.3) ** 2 + k / 10, abs=1e-9)
    best = tuning["BestTrainingJob"]["TrainingJobName"]
    after_report = json.loads(_read(f"{execution.step('After').outputs['out']}/report.json"))
    assert after_report["args"] == [best]

    model = execution.step("Tune").outputs["model"]
    assert model.endswith(f"/Tune/models/{best}/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(_read(model))) as tar:
        contract = json.load(tar.extractfile("contract.json"))
    x = summaries[0]["TunedHyperParameters"]["x"]
    k = summaries[0]["TunedHyperParameters"]["k"]
    assert contract["argv"] == ["-k", k, "--label", "toy run", "-x", x]  # sorted by name
    env = contract["env"]
    assert env["TRAINING_JOB_NAME"] == best
    assert json.loads(env["SM_CHANNELS"]) == ["train"]
    assert env["SM_HPS"] == json.dumps(
        {"k": int(k), "label": "toy run", "x": float(x)}, separators=(",", ":")
    )
    assert env["SM_HP_LABEL"] == "toy run" and env["SM_HP_K"] == k
    assert env["SM_CURRENT_HOST"] == "algo-1" and json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert contract["hyperparameters"]["sagemaker_program"] == '"train.py"'
    assert contract["channel"] == ["train.csv"]
    assert contract["cwd"].endswith(f"/Tune/{best}/code")


@pytest.mark.e2e
def test_tuning_without_any_objective_metric_fails_saying_so(small):
    step = _tuning_step(small, "Tune", "Random", jobs=2, parallel=2, regex=r"never=([0-9.]+)")
    execution = small.runner().run_definition(small.definition(step), "tune-no-metric")
    record = execution.step("Tune")
    assert record.status == "Failed"
    assert "reported the objective metric 'objective'" in record.failure_reason
    assert "2 job(s) failed" in record.failure_reason


# -- pure helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", ["0", "a", "b", "c"]),
        ("$[1:]", ["a", "b", "c"]),
        ("$[:-1]", ["0", "a", "b"]),
        ("$[1:3]", ["a", "b"]),
        ("$[0,-1]", ["0", "c"]),
        ("$[2]", ["b"]),
    ],
)
def test_transform_filters_select_csv_fields(path, expected):
    assert select(["0", "a", "b", "c"], path) == expected


def test_transform_batches_respect_the_payload_limit_and_strategy():
    records = ["x" * 9] * 5  # 10 bytes each with the newline
    assert [len(b) for b in requests(records, "MultiRecord", 25, "in.csv")] == [2, 2, 1]
    assert [len(b) for b in requests(records, "SingleRecord", 25, "in.csv")] == [1] * 5
    with pytest.raises(Exception, match="record 1 is 10 bytes, more than MaxPayloadInMB"):
        list(requests(records, "MultiRecord", 5, "in.csv"))


def test_ranges_map_the_unit_interval_with_their_scaling():
    log = Range("eta", False, 0.01, 1.0, "Logarithmic")
    assert log.value(0.0) == pytest.approx(0.01) and log.value(0.5) == pytest.approx(0.1)
    reverse = Range("beta", False, 0.0, 0.99, "ReverseLogarithmic")
    assert reverse.value(0.5) == pytest.approx(0.9)
    depth = Range("depth", True, 3, 10, "Auto")
    assert depth.value(0.0) == 3 and depth.value(1.0) == 10 and isinstance(depth.value(0.4), int)
    for scale in (log, reverse, depth):
        assert scale.unit(scale.value(0.3)) == pytest.approx(0.3, abs=0.08)


def test_bayesian_proposals_move_toward_the_best_region():
    rng = np.random.default_rng(0)
    units = np.array([[0.05], [0.5], [0.95], [0.35]])
    losses = (units[:, 0] - 0.3) ** 2
    proposal = propose_bayesian(rng, units, losses, np.empty((0, 1)))
    assert 0.1 < proposal[0] < 0.5
