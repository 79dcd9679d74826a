"""EventBridge events in exactly the shape SageMaker emits them.

Shapes from "Events that Amazon SageMaker sends to Amazon EventBridge" (SageMaker developer
guide: pipeline execution state change, pipeline step state change, model package state
change):

- every event: version "0", a fresh id, detail-type, source "aws.sagemaker", account, time
  (UTC, seconds), region, resources;
- pipeline execution: resources [pipeline ARN, execution ARN]; detail with
  pipelineExecutionDisplayName, currentPipelineExecutionStatus, previousPipelineExecutionStatus,
  executionStartTime, executionEndTime (once finished), pipelineExecutionDescription,
  pipelineArn, pipelineExecutionArn. (The documented shape has no failure reason; the failed
  step's event carries it.)
- pipeline step: same resources; detail with metadata (e.g. {"processingJob": {"arn": ...}}),
  stepStartTime, stepEndTime (once finished), stepName, stepType, previousStepStatus,
  currentStepStatus, failureReason (when Failed), pipelineArn, pipelineExecutionArn.
- model package: resources [model package ARN]; detail is the DescribeModelPackage response.

A first status has no previous one; its event leaves previous*Status out.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import boto3

from local_runtime.expressions import jsonable

EXECUTION_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Status Change"
STEP_STATUS_CHANGE = "SageMaker Model Building Pipeline Execution Step Status Change"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


def event_time(moment: datetime) -> str:
    """EventBridge's time format: 2021-03-15T16:10:10Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _event(detail_type: str, arn: str, resources: list[str], detail: dict, time) -> dict:
    # arn:<partition>:sagemaker:<region>:<account>:<resource>
    _, _, _, region, account, _ = arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": account,
        "time": event_time(time or datetime.now(UTC)),
        "region": region,
        "resources": resources,
        "detail": detail,
    }


def _without_none(detail: dict) -> dict:
    return {key: value for key, value in detail.items() if value is not None}


def execution_status_change(execution: Any, previous: str | None, time=None) -> dict:
    """`execution`: the runner's Execution record, already in its new status."""
    detail = _without_none(
        {
            "pipelineExecutionDisplayName": execution.display_name,
            "currentPipelineExecutionStatus": execution.status,
            "previousPipelineExecutionStatus": previous,
            "executionStartTime": event_time(execution.start_time),
            "executionEndTime": event_time(execution.end_time) if execution.end_time else None,
            "pipelineExecutionDescription": execution.description,
            "pipelineArn": execution.pipeline_arn,
            "pipelineExecutionArn": execution.execution_arn,
        }
    )
    resources = [execution.pipeline_arn, execution.execution_arn]
    return _event(EXECUTION_STATUS_CHANGE, execution.execution_arn, resources, detail, time)


def step_status_change(execution: Any, step: Any, previous: str | None, time=None) -> dict:
    """`step`: the runner's StepRecord of `execution`, already in its new status."""
    detail = _without_none(
        {
            "metadata": step.metadata or None,
            "stepStartTime": event_time(step.start_time) if step.start_time else None,
            "stepEndTime": event_time(step.end_time) if step.end_time else None,
            "stepName": step.name,
            "stepType": step.type,
            "previousStepStatus": previous,
            "currentStepStatus": step.status,
            "failureReason": step.failure_reason if step.status == "Failed" else None,
            "pipelineArn": execution.pipeline_arn,
            "pipelineExecutionArn": execution.execution_arn,
        }
    )
    resources = [execution.pipeline_arn, execution.execution_arn]
    return _event(STEP_STATUS_CHANGE, execution.execution_arn, resources, detail, time)


def model_package_state_change(package: dict, time=None) -> dict:
    """`package`: a DescribeModelPackage response (as boto3 returns it)."""
    # DescribeModelPackage via moto returns null for absent fields; events leave them out.
    detail = _without_none(jsonable(package))
    # EventBridge shows timestamps in its own format, as in the documented example.
    for key in ("CreationTime", "LastModifiedTime"):
        if isinstance(package.get(key), datetime):
            detail[key] = event_time(package[key])
    arn = package["ModelPackageArn"]
    return _event(MODEL_PACKAGE_STATE_CHANGE, arn, [arn], detail, time)


def model_package_event(model_package_arn: str, sagemaker=None) -> dict:
    """The state-change event of a model package as it is now, e.g. right after a person
    approved it (UpdateModelPackage); SageMaker emits one on every such change."""
    sagemaker = sagemaker or boto3.client("sagemaker")
    package = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    return model_package_state_change(package)
