"""Hyperparameter tuning steps: the configured search over the declared ranges, each trial a
training job run exactly like a training step (training.train).

- Strategy Random: seeded uniform sampling in each range's scaling.
- Strategy Bayesian: the first max(2, MaxParallelTrainingJobs) trials are random (as SageMaker
  starts); after that a Gaussian-process surrogate (scikit-learn, Matern 5/2 kernel plus noise)
  of the objective is fitted to the finished trials, with running trials added at the best value
  seen so far ("constant liar") so parallel proposals differ, and the next point maximises
  expected improvement over 2,000 seeded random candidates.

Ranges are searched in a unit cube: Linear (and Auto) maps it straight to [min, max],
Logarithmic uniformly in log(value), ReverseLogarithmic uniformly in log(1 - value); integer
ranges round. At most MaxParallelTrainingJobs trials run at once, MaxNumberOfTrainingJobs in
all. A trial that fails or never logs the objective metric is a failed trial; the step fails
only when no trial reports the metric. The seed is HyperParameterTuningJobConfig.RandomSeed
(0 if absent); with parallel trials the proposals also depend on which trial finishes first.
"""

from __future__ import annotations

import math
import os
import secrets
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from local_runtime.clock import iso_time, now
from local_runtime.errors import DefinitionError, StepFailed
from local_runtime.jobs import NO_TAGS, Job, StepResult
from local_runtime.schema import ANY, one_of
from local_runtime.training import TRAINING_DEFINITION_FIELDS, metric_names, train

_RANGE = {"Name": ANY, "MinValue": ANY, "MaxValue": ANY, "ScalingType": ANY}
TUNING_FIELDS = {
    "HyperParameterTuningJobConfig": {
        "Strategy": one_of("Bayesian", "Random"),
        "HyperParameterTuningJobObjective": {
            "Type": one_of("Minimize", "Maximize"),
            "MetricName": ANY,
        },
        "ResourceLimits": {"MaxNumberOfTrainingJobs": ANY, "MaxParallelTrainingJobs": ANY},
        "ParameterRanges": {
            "ContinuousParameterRanges": [_RANGE],
            "IntegerParameterRanges": [_RANGE],
        },
        "TrainingJobEarlyStoppingType": one_of("Off"),
        "RandomSeed": ANY,
    },
    "TrainingJobDefinition": TRAINING_DEFINITION_FIELDS,
    "Tags": NO_TAGS,
}
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
CANDIDATES = 2000


@dataclass(frozen=True)
class Range:
    name: str
    integer: bool
    low: float
    high: float
    scaling: str

    def value(self, unit: float):
        """The hyperparameter value at `unit` in [0, 1]."""
        low, high = self.low, self.high
        if self.scaling == "Logarithmic":
            value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low)))
        elif self.scaling == "ReverseLogarithmic":
            value = 1 - math.exp(
                math.log(1 - low) + unit * (math.log(1 - high) - math.log(1 - low))
            )
        else:
            value = low + unit * (high - low)
        value = min(max(float(value), low), high)
        return int(round(value)) if self.integer else value

    def unit(self, value) -> float:
        """Inverse of value(): where a (rounded) value lies in [0, 1]."""
        low, high = self.low, self.high
        if high == low:
            return 0.0
        if self.scaling == "Logarithmic":
            return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
        if self.scaling == "ReverseLogarithmic":
            return (math.log(1 - value) - math.log(1 - low)) / (
                math.log(1 - high) - math.log(1 - low)
            )
        return (value - low) / (high - low)


def parse_ranges(step: str, ranges: dict) -> list[Range]:
    parsed = []
    for kind, integer in (("ContinuousParameterRanges", False), ("IntegerParameterRanges", True)):
        for spec in ranges.get(kind, []):
            where = f"step '{step}': ParameterRanges.{kind} '{spec.get('Name')}'"
            try:
                low, high = float(spec["MinValue"]), float(spec["MaxValue"])
            except (KeyError, TypeError, ValueError):
                raise DefinitionError(f"{where}: MinValue and MaxValue must be numbers") from None
            scaling = spec.get("ScalingType", "Auto")
            if scaling not in SCALINGS or not low <= high:
                raise DefinitionError(
                    f"{where}: ScalingType one of {SCALINGS}, MinValue <= MaxValue"
                )
            if scaling == "Logarithmic" and low <= 0:
                raise DefinitionError(f"{where}: Logarithmic scaling needs MinValue > 0")
            if scaling == "ReverseLogarithmic" and not (low >= 0 and high < 1):
                raise DefinitionError(f"{where}: ReverseLogarithmic scaling needs [0, 1)")
            parsed.append(Range(spec["Name"], integer, low, high, scaling))
    if not parsed:
        raise DefinitionError(f"step '{step}': ParameterRanges declares no range to tune")
    return parsed


@dataclass
class Trial:
    number: int
    name: str
    unit: np.ndarray
    tuned: dict  # hyperparameter -> value
    properties: dict = field(default_factory=dict)
    metric: float | None = None
    failure: str | None = None


def propose_bayesian(rng, units: np.ndarray, losses: np.ndarray, pending: np.ndarray) -> np.ndarray:
    """The candidate with the largest expected improvement (losses: lower is better)."""
    from scipy.stats import norm
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    dims = units.shape[1]
    kernel = ConstantKernel(1.0) * Matern(length_scale=[0.3] * dims, nu=2.5) + WhiteKernel(1e-3)
    x = np.vstack([units, pending]) if len(pending) else units
    y = np.concatenate([losses, np.full(len(pending), losses.min())])
    model = GaussianProcessRegressor(kernel=kernel, normalize_y=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on a handful of points
        model.fit(x, y)
    candidates = rng.random((CANDIDATES, dims))
    mean, std = model.predict(candidates, return_std=True)
    improvement = losses.min() - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, improvement / std, 0.0)
    expected = np.where(std > 0, improvement * norm.cdf(z) + std * norm.pdf(z), 0.0)
    return candidates[int(np.argmax(expected))]


def run_tuning(job: Job) -> StepResult:
    search = _search(job)
    started = now()
    trials = _run_trials(job, search)
    summaries = sorted(
        (_summary(t, job.job_name, search.metric, search.kind, job) for t in trials),
        key=lambda s: (s["ObjectiveStatus"] != "Succeeded", search.sign * _objective_value(s)),
    )
    _require_a_result(job, search, trials)
    return _result(job, search, trials, summaries, started)


