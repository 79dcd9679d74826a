"""Explanation steps (scripts/explain.py) for the training and inference pipelines.

Each factory returns one processing step built by StepFactory.processing, so image, KMS,
network isolation, tags, retries and per-execution output locations are the same as for every
other processing step. The builders in pipelines.py wire them; nothing here changes another step.

Training pipeline: `ExplainModel` after the model step, beside EvaluateModel (the model's global
importance on the test split plus the train-split baseline sample), its attributions.json
recorded on the model version (metadata `attributions_uri`). Inference pipeline:
`ExplainBatch` after PreprocessBatch (it needs no predictions: contributions sum to them),
beside BatchTransform, reading the version's attributions.json for its baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.contract import OUTPUTS, STEPS
from pipeline_scripts.steps import StepFactory

EXPLAIN_MODEL_STEP = "ExplainModel"
EXPLAIN_BATCH_STEP = STEPS["explain_batch"]
OUTPUT = OUTPUTS["batch_explanations"]  # holds attributions.json
PER_RECORD_OUTPUT = "per_record"  # holds attributions.csv (record_id, features..., bias)


@dataclass(frozen=True)
class ExplainSettings:
    """The arguments of scripts/explain.py (its defaults; see its docstring for the rule)."""

    baseline_rows: int = 2000
    batch_rows: int = 20000
    seed: int = 0
    min_change: float = 0.25
    z: float = 4.0
    min_share: float = 0.02
    per_record: bool = False

    def arguments(self) -> list[str]:
        return [
            "--baseline-rows", str(self.baseline_rows),
            "--batch-rows", str(self.batch_rows),
            "--seed", str(self.seed),
            "--min-change", str(self.min_change),
            "--z", str(self.z),
            "--min-share", str(self.min_share),
        ]  # fmt: skip


def explain_model_step(
    steps: StepFactory,
    *,
    model_data_url,
    transform_uri,
    train_uri,
    test_uri,
    depends_on=None,
    settings: ExplainSettings = ExplainSettings(),
) -> ProcessingStep:
    """Global importance of a new model version: test split, plus the train-split baseline.

    model_data_url: the model.tar.gz; transform_uri: Preprocess's transform.json; train_uri /
    test_uri: Preprocess's train and test outputs. Output `explanations`: attributions.json.
    """
    return steps.processing(
        EXPLAIN_MODEL_STEP,
        "explain.py",
        inputs={
            "model": model_data_url,
            "transform": transform_uri,
            "train": train_uri,
            "test": test_uri,
        },
        outputs=[OUTPUT],
        arguments=["--mode", "model", *settings.arguments()],
        depends_on=depends_on,
    )


def explain_batch_step(
    steps: StepFactory,
    *,
    model_data_url,
    transform_uri,
    baseline_uri,
    batch_uri,
    depends_on=None,
    settings: ExplainSettings = ExplainSettings(),
    per_record_uri=None,
) -> ProcessingStep:
    """Attributions of one scored batch against the model's training baseline.

    model_data_url, transform_uri and baseline_uri belong to the model version in use (the
    resolver's outputs; baseline_uri is the attributions.json its ExplainModel step wrote,
    whose baseline section is reused, so every batch of a version is compared with the same
    baseline and no job re-reads the training data); batch_uri: PreprocessBatch's
    transform_input (record_id, features). Outputs `explanations` (attributions.json) and, with
    settings.per_record, `per_record` (attributions.csv), written to per_record_uri when
    given (next to the batch's predictions) instead of the per-execution location.
    """
    outputs = [OUTPUT, *([PER_RECORD_OUTPUT] if settings.per_record else [])]
    flags = ["--per-record"] if settings.per_record else []
    return steps.processing(
        EXPLAIN_BATCH_STEP,
        "explain.py",
        inputs={
            "model": model_data_url,
            "transform": transform_uri,
            "baseline": baseline_uri,
            "batch": batch_uri,
        },
        outputs=outputs,
        arguments=["--mode", "batch", *settings.arguments(), *flags],
        depends_on=depends_on,
        output_uris={PER_RECORD_OUTPUT: per_record_uri} if per_record_uri is not None else None,
    )
