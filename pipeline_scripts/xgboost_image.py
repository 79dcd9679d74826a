"""The SageMaker XGBoost image's built-in metrics: one place for the definitions, the tests and
the local runtime.

SageMaker treats the sagemaker-xgboost image as a SageMaker algorithm even in script mode:
CreateTrainingJob and CreateHyperParameterTuningJob reject MetricDefinitions for it with
"You can't override the metric definitions for Amazon SageMaker algorithms. Please retry the
request without specifying metric definitions." (awslabs/mlspace strips them for this reason:
backend/src/ml_space_lambda/training_job/lambda_functions.py and its unit test). The image's
own metrics are scraped instead; a tuning objective names one of them
(docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-metrics-variables.html,
"Use a built-in algorithm for training"; .../xgboost-tuning.html lists validation:rmse,
Minimize).

The regexes are the container's (aws/sagemaker-xgboost-container,
src/sagemaker_xgboost_container/algorithm_mode/metrics.py, commit cb8df91):
    ".*\\[[0-9]+\\].*#011validation-{metric}:(\\S+)"
They match xgboost's evaluation line "[i]<TAB>train-rmse:x<TAB>validation-rmse:y"
(xgboost.callback.EvaluationMonitor, which the container's algorithm mode also uses:
src/sagemaker_xgboost_container/callback.py get_callbacks) as the job log records it: the log
pipeline escapes control characters syslog-style, "#" plus three octal digits, so a tab reads
"#011" (rsyslog $EscapeControlCharactersOnReceive and $ControlCharacterEscapePrefix "#",
www.rsyslog.com/doc/configuration/input_directives/). as_logged() applies that escaping.
"""

from __future__ import annotations

import re

IMAGE_REPOSITORY = "sagemaker-xgboost"

# aws/sagemaker-xgboost-container src/sagemaker_xgboost_container/constants/xgb_constants.py
# (XGB_MINIMIZE_METRICS, XGB_MAXIMIZE_METRICS).
MINIMIZE = (
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik",
    "interval-regression-accuracy", "logloss", "mae", "mape", "merror", "mlogloss", "mphe",
    "mse", "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik",
)  # fmt: skip
MAXIMIZE = (
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map",
    "ndcg", "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro",
    "recall_micro",
)  # fmt: skip

# Metric name -> regex, exactly as the container defines them.
BUILTIN_METRICS = {
    f"validation:{metric}": f".*\\[[0-9]+\\].*#011validation-{metric}:(\\S+)"
    for metric in MAXIMIZE + MINIMIZE
}
VALIDATION_RMSE = "validation:rmse"
BUILTIN_METRIC_DIRECTIONS = {
    **{f"validation:{m}": "Maximize" for m in MAXIMIZE},
    **{f"validation:{m}": "Minimize" for m in MINIMIZE},
}


def is_xgboost_image(image_uri: str) -> bool:
    """True for the SageMaker XGBoost image (<registry>/sagemaker-xgboost:<tag>)."""
    repository = image_uri.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return repository == IMAGE_REPOSITORY


def as_logged(text: str) -> str:
    """Job output as SageMaker's log records it: control characters other than the line break
    become "#" and three octal digits (a tab is "#011")."""
    return re.sub(r"[\x00-\x09\x0b-\x1f\x7f]", lambda m: f"#{ord(m[0]):03o}", text)


def builtin_metric_definitions() -> list[dict]:
    """The image's metrics as MetricDefinitions, for a runtime that scrapes them itself."""
    return [{"Name": name, "Regex": regex} for name, regex in BUILTIN_METRICS.items()]


# CreateTrainingJob / CreateHyperParameterTuningJob's ValidationException text for it
# (quoted by awslabs/mlspace's training-job Lambda test, see the module docstring).
OVERRIDE_ERROR = (
    "You can't override the metric definitions for Amazon SageMaker algorithms. Please retry "
    "the request without specifying metric definitions."
)


def metric_definition_errors(algorithm_specification: dict) -> list[str]:
    """[OVERRIDE_ERROR] when an (Hyper)AlgorithmSpecification sends MetricDefinitions for the
    XGBoost image, as SageMaker rejects it; [] otherwise."""
    image = algorithm_specification.get("TrainingImage", "")
    if is_xgboost_image(image) and algorithm_specification.get("MetricDefinitions"):
        return [OVERRIDE_ERROR]
    return []
