"""Retraining learns the drift (issue 10 point 4): what the training pipelines train on.

CollectLabelledBatches (the data-version Lambda, action labelled_batches) copies every batch
whose labels arrived within pipelines.yaml retraining.labelled_batches_days, and those labels,
at their exact S3 versions into a snapshot named by its content, with a lineage manifest;
JoinLabelledBatches (scripts/labelled_batches.py) writes the training data plus the labelled
rows, which Preprocess and CompareTrainingData read instead of TrainingDataUrl, less a seeded
share of those rows held out as `recent`, which EvaluateModel scores challenger and champion on.

Caching: the snapshot's URI is the hash of the exact versions it holds, so the same labelled
set (and the same training data version, an argument) hits the step cache all the way, and a
new labelled set misses from JoinLabelledBatches on. The model fingerprint
(CheckModelIsNew) covers the training data version and the labelled set, so a retrain on
exactly the same data and code registers nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker.core.workflow.functions import Join
from sagemaker.mlops.workflow.lambda_step import LambdaStep
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import DATA_VERSION_OUTPUTS, LABELLED_OUTPUTS
from pipeline_scripts.lambda_steps import DATA_VERSION_LAMBDA
from pipeline_scripts.pipeline_parts import output_uri
from pipeline_scripts.steps import StepFactory

COLLECT_STEP = "CollectLabelledBatches"
JOIN_STEP = "JoinLabelledBatches"
# PreprocessBatch writes its batch_report.json (the batch's URI, S3 version id and ETag) here,
# under the batch's predictions: the one stable place the Lambda finds a labelled batch's
# source (code/training_data_version BATCH_REPORT).
BATCH_REPORT_FOLDER = "report"


def batch_report_uri(predictions) -> Join:
    """<predictions of the batch>/report/: where PreprocessBatch's report output goes."""
    return Join(on="/", values=[predictions, BATCH_REPORT_FOLDER])


@dataclass(frozen=True)
class LabelledTrainingData:
    steps: list  # CollectLabelledBatches, JoinLabelledBatches
    training_uri: object  # the folder Preprocess fits on
    recent_uri: object  # the held-out labelled rows EvaluateModel scores both models on
    data_version: Join  # training data version plus the labelled set: the fingerprint's data
    metadata: dict  # recorded on the registered version


def labelled_training_data(
    steps: StepFactory, config: ProjectConfig, data_url, data_version: LambdaStep
) -> LabelledTrainingData:
    env = config.env
    collect = steps.lambda_step(
        COLLECT_STEP,
        DATA_VERSION_LAMBDA,
        {
            "action": "labelled_batches",
            # The layout the batch dispatcher and the inference pipeline use (README "Batches,
            # predictions and retraining"); lambda.tf grants the Lambda exactly these prefixes.
            "labels_uri": f"{env.s3_base_uri}/labels/",
            "predictions_uri": f"{env.s3_base_uri}/predictions/",
            "snapshot_uri": f"{env.s3_base_uri}/labelled-batches/",
            "days": config.settings.retraining.labelled_batches_days,
            "kms_key": env.kms_key,
        },
        LABELLED_OUTPUTS.values(),
    )
    # After the data version, not beside it: the local runtime runs steps that start together
    # as threads of one process, where creating boto3 clients at once is not thread-safe
    # (boto/boto3 issues 1592 and 2750); in AWS this costs one short Lambda call of latency.
    collect.add_depends_on([data_version])
    found = collect.properties.Outputs
    id_column = config.settings.batch.id_column
    prep = config.settings.preprocessing
    join: ProcessingStep = steps.processing(
        JOIN_STEP,
        "labelled_batches.py",
        inputs={"train": data_url, "snapshot": found[LABELLED_OUTPUTS["snapshot"]]},
        outputs=["training", "recent", "report"],
        arguments=[
            *("--target", prep.target),
            *(("--id-column", id_column) if id_column else ()),
            # The share of the labelled rows held out (not trained on) to compare challenger
            # and champion on recent data (issue 10 point 5), as Preprocess holds out its test.
            *("--test-fraction", str(prep.test_fraction)),
            *("--seed", str(prep.seed)),
            # Part of the step-cache key: new data under the same prefix is a cache miss.
            *("--data-version", data_version.properties.Outputs[DATA_VERSION_OUTPUTS["version"]]),
        ],
    )
    return LabelledTrainingData(
        steps=[collect, join],
        training_uri=output_uri(join, "training"),
        recent_uri=output_uri(join, "recent"),
        data_version=Join(
            on=" + ",
            values=[
                data_version.properties.Outputs[DATA_VERSION_OUTPUTS["version"]],
                found[LABELLED_OUTPUTS["summary"]],
            ],
        ),
        # Valid CustomerMetadataValues: "batches=N sha256=<16 hex>" and an S3 URI of the
        # project's own prefix.
        metadata={
            "labelled_batches": found[LABELLED_OUTPUTS["summary"]],
            "labelled_batches_manifest": found[LABELLED_OUTPUTS["manifest"]],
        },
    )
