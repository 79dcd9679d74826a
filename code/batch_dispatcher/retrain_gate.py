"""Lambda: start retraining for a genuine model-quality failure, at most one at a time.

Target of the EventBridge rule events/model_quality_failed.json, which matches only the Fail
step ModelQualityBelowThreshold of the batch-inference pipeline (an MSE above the threshold,
measured on enough labels; crashes and bad input never reach it). It starts the
training-with-HPO pipeline unless a retraining execution is running or one started within the
cooldown; a suppressed trigger is published to the notification topic with its reason, so it
is reported, not lost. Gates deciding at once from the same state send one ClientRequestToken,
so two failures arriving together cannot both start one.

event:   the pipeline step status change event (detail.pipelineExecutionArn, failureReason)
env:     PIPELINE_NAME (training with HPO), COOLDOWN_MINUTES, SNS_TOPIC_ARN
returns: {"started": bool, "reason": str, "PipelineExecutionArn": str | None}
IAM:     sagemaker:ListPipelineExecutions and sagemaker:StartPipelineExecution on that pipeline,
         sns:Publish on the topic
"""

import hashlib
import json
import logging
import os
from datetime import UTC, datetime, timedelta

import boto3

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)

# PipelineExecutionStatus values of an execution that has not finished (botocore sagemaker
# model, PipelineExecutionStatus enum: Executing, Stopping, Stopped, Failed, Succeeded,
# CompletedWithFailures).
UNFINISHED = {"Executing", "Stopping"}


def decide(executions, now, cooldown):
    """(start?, reason) from the retraining pipeline's ListPipelineExecutions summaries."""
    running = [e for e in executions if e.get("PipelineExecutionStatus") in UNFINISHED]
    if running:
        return False, f"retraining {running[0]['PipelineExecutionArn']} is still running"
    if executions:
        last = max(executions, key=lambda e: e["StartTime"])
        if now - last["StartTime"] < cooldown:
            return False, (
                f"the last retraining ({last['PipelineExecutionArn']}) started at "
                f"{last['StartTime']:%Y-%m-%d %H:%M} UTC, within the cooldown of "
                f"{int(cooldown.total_seconds() // 60)} minutes"
            )
    return True, "no retraining running or within the cooldown"


def handler(event, context):
    detail = event["detail"]
    trigger = detail["pipelineExecutionArn"]
    pipeline = os.environ["PIPELINE_NAME"]
    cooldown = timedelta(minutes=float(os.environ["COOLDOWN_MINUTES"]))
    sagemaker = boto3.client("sagemaker")
    # A week back at least, far longer than a retraining runs with this project's settings
    # (each job stops after processing/training max_runtime_seconds), so an unfinished one is
    # listed; older executions are irrelevant to both the running check and the cooldown.
    pages = sagemaker.get_paginator("list_pipeline_executions").paginate(
        PipelineName=pipeline,
        CreatedAfter=datetime.now(UTC) - max(cooldown, timedelta(days=7)),
    )
    executions = [e for page in pages for e in page["PipelineExecutionSummaries"]]
    start, reason = decide(executions, datetime.now(UTC), cooldown)
    arn = None
    if start:
        # One token per state decided on: every gate invocation that saw the same latest
        # retraining (or none) sends the same token, so of two failures handled at once only
        # one starts an execution. StartPipelineExecution's ClientRequestToken: "An idempotent
        # operation completes no more than once" (SageMaker API reference). A redelivered
        # event after a start sees that execution running and is suppressed.
        latest = max(executions, key=lambda e: e["StartTime"]) if executions else None
        state = latest["PipelineExecutionArn"] if latest else "no earlier retraining"
        arn = sagemaker.start_pipeline_execution(
            PipelineName=pipeline,
            PipelineExecutionDescription=(
                f"Retraining for a model-quality failure in {trigger}: "
                f"{detail.get('failureReason', '')}"
            )[:3072],
            ClientRequestToken=hashlib.sha256(f"{pipeline} after {state}".encode()).hexdigest(),
        )["PipelineExecutionArn"]
    else:
        boto3.client("sns").publish(
            TopicArn=os.environ["SNS_TOPIC_ARN"],
            Subject="Retraining suppressed: a model-quality failure started no new run",
            Message=(
                f"Model quality failed in {trigger}:\n{detail.get('failureReason', '')}\n\n"
                f"No retraining was started: {reason}. The failure is recorded here; the "
                f"running or recent retraining is the response to it."
            ),
        )
    logger.info(json.dumps({"trigger": trigger, "started": arn, "reason": reason}))
    return {"started": start, "reason": reason, "PipelineExecutionArn": arn}
