"""The training pipelines' model card (issue 13, point 3): a card per version, written before
RegisterModel into the version's artefacts and recorded as metadata `model_card_uri`.

`ResolveChampion` (the model resolver's `champion` action, pipelines.py) says which Approved
version batch inference uses now and where its attributions are; EvaluateModel scores it on
the same test rows (evaluation.json's `champion` block). `ModelCard` runs scripts/model_card.py
on this run's evaluation (champion metrics included), baseline statistics and attributions, the
champion's attributions, the hyperparameters and the lineage.
"""

from __future__ import annotations

from dataclasses import asdict

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.mlops.workflow.lambda_step import LambdaStep
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.contract import CHAMPION_OUTPUTS
from pipeline_scripts.steps import StepFactory

MODEL_CARD_STEP = "ModelCard"
OUTPUT = "model_card"  # holds model_card.md


def hyperparameter_arguments(steps: StepFactory, *, tuning: bool) -> list[str]:
    """--hyperparameter name=value per configured hyperparameter; a tuned one says its range
    (the best training job holds the value it got)."""
    values = {k: str(v) for k, v in asdict(steps.settings.training.hyperparameters).items()}
    if tuning:
        for name, spec in steps.settings.tuning.ranges.items():
            values[name] = f"tuned in [{spec.min}, {spec.max}]"
    return [a for k, v in sorted(values.items()) for a in ("--hyperparameter", f"{k}={v}")]


def model_card_step(
    steps: StepFactory,
    *,
    champion: LambdaStep,
    evaluation_uri,
    statistics_uri,
    attributions_uri,
    model_data_url,
    data_version,
    git_commit: str,
    tuning: bool,
) -> ProcessingStep:
    """scripts/model_card.py -> output `model_card` (model_card.md). *_uri: the files (this
    run's evaluation.json, the baseline's statistics.json, ExplainModel's attributions.json)."""
    found = champion.properties.Outputs
    return steps.processing(
        MODEL_CARD_STEP,
        "model_card.py",
        inputs={
            "evaluation": evaluation_uri,
            "statistics": statistics_uri,
            "attributions": attributions_uri,
            "champion_attributions": found[CHAMPION_OUTPUTS["attributions"]],
        },
        outputs=[OUTPUT],
        arguments=[
            *("--group", steps.env.model_package_group_name),
            *("--git-commit", git_commit),
            *("--data-version", data_version),
            *("--execution-arn", ExecutionVariables.PIPELINE_EXECUTION_ARN),
            *("--model-data-url", model_data_url),
            *("--image-uri", steps.image_uri),
            *("--champion-version", found[CHAMPION_OUTPUTS["version"]]),
            *("--champion-attributions", found[CHAMPION_OUTPUTS["has_attributions"]]),
            *hyperparameter_arguments(steps, tuning=tuning),
        ],
    )
