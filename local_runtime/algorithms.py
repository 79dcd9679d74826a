"""SageMaker algorithm images: the rules the service applies to them that the API model does not
express.

SageMaker treats the sagemaker-xgboost framework image as one of its own algorithms, in script
mode too: CreateTrainingJob and CreateHyperParameterTuningJob refuse MetricDefinitions for it
with "You can't override the metric definitions for Amazon SageMaker algorithms. Please retry
the request without specifying metric definitions." (ValidationException; awslabs/mlspace
backend/src/ml_space_lambda/training_job/lambda_functions.py strips them for that reason, and
its tests quote the message). The image's metrics are its built-in ones instead, scraped with
the container's own regexes: aws/sagemaker-xgboost-container
src/sagemaker_xgboost_container/algorithm_mode/metrics.py (commit cb8df91) defines
`validation:<metric>` with `.*\\[[0-9]+\\].*#011validation-<metric>:(\\S+)` for every metric of
constants/xgb_constants.py. The "#011" is how the log reaches the metric parser: a tab as
syslog's octal escape, so the runtime matches those regexes against the log with tabs written
as #011.
"""

from __future__ import annotations

# constants/xgb_constants.py XGB_MAXIMIZE_METRICS + XGB_MINIMIZE_METRICS (commit cb8df91).
XGB_MAXIMIZE_METRICS = (
    *("accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map"),
    *("ndcg", "precision", "r2", "recall", "precision_macro", "precision_micro"),
    *("recall_macro", "recall_micro"),
)
XGB_MINIMIZE_METRICS = (
    *("aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik"),
    *("interval-regression-accuracy", "logloss", "mae", "mape", "merror", "mlogloss", "mphe"),
    *("mse", "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik"),
)
XGBOOST_METRIC_DEFINITIONS = tuple(
    {"Name": f"validation:{name}", "Regex": f".*\\[[0-9]+\\].*#011validation-{name}:(\\S+)"}
    for name in (*XGB_MAXIMIZE_METRICS, *XGB_MINIMIZE_METRICS)
)
ALGORITHM_REPOSITORIES = {"sagemaker-xgboost": XGBOOST_METRIC_DEFINITIONS}
METRIC_OVERRIDE_ERROR = (
    "ValidationException: You can't override the metric definitions for Amazon SageMaker "
    "algorithms. Please retry the request without specifying metric definitions."
)


def repository(image_uri: str) -> str:
    """`sagemaker-xgboost` of <account>.dkr.ecr.<region>.amazonaws.com/sagemaker-xgboost:3.0-5."""
    path = image_uri.split("/", 1)[-1]
    return path.split("@", 1)[0].split(":", 1)[0]


def builtin_metrics(image_uri: str) -> tuple[dict, ...] | None:
    """The image's built-in metric definitions, or None when it is not a SageMaker algorithm."""
    return ALGORITHM_REPOSITORIES.get(repository(image_uri or ""))


def metric_definitions(algorithm_specification: dict) -> list[dict]:
    """What SageMaker scrapes for a job: an algorithm's built-in metrics, else the request's."""
    builtin = builtin_metrics(algorithm_specification.get("TrainingImage", ""))
    if builtin is not None:
        return list(builtin)
    return list(algorithm_specification.get("MetricDefinitions", []))


def check_metric_override(algorithm_specification: dict) -> str | None:
    """The service's refusal when a request overrides an algorithm's metric definitions."""
    image = algorithm_specification.get("TrainingImage", "")
    if builtin_metrics(image) is not None and algorithm_specification.get("MetricDefinitions"):
        return METRIC_OVERRIDE_ERROR
    return None


def as_cloudwatch_text(log_text: str) -> str:
    """The log as SageMaker's metric parser reads it: tabs as syslog's #011."""
    return log_text.replace("\t", "#011")
