"""What the three pipeline builders share: the step names other components match, the image,
the MSE threshold parameter, where predictions land and the data-quality steps."""

from __future__ import annotations

import functools
import os
import subprocess

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core import image_uris
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.parameters import ParameterFloat
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.assets import REPO_ROOT
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import METADATA_KEYS, OUTPUTS, PARAMETERS, STEPS
from pipeline_scripts.steps import PROCESSING_ROOT, StepFactory

# Step names referenced by event rules, the notifier and the local runtime.
MODEL_QUALITY_STEP = STEPS["model_quality_check"]
# The one step whose failure starts retraining: it runs only when ModelQualityCheck succeeded
# and measured an MSE above the threshold on enough labels. A crash or bad input fails
# ModelQualityCheck itself, which retrains nothing.
MODEL_QUALITY_FAILED_STEP = STEPS["model_quality_failed"]
# The same for labels that arrive later (Mode=evaluate): a step name is unique in a pipeline,
# and a step after both branches of a ConditionStep would never run (it depends on a step of
# the branch not taken), so the evaluation branch has its own check, gate and Fail step.
LABELS_QUALITY_STEP = STEPS["labels_quality_check"]
LABELS_QUALITY_FAILED_STEP = STEPS["labels_quality_failed"]
MODE_GATE_STEP = STEPS["mode_gate"]
DATA_QUALITY_STEP = STEPS["data_quality_check"]
REGISTER_STEP = "RegisterModel"
COMPARE_STEP = STEPS["compare_with_newest"]
NOVELTY_STEP = STEPS["novelty_check"]
FINGERPRINT_KEY = METADATA_KEYS["fingerprint"]  # code/model_resolver reads it too
# Processing output names, in the S3 paths the notifier and lambda.tf's policies read.
DQ_OUTPUT, MQ_OUTPUT = OUTPUTS["data_quality_results"], OUTPUTS["model_quality_results"]

MSE_JSON_PATH = "regression_metrics.mse.value"
PARTIALS_DIR = f"{PROCESSING_ROOT}/output/partials"  # sharded data-quality steps write here

ATTRIBUTIONS_KEY = METADATA_KEYS["attributions"]  # code/model_resolver reads it too
MODEL_CARD_KEY = METADATA_KEYS["model_card"]  # the notifier links it in the e-mail


def current_git_commit() -> str:
    """The commit the definitions are built from, recorded on every model version."""
    if os.environ.get("CI_COMMIT_SHA"):
        return os.environ["CI_COMMIT_SHA"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def image_uri(config: ProjectConfig) -> str:
    images = config.settings.images
    return _retrieve_image_uri(
        images.framework,
        config.env.region,
        images.framework_version,
        images.py_version,
        config.settings.training.instance_type,
    )


@functools.cache
def _retrieve_image_uri(
    framework: str, region: str, version: str, py_version: str, instance_type: str
) -> str:
    # A lookup in the SDK's bundled image tables, ~0.08 s of CPU each (it resolves the SDK's
    # config on every call); a render needs the same URI four times.
    return image_uris.retrieve(
        framework=framework,
        region=region,
        version=version,
        py_version=py_version,
        instance_type=instance_type,
    )


def mse_threshold(config: ProjectConfig) -> ParameterFloat:
    return ParameterFloat(
        PARAMETERS["mse_threshold"], default_value=float(config.env.accuracy_mse_threshold)
    )


def predictions_uri(config: ProjectConfig, batch_id) -> Join:
    """Where a batch's predictions land: <bucket>/<bucket_prefix>/predictions/<batch id>/,
    one `<batch file>.out` of `record_id,prediction` lines. Outside the inference prefix, so
    writing them starts nothing; a re-uploaded batch (same id) replaces its predictions."""
    return Join(on="/", values=[config.env.s3_base_uri, "predictions", batch_id])


def data_quality_steps(
    steps: StepFactory,
    config: ProjectConfig,
    name: str,
    mode: str,
    data,
    *,
    inputs: dict | None = None,
    arguments: list | None = None,
    property_files: list | None = None,
) -> list[ProcessingStep]:
    """The data-quality step `name` (the last step returned, writing output data_quality).

    With data_quality.instance_count N > 1 a step `<name>Shards` runs first on N instances,
    each profiling its share of the data objects (ShardedByS3Key) into partial statistics, and
    `name` merges them (--mode merge) into the files one pass would have written; with 1 the
    step is exactly the single-instance step.
    """
    count = config.settings.data_quality.instance_count
    data_input = {"data": data}
    mode_arguments = ["--mode", mode]
    shard_steps = []
    if count > 1:
        shards = steps.processing(
            f"{name}Shards",
            "data_quality.py",
            inputs=data_input,
            outputs=["partials"],
            arguments=["--mode", mode, "--shard", "--output-dir", PARTIALS_DIR],
            instance_count=count,
            sharded_inputs=["data"],
        )
        shard_steps = [shards]
        partials = output_uri(shards, "partials")
        data_input = {"partials": partials}
        mode_arguments = ["--mode", "merge"]
    final = steps.processing(
        name,
        "data_quality.py",
        inputs={**data_input, **(inputs or {})},
        outputs=[DQ_OUTPUT],
        arguments=[*mode_arguments, *data_quality_arguments(config), *(arguments or [])],
        property_files=property_files or (),
    )
    return [*shard_steps, final]


def data_quality_arguments(config: ProjectConfig) -> list[str]:
    dq = config.settings.data_quality
    return [
        "--output-dir", f"{PROCESSING_ROOT}/output/{DQ_OUTPUT}",
        "--comparison-threshold", str(dq.comparison_threshold),
        "--datatype-check-threshold", str(dq.datatype_check_threshold),
        "--domain-content-threshold", str(dq.domain_content_threshold),
        "--drift-alpha", str(dq.drift_alpha),
        "--drift-min-shift-sd", str(dq.drift_min_shift_sd),
        "--drift-min-rows", str(dq.drift_min_rows),
    ]  # fmt: skip


def output_uri(step, output_name):
    """The S3 URI a processing step's output `output_name` is uploaded to."""
    return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri
