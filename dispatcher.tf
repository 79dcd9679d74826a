# Two small functions from code/batch_dispatcher/ (stdlib + boto3):
#
# The batch dispatcher: the target of the inference_data_created rule (events/). For each S3
# "Object Created" event of a batch it starts ONE batch-inference execution that reads only that
# object, with a ClientRequestToken derived from bucket, key and version id, so EventBridge's
# at-least-once delivery and retries never start a second execution for the same object version
# (code/batch_dispatcher/batch_dispatcher.py; README "Batches").
#
# Why a Lambda and not the rule's SageMaker pipeline target: EventBridge can fill a pipeline
# parameter only with a whole JSON path of the event, and an S3 event holds no s3:// URI of its
# object; nor can the SageMaker target pass a ClientRequestToken. (An EventBridge Pipe needs an
# SQS source queue in front and still cannot set the token.)
#
# The retrain gate: the target of the model_quality_failed rule (only the Fail step
# ModelQualityBelowThreshold, a measured MSE failure). It starts the training-with-HPO pipeline
# unless a retraining execution is running or one started within
# model_quality.retrain_cooldown_minutes (pipelines.yaml); a suppressed trigger is published to
# the notification topic. Gates deciding at once from the same state send one
# ClientRequestToken, so at most one of them starts an execution (retrain_gate.py).
#
# Each function itself (role, log group, dead-letter queue, KMS, tracing, concurrency) is one of
# local.functions in lambda.tf; this file holds what is particular to it.

locals {
  # Labels that arrive later for batch <id>: <bucket_prefix>/labels/<id>.labels.csv (README,
  # "Batches, predictions and retraining"); next to predictions/, outside the data prefixes.
  labels_prefix = "${var.bucket_prefix}/labels/"

  batch_dispatcher_function = {
    description = "Starts one batch-inference execution per uploaded batch object version"
    code_dir    = "batch_dispatcher"
    handler     = "batch_dispatcher.handler"
    timeout     = 30
    environment = {
      PIPELINE_NAME       = var.pipeline_inf
      INFERENCE_PREFIX    = local.data_prefixes.inference
      LABELS_PREFIX       = local.labels_prefix
      PIPELINE_PARAMETERS = jsonencode(local.pipeline_targets.start_inference.parameters)
    }
  }
}

locals {
  retrain_gate_function = {
    description = "Starts training with HPO for a model-quality failure, one at a time, after a cooldown"
    code_dir    = "batch_dispatcher"
    handler     = "retrain_gate.handler"
    timeout     = 30
    environment = {
      PIPELINE_NAME    = var.pipeline_trainwhpo
      COOLDOWN_MINUTES = tostring(yamldecode(file("${path.module}/pipeline_scripts/pipelines.yaml")).model_quality.retrain_cooldown_minutes)
      SNS_TOPIC_ARN    = aws_sns_topic.notifications.arn
    }
  }
}

data "aws_iam_policy_document" "retrain_gate" {
  statement {
    sid       = "ListAndStartTheRetrainingPipeline"
    actions   = ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"]
    resources = [local.pipeline_arns.training_hpo]
  }
  statement {
    sid       = "ReportSuppressedRetraining"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
  }
}

data "aws_iam_policy_document" "batch_dispatcher" {
  # Starting the batch-inference pipeline is all it does; the pipeline's own role runs the jobs.
  statement {
    sid       = "StartTheBatchInferencePipeline"
    actions   = ["sagemaker:StartPipelineExecution"]
    resources = [local.pipeline_arns.inference]
  }
}

resource "aws_cloudwatch_event_target" "dispatch_batch" {
  for_each  = { for name, rule in local.event_rules : name => rule if rule.target == "dispatch_batch" }
  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "batch-dispatcher"
  arn       = aws_lambda_function.this["batch_dispatcher"].arn
  # No input transformer: the function reads the S3 event itself.

  retry_policy {
    maximum_event_age_in_seconds = local.target_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.target_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
}

resource "aws_lambda_permission" "events_invoke_dispatcher" {
  for_each      = aws_cloudwatch_event_target.dispatch_batch
  statement_id  = "EventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["batch_dispatcher"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}

resource "aws_cloudwatch_event_target" "retrain_gate" {
  for_each  = { for name, rule in local.event_rules : name => rule if rule.target == "retrain_gate" }
  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "retrain-gate"
  arn       = aws_lambda_function.this["retrain_gate"].arn

  retry_policy {
    maximum_event_age_in_seconds = local.target_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.target_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
}

resource "aws_lambda_permission" "events_invoke_retrain_gate" {
  for_each      = aws_cloudwatch_event_target.retrain_gate
  statement_id  = "EventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["retrain_gate"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}
