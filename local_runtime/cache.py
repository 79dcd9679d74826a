"""Step caching as SageMaker Pipelines does it, blind spots included.

A step with CacheConfig.Enabled reuses the result of an earlier successful run of the same step
of the same pipeline when the step's cache-key attributes are unchanged and that run is not
older than CacheConfig.ExpireAfter (an ISO 8601 duration). The attributes, from AWS's
"Default cache key attributes by pipeline step type" (SageMaker developer guide,
https://docs.aws.amazon.com/sagemaker/latest/dg/pipelines-default-keys.html):

    Processing  AppSpecification, Environment, ProcessingInputs
    Training    AlgorithmSpecification, CheckpointConfig, DebugHookConfig,
                DebugRuleConfigurations, Environment, HyperParameters, InputDataConfig
    Tuning      HyperParameterTuningJobConfig; of TrainingJobDefinition only
                AlgorithmSpecification, HyperParameterRanges, InputDataConfig,
                StaticHyperParameters, TuningObjective; TrainingJobDefinitions

Everything else (output locations, instance types, roles, keys) is not part of the key: a
change there still reuses the earlier result, which then points at the earlier run's outputs.
The values compared are the resolved ones, so an attribute that contains the execution id
misses every time, and a step reading a cached step's properties sees the earlier run's
locations. Other step types always run here (a note goes to the step's log).

Entries live as long as the embedded AWS API they refer to (one cache per AWS_ENDPOINT_URL, in
this process): a new embedded API, or a runner that was killed, starts with no cache, so no
half-written result is ever reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

CACHE_KEYS = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": (
        *("AlgorithmSpecification", "CheckpointConfig", "DebugHookConfig"),
        *("DebugRuleConfigurations", "Environment", "HyperParameters", "InputDataConfig"),
    ),
    "Tuning": ("HyperParameterTuningJobConfig", "TrainingJobDefinition", "TrainingJobDefinitions"),
}
TUNING_DEFINITION_KEYS = (
    *("AlgorithmSpecification", "HyperParameterRanges", "InputDataConfig"),
    *("StaticHyperParameters", "TuningObjective"),
)
_DURATION = re.compile(
    r"P?(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?",
    re.IGNORECASE,
)


def expire_after(text: str | None) -> timedelta | None:
    """ISO 8601 duration ("P30D", "PT1H", "P1Y2M") as a timedelta (a month is 30 days, a year
    365); None (no expiry) when absent. Raises ValueError naming the expected format."""
    if text is None:
        return None
    match = _DURATION.fullmatch(str(text).strip())
    if not match or not any(match.groupdict().values()):
        raise ValueError(
            f"CacheConfig.ExpireAfter {text!r}: expected an ISO 8601 duration such as P30D or PT1H"
        )
    n = {k: int(v or 0) for k, v in match.groupdict().items()}
    return timedelta(
        days=n["years"] * 365 + n["months"] * 30 + n["weeks"] * 7 + n["days"],
        hours=n["hours"],
        minutes=n["minutes"],
        seconds=n["seconds"],
    )


def cache_key(kind: str, arguments: dict) -> str | None:
    """The hash of the step's cache-key attributes, or None for a step type not cached."""
    if kind not in CACHE_KEYS:
        return None
    attributes = {k: arguments.get(k) for k in CACHE_KEYS[kind]}
    if kind == "Tuning":
        definition = arguments.get("TrainingJobDefinition") or {}
        attributes["TrainingJobDefinition"] = {k: definition.get(k) for k in TUNING_DEFINITION_KEYS}
    text = json.dumps(attributes, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    time: datetime
    execution_arn: str
    job_name: str | None
    metadata: dict
    result: object  # the StepResult of the run that is reused


class StepCache:
    def __init__(self):
        self._entries: dict[tuple, list[Entry]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _where(pipeline_arn: str, step: str, key: str) -> tuple:
        return (os.environ.get("AWS_ENDPOINT_URL", ""), pipeline_arn, step, key)

    def lookup(
        self, pipeline_arn: str, step: str, key: str, now: datetime, expiry: timedelta | None
    ) -> Entry | None:
        """The newest entry not older than `expiry`."""
        with self._lock:
            entries = list(self._entries.get(self._where(pipeline_arn, step, key), []))
        fresh = [e for e in entries if expiry is None or now - e.time <= expiry]
        return max(fresh, key=lambda e: e.time) if fresh else None

    def store(self, pipeline_arn: str, step: str, key: str, entry: Entry) -> None:
        with self._lock:
            self._entries.setdefault(self._where(pipeline_arn, step, key), []).append(entry)


STEP_CACHE = StepCache()
