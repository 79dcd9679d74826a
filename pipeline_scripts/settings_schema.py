"""The settings of pipeline_scripts/pipelines.yaml, shared by every environment: the part of
the configuration a fork edits, next to env_schema.py.

Each dataclass is one mapping of the file; a field's check (config_checks.py) says what a
value must be, and check_settings() holds the rules across keys. config.py reads the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass
from typing import Literal

from pipeline_scripts.config_checks import between, field
from pipeline_scripts.config_reader import Source


def _iso_duration(value: str) -> str | None:
    # ISO-8601 duration as SageMaker pipeline caching takes it, e.g. P30D, PT12H, P1Y2M.
    ok = re.fullmatch(r"P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(\d+H)?(\d+M)?(\d+S)?)?", value)
    if ok and value not in ("P", "PT") and not value.endswith("T"):
        return None
    return "an ISO-8601 duration such as P30D or PT12H"


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """The one SageMaker framework image used for processing, training and serving."""

    framework: Literal["xgboost"] = field()
    framework_version: str = field(
        lambda v: None if re.fullmatch(r"\d+\.\d+-\d+", v) else "a version such as '3.0-5'"
    )
    py_version: Literal["py3"] = field()


_INSTANCE_TYPE = re.compile(r"ml\.[a-z0-9]+\.[a-z0-9]+")


@dataclass(frozen=True, kw_only=True)
class ComputeSettings:
    """What every job type has: instances and a run-time limit."""

    instance_type: str = field(
        lambda v: None if _INSTANCE_TYPE.fullmatch(v) else "an instance type such as ml.m5.large"
    )
    instance_count: int = field(between(1))
    max_runtime_seconds: int = field(between(1, 432000))


@dataclass(frozen=True, kw_only=True)
class ProcessingSettings(ComputeSettings):
    volume_size_gb: int = field(between(1, 16384))


@dataclass(frozen=True, kw_only=True)
class Hyperparameters:
    """XGBoost hyperparameters, passed to scripts/train.py as --name value flags."""

    num_round: int = field(between(1))
    max_depth: int = field(between(1))
    eta: float = field(between(0, 1, open_low=True))
    subsample: float = field(between(0, 1, open_low=True))
    colsample_bytree: float = field(between(0, 1, open_low=True))
    min_child_weight: float = field(between(0))
    gamma: float = field(between(0))
    # Regression objectives only: the evaluation and model-quality checks compute MSE.
    objective: Literal[
        "reg:squarederror",
        "reg:absoluteerror",
        "reg:pseudohubererror",
        "reg:squaredlogerror",
        "reg:gamma",
        "reg:tweedie",
        "count:poisson",
    ] = field()


@dataclass(frozen=True, kw_only=True)
class TrainingSettings(ProcessingSettings):
    hyperparameters: Hyperparameters = field()


@dataclass(frozen=True, kw_only=True)
class ParameterRange:
    """Search range of one hyperparameter in the tuning job."""

    type: Literal["continuous", "integer"] = field()
    min: float = field()
    max: float = field()
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = field(default="Auto")


@dataclass(frozen=True, kw_only=True)
class TuningSettings:
    strategy: Literal["Bayesian", "Random", "Hyperband", "Grid"] = field()
    objective_type: Literal["Minimize", "Maximize"] = field()
    max_jobs: int = field(between(1))
    max_parallel_jobs: int = field(between(1))
    early_stopping: Literal["Off", "Auto"] = field()
    ranges: dict[str, ParameterRange] = field()


@dataclass(frozen=True, kw_only=True)
class PreprocessingSettings:
    target: str = field(
        lambda v: None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) else "a column name"
    )
    test_fraction: float = field(between(0, 1, open_low=True, open_high=True))
    validation_fraction: float = field(between(0, 1, open_low=True, open_high=True))
    seed: int = field(between(0, 2**32 - 1))


@dataclass(frozen=True, kw_only=True)
class TransformSettings(ComputeSettings):
    max_payload_mb: int = field(between(1, 100))
    max_concurrent_transforms: int = field(between(0))  # 0: the container decides (steps.py)
    batch_strategy: Literal["MultiRecord", "SingleRecord"] = field()


@dataclass(frozen=True, kw_only=True)
class DataQualitySettings:
    """Thresholds of the data-quality check, as in Model Monitor's constraints, and how many
    instances profile the data (> 1: sharded profiling steps, then a merge step)."""

    comparison_threshold: float = field(between(0, 1, open_low=True))
    datatype_check_threshold: float = field(between(0, 1, open_low=True))
    domain_content_threshold: float = field(between(0, 1, open_low=True))
    # Robust drift verdict (scripts/dq/drift_tests.py): family-wise false-alarm rate per batch,
    # smallest mean shift in baseline sd that alarms, rows below which it is "inconclusive".
    drift_alpha: float = field(between(0, 1, open_low=True, open_high=True), default=0.05)
    drift_min_shift_sd: float = field(between(0), default=0.1)
    drift_min_rows: int = field(between(1), default=50)
    instance_count: int = field(between(1, 100), default=1)


@dataclass(frozen=True, kw_only=True)
class RegistrationSettings:
    """How a new model version is registered next to the champion (issue 10 point 5)."""

    # True: a challenger whose test MSE is not below the champion's is registered Rejected.
    reject_if_not_better: bool = field(default=False)


@dataclass(frozen=True, kw_only=True)
class ModelQualitySettings:
    """When a batch's model-quality result may start retraining (README "Retraining")."""

    min_labelled_records: int = field(between(1), default=30)
    retrain_cooldown_minutes: int = field(between(0), default=360)


