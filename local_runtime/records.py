"""An execution's record and its steps': status, times, failure reason, files, properties,
outputs and metrics, as the runner keeps them and summary.json shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from local_runtime.clock import iso_time


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Pending"
    start_time: datetime | None = None
    end_time: datetime | None = None
    failure_reason: str | None = None
    job_name: str | None = None
    workdir: Path | None = None
    log_path: Path | None = None
    metadata: dict = field(default_factory=dict)
    properties: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    cache_hit_source: str | None = None  # the execution whose result a cache hit reused

    @property
    def duration_seconds(self) -> float | None:
        return _seconds(self.start_time, self.end_time)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "start_time": iso_time(self.start_time) if self.start_time else None,
            "end_time": iso_time(self.end_time) if self.end_time else None,
            "duration_seconds": self.duration_seconds,
            "failure_reason": self.failure_reason,
            "job_name": self.job_name,
            "workdir": str(self.workdir) if self.workdir else None,
            "log_path": str(self.log_path) if self.log_path else None,
            "metadata": self.metadata,
            "outputs": self.outputs,
            "metrics": self.metrics,
            "properties": self.properties,
            "cache_hit_source": self.cache_hit_source,
        }


@dataclass
class Execution:
    pipeline_name: str
    pipeline_arn: str
    execution_arn: str
    display_name: str
    description: str | None
    parameters: dict
    sandbox: Path
    start_time: datetime
    steps: dict[str, StepRecord]
    status: str = "Executing"
    failure_reason: str | None = None
    end_time: datetime | None = None

    @property
    def execution_id(self) -> str:
        return self.execution_arn.rsplit("/", 1)[-1]

    @property
    def duration_seconds(self) -> float | None:
        return _seconds(self.start_time, self.end_time)

    def step(self, name: str) -> StepRecord:
        return self.steps[name]

    def to_dict(self) -> dict:
        return {
            "pipeline_name": self.pipeline_name,
            "pipeline_arn": self.pipeline_arn,
            "execution_id": self.execution_id,
            "execution_arn": self.execution_arn,
            "display_name": self.display_name,
            "description": self.description,
            "parameters": self.parameters,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "start_time": iso_time(self.start_time),
            "end_time": iso_time(self.end_time) if self.end_time else None,
            "duration_seconds": self.duration_seconds,
            "sandbox": str(self.sandbox),
            "steps": [record.to_dict() for record in self.steps.values()],
        }