@dataclass
class _Search:
    """A tuning job's search, as its HyperParameterTuningJobConfig declares it."""

    ranges: list[Range]
    metric: str
    kind: str  # Minimize or Maximize
    max_jobs: int
    parallel: int
    bayesian: bool
    rng: np.random.Generator

    @property
    def sign(self) -> int:
        """Turns the objective into a loss: lower is better."""
        return 1 if self.kind == "Minimize" else -1

    @property
    def cpus(self) -> int:
        """Each trial's share of this machine, as each would have its own instance."""
        return max(1, (os.cpu_count() or 1) // self.parallel)

    def propose(self, trials: list[Trial], running: list[Trial]) -> np.ndarray:
        """The next point in the unit cube: random for the first max(2, parallel) trials (as
        SageMaker starts) and for Random; else the Bayesian proposal."""
        done = [t for t in trials if t.metric is not None]
        if not self.bayesian or len(trials) < max(2, self.parallel) or len(done) < 2:
            return self.rng.random(len(self.ranges))
        losses = np.array([self.sign * t.metric for t in done])
        pending = np.array([t.unit for t in running]).reshape(-1, len(self.ranges))
        return propose_bayesian(self.rng, np.array([t.unit for t in done]), losses, pending)


def _search(job: Job) -> _Search:
    config = job.arguments["HyperParameterTuningJobConfig"]
    definition = job.arguments["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    metric = objective["MetricName"]
    if metric not in metric_names(definition.get("AlgorithmSpecification", {})):
        raise DefinitionError(
            f"step '{job.step_name}': the objective metric '{metric}' is neither a built-in "
            "metric of the image nor a MetricDefinition in "
            "TrainingJobDefinition.AlgorithmSpecification"
        )
    limits = config["ResourceLimits"]
    max_jobs = int(limits["MaxNumberOfTrainingJobs"])
    return _Search(
        ranges=parse_ranges(job.step_name, config.get("ParameterRanges", {})),
        metric=metric,
        kind=objective["Type"],
        max_jobs=max_jobs,
        parallel=max(1, min(int(limits["MaxParallelTrainingJobs"]), max_jobs)),
        bayesian=config["Strategy"] == "Bayesian",
        rng=np.random.default_rng(int(config.get("RandomSeed", 0))),
    )


def _run_trials(job: Job, search: _Search) -> list[Trial]:
    """Runs the trials, at most `parallel` at once, proposing each when a worker is free."""
    trials: list[Trial] = []
    with ThreadPoolExecutor(max_workers=search.parallel) as pool:
        running = {}
        while len(trials) < search.max_jobs or running:
            while len(trials) < search.max_jobs and len(running) < search.parallel:
                trial = _next_trial(job, search, trials, list(running.values()))
                trials.append(trial)
                running[pool.submit(_run_trial, job, search, trial)] = trial
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                trial = running.pop(future)
                future.result()  # a DefinitionError is every trial's problem: fail the step
                outcome = (
                    f"{search.metric} = {trial.metric}" if trial.failure is None else trial.failure
                )
                job.log(f"trial {trial.number} {trial.name} {trial.tuned}: {outcome}")
    return trials


def _next_trial(job: Job, search: _Search, trials: list[Trial], running: list[Trial]) -> Trial:
    unit = search.propose(trials, running)
    tuned = {r.name: r.value(u) for r, u in zip(search.ranges, unit, strict=True)}
    # The point actually run (integers rounded), so the surrogate sees the truth.
    unit = np.array([r.unit(tuned[r.name]) for r in search.ranges])
    # The tuning job's name has at most 32 characters, SageMaker's limit for tuning jobs.
    name = f"{job.job_name}-{len(trials) + 1:03d}-{secrets.token_hex(4)}"
    return Trial(len(trials) + 1, name, unit, tuned)


def _run_trial(job: Job, search: _Search, trial: Trial) -> Trial:
    """One training job with the trial's hyperparameters; a failure, or no value of the
    objective metric, is the trial's failure."""
    definition = job.arguments["TrainingJobDefinition"]
    workdir = job.workdir / trial.name
    workdir.mkdir(parents=True)
    static = definition.get("StaticHyperParameters", {})
    request = {
        **{k: v for k, v in definition.items() if k != "StaticHyperParameters"},
        "HyperParameters": {**static, **{k: str(v) for k, v in trial.tuned.items()}},
    }
    try:
        log = workdir / "log.txt"
        trial.properties = train(job, request, trial.name, workdir, log, search.cpus)
    except StepFailed as failure:
        trial.failure = str(failure)
        return trial
    values = {m["MetricName"]: m["Value"] for m in trial.properties["FinalMetricDataList"]}
    if search.metric in values and math.isfinite(values[search.metric]):
        trial.metric = values[search.metric]
    else:
        trial.failure = f"the job logged no value of the objective metric '{search.metric}'"
    return trial


def _require_a_result(job: Job, search: _Search, trials: list[Trial]) -> None:
    """The step fails only when no trial reported the objective metric."""
    if not any(t.metric is not None for t in trials):
        reasons = "; ".join(f"{t.name}: {t.failure}" for t in trials[:3])
        raise StepFailed(
            f"No training job of tuning job {job.job_name} reported the objective metric "
            f"'{search.metric}' ({len(trials)} job(s) failed: {reasons})"
        )


def _result(
    job: Job, search: _Search, trials: list[Trial], summaries: list[dict], started
) -> StepResult:
    """DescribeHyperParameterTuningJob-shaped properties; the best trial's model."""
    tuning_name = job.job_name
    succeeded = [t for t in trials if t.metric is not None]
    best = summaries[0]
    properties = {
        **job.arguments,
        "HyperParameterTuningJobName": tuning_name,
        "HyperParameterTuningJobArn": job.arn("hyper-parameter-tuning-job", tuning_name),
        "HyperParameterTuningJobStatus": "Completed",
        "CreationTime": iso_time(started),
        "HyperParameterTuningEndTime": iso_time(now()),
        "TrainingJobStatusCounters": {
            "Completed": sum(1 for s in summaries if s["TrainingJobStatus"] == "Completed"),
            "InProgress": 0,
            "RetryableError": 0,
            "NonRetryableError": sum(1 for s in summaries if s["TrainingJobStatus"] == "Failed"),
            "Stopped": 0,
        },
        "ObjectiveStatusCounters": {
            "Succeeded": len(succeeded),
            "Pending": 0,
            "Failed": len(trials) - len(succeeded),
        },
        "BestTrainingJob": best,
        "TrainingJobSummaries": summaries,
    }
    artifacts = next(t for t in trials if t.name == best["TrainingJobName"])
    return StepResult(
        properties=properties,
        outputs={
            "best_training_job": best["TrainingJobName"],
            "model": artifacts.properties["ModelArtifacts"]["S3ModelArtifacts"],
            "training_jobs": len(trials),
        },
        metrics={search.metric: best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]},
        metadata={"tuningJob": {"arn": properties["HyperParameterTuningJobArn"]}},
    )


def _objective_value(summary: dict) -> float:
    return summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value", 0.0)


def _summary(trial: Trial, tuning_name: str, metric: str, kind: str, job: Job) -> dict:
    """A TrainingJobSummary (ListTrainingJobsForHyperParameterTuningJob)."""
    summary = {
        "TrainingJobName": trial.name,
        "TrainingJobArn": job.arn("training-job", trial.name),
        "TuningJobName": tuning_name,
        "TrainingJobStatus": "Completed" if trial.properties else "Failed",
        # SageMaker reports tuned values as strings.
        "TunedHyperParameters": {k: str(v) for k, v in trial.tuned.items()},
        "ObjectiveStatus": "Succeeded" if trial.metric is not None else "Failed",
    }
    for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime"):
        if key in trial.properties:
            summary[key] = trial.properties[key]
    if trial.metric is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": kind,
            "MetricName": metric,
            "Value": trial.metric,
        }
    if trial.failure:
        summary["FailureReason"] = trial.failure
    return summary