@dataclass(frozen=True, kw_only=True)
class RetrainingSettings:
    """What the training pipelines train on besides the training data (README "Batches,
    predictions and retraining")."""

    # Labelled batches whose labels arrived within this many days join the training data;
    # 0: the training data only.
    labelled_batches_days: int = field(between(0, 3650), default=30)


@dataclass(frozen=True, kw_only=True)
class ExplanationSettings:
    """Explanations of the inference pipeline (README "Explanations")."""

    # True: ExplainBatch also writes every record's attributions next to its predictions.
    per_record: bool = field(default=False)


@dataclass(frozen=True, kw_only=True)
class BatchSettings:
    """How a batch's records are identified (README "Batches, predictions and retraining")."""

    # "" (default): record_id is the data line in the batch file (1 = first after the header).
    id_column: str = field(
        lambda v: None if re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", v) else "a column name or ''",
        default="",
    )


@dataclass(frozen=True, kw_only=True)
class CachingSettings:
    enabled: bool = field()
    expire_after: str = field(_iso_duration)


@dataclass(frozen=True, kw_only=True)
class RetrySettings:
    """Retry policy of every job step for throttling and capacity errors."""

    max_attempts: int = field(between(1, 20))
    interval_seconds: int = field(between(1))
    backoff_rate: float = field(between(1))


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """Everything in pipelines.yaml."""

    images: ImageSettings = field()
    processing: ProcessingSettings = field()
    training: TrainingSettings = field()
    tuning: TuningSettings = field()
    preprocessing: PreprocessingSettings = field()
    transform: TransformSettings = field()
    data_quality: DataQualitySettings = field()
    model_quality: ModelQualitySettings = field(default=ModelQualitySettings())
    explanations: ExplanationSettings = field(default=ExplanationSettings())
    registration: RegistrationSettings = field(default=RegistrationSettings())
    batch: BatchSettings = field(default=BatchSettings())
    retraining: RetrainingSettings = field(default=RetrainingSettings())
    caching: CachingSettings = field()
    retry: RetrySettings = field()


def check_settings(s: PipelineSettings, src: Source) -> None:
    """Checks across keys of pipelines.yaml."""
    p = s.preprocessing
    if p.test_fraction + p.validation_fraction >= 1:
        expected = f"test_fraction + validation_fraction < 1 (test_fraction is {p.test_fraction})"
        raise src.bad("preprocessing.validation_fraction", expected, p.validation_fraction)

    t = s.transform
    if t.max_concurrent_transforms and t.max_payload_mb * t.max_concurrent_transforms > 100:
        expected = "max_payload_mb * max_concurrent_transforms <= 100 MB (SageMaker's limit)"
        raise src.bad("transform.max_concurrent_transforms", expected, t.max_concurrent_transforms)

    tuning = s.tuning
    if tuning.max_parallel_jobs > tuning.max_jobs:
        expected = f"at most max_jobs ({tuning.max_jobs})"
        raise src.bad("tuning.max_parallel_jobs", expected, tuning.max_parallel_jobs)
    if tuning.strategy == "Grid":
        # SageMaker grid search takes categorical ranges only; these are continuous or integer.
        raise src.bad("tuning.strategy", "Bayesian, Random or Hyperband", tuning.strategy)
    if tuning.strategy == "Hyperband" and tuning.early_stopping != "Off":
        expected = "'Off' with strategy Hyperband (it stops jobs early itself)"
        raise src.bad("tuning.early_stopping", expected, tuning.early_stopping)

    hyperparameters = {f.name: f for f in dataclasses.fields(Hyperparameters)}
    hint_types = typing.get_type_hints(Hyperparameters)
    for name, r in tuning.ranges.items():
        key = f"tuning.ranges.{name}"
        if name not in hyperparameters or hint_types[name] not in (int, float):
            numeric = [n for n, tp in hint_types.items() if tp in (int, float)]
            close = difflib.get_close_matches(str(name), numeric, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise src.error(key, "a numeric hyperparameter of training" + hint, repr(name))
        is_int = hint_types[name] is int
        if (r.type == "integer") != is_int:
            expected = f"type {'integer' if is_int else 'continuous'} for this hyperparameter"
            raise src.bad(f"{key}.type", expected, r.type)
        for bound in ("min", "max"):
            value = getattr(r, bound)
            expected = hyperparameters[name].metadata["check"](value)
            if r.type == "integer" and not isinstance(value, int):
                expected = "an integer"
            if expected is not None:
                raise src.bad(f"{key}.{bound}", expected, value)
        if r.min >= r.max:
            raise src.bad(f"{key}.max", f"a value > min ({r.min})", r.max)
        if r.scaling == "Logarithmic" and r.min <= 0:
            raise src.bad(f"{key}.min", "a value > 0 with Logarithmic scaling", r.min)
        if r.scaling == "ReverseLogarithmic" and (r.type == "integer" or r.max >= 1):
            expected = "a continuous range within [0, 1) with ReverseLogarithmic scaling"
            raise src.bad(f"{key}.scaling", expected, r.scaling)
