# EventBridge: which event goes where. The patterns and input transformers are defined once,
# in events/*.json, rendered here with templatefile() and in Python by
# pipeline_scripts/event_rules.py (tests, local runtime) with the same values.

locals {
  # The ${...} placeholders of events/*.json; event_rules.template_variables mirrors this map.
  event_template_vars = {
    pipeline_train_arn         = local.pipeline_arns.training
    pipeline_trainwhpo_arn     = local.pipeline_arns.training_hpo
    pipeline_inf_arn           = local.pipeline_arns.inference
    model_package_group_name   = var.model_package_group_name
    bucket_name                = var.bucket_name
    train_prefix               = local.data_prefixes.training
    inference_prefix           = local.data_prefixes.inference
    labels_prefix              = local.labels_prefix
    model_quality_failed_step  = local.contract.steps.model_quality_failed
    labels_quality_failed_step = local.contract.steps.labels_quality_failed
  }

  event_rules = {
    for file in fileset("${path.module}/events", "*.json") :
    trimsuffix(file, ".json") => jsondecode(templatefile("${path.module}/events/${file}", local.event_template_vars))
  }

  # The pattern rules plus, when inference_schedule_expression is set, the schedule.
  rules = merge(
    {
      for name, rule in local.event_rules : name => {
        description         = rule.description
        event_pattern       = jsonencode(rule.event_pattern)
        schedule_expression = null
        target              = rule.target
      }
    },
    {
      for name, rule in {
        inference_schedule = {
          description         = "Scheduled batch-inference run (inference_schedule_expression)."
          event_pattern       = null
          schedule_expression = var.inference_schedule_expression
          target              = "start_inference"
        }
      } : name => rule if var.inference_schedule_expression != ""
    },
  )

  rule_names = { for name in keys(local.rules) : name => "${local.name_prefix}-${replace(name, "_", "-")}" }
  rule_arns  = { for name, rule_name in local.rule_names : name => "arn:${local.partition}:events:${var.region}:${local.account_id}:rule/${rule_name}" }

  # What each pipeline-starting target starts, with which parameters. The values equal the
  # pipelines' defaults (rendered from the same tfvars) and are passed anyway, so a run that
  # EventBridge starts uses the deployed configuration even if a pipeline was upserted from
  # another branch. EventBridge can only fill a parameter with a whole JSON path of the event,
  # and an S3 event holds no s3:// URI of its object, so the data URL parameters keep their
  # defaults: the whole training prefix, or the whole inference prefix for the schedule. A
  # batch upload goes to the batch dispatcher instead (dispatcher.tf), which passes its URI.
  pipeline_targets = {
    start_training = {
      pipeline_arn = local.pipeline_arns.training
      parameters = {
        (local.contract.parameters.mse_threshold) = tostring(var.accuracy_mse_threshold)
      }
    }
    start_inference = {
      pipeline_arn = local.pipeline_arns.inference
      parameters = {
        (local.contract.parameters.mse_threshold)                  = tostring(var.accuracy_mse_threshold)
        (local.contract.parameters.fail_on_data_quality_violation) = tostring(var.fail_on_data_quality_violation)
      }
    }
  }

  start_pipeline_role_names = { for target in keys(local.pipeline_targets) : target => "${local.name_prefix}-${replace(target, "_", "-")}" }

  # A day of retries with exponential backoff, then the dead-letter queue.
  target_retry = {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 24
  }
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each            = local.rules
  name                = local.rule_names[each.key]
  description         = each.value.description
  event_pattern       = each.value.event_pattern
  schedule_expression = each.value.schedule_expression
}

# ---------------------------------------------------------------------------- notifier targets

resource "aws_cloudwatch_event_target" "notifier" {
  for_each  = { for name, rule in local.event_rules : name => rule if rule.target == "notifier" }
  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "notifier"
  arn       = aws_lambda_function.this["notifier"].arn

  input_transformer {
    input_paths    = each.value.input_transformer.input_paths
    input_template = each.value.input_transformer.input_template
  }

  retry_policy {
    maximum_event_age_in_seconds = local.target_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.target_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
}

resource "aws_lambda_permission" "events_invoke_notifier" {
  for_each      = aws_cloudwatch_event_target.notifier
  statement_id  = "EventBridge-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["notifier"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.this[each.key].arn
}

# ---------------------------------------------------------------------- pipeline-start targets

resource "aws_cloudwatch_event_target" "start_pipeline" {
  for_each  = { for name, rule in local.rules : name => rule.target if contains(keys(local.pipeline_targets), rule.target) }
  rule      = aws_cloudwatch_event_rule.this[each.key].name
  target_id = "start-pipeline"
  arn       = local.pipeline_targets[each.value].pipeline_arn
  role_arn  = aws_iam_role.start_pipeline[each.value].arn

  sagemaker_pipeline_target {
    dynamic "pipeline_parameter_list" {
      for_each = local.pipeline_targets[each.value].parameters
      content {
        name  = pipeline_parameter_list.key
        value = pipeline_parameter_list.value
      }
    }
  }

  retry_policy {
    maximum_event_age_in_seconds = local.target_retry.maximum_event_age_in_seconds
    maximum_retry_attempts       = local.target_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.events_dlq.arn
  }
}

# One role per pipeline: each may start that pipeline and nothing else, and only EventBridge
# rules of this configuration that start it may assume it.
resource "aws_iam_role" "start_pipeline" {
  for_each             = local.pipeline_targets
  name                 = local.start_pipeline_role_names[each.key]
  description          = "EventBridge starts ${each.value.pipeline_arn}"
  assume_role_policy   = data.aws_iam_policy_document.events_assume[each.key].json
  permissions_boundary = local.permissions_boundary
}

data "aws_iam_policy_document" "events_assume" {
  for_each = local.pipeline_targets
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for name, rule in local.rules : local.rule_arns[name] if rule.target == each.key]
    }
  }
}

resource "aws_iam_role_policy" "start_pipeline" {
  for_each = local.pipeline_targets
  name     = "start-one-pipeline"
  role     = aws_iam_role.start_pipeline[each.key].id
  policy   = data.aws_iam_policy_document.start_pipeline[each.key].json
}

data "aws_iam_policy_document" "start_pipeline" {
  for_each = local.pipeline_targets
  statement {
    actions   = ["sagemaker:StartPipelineExecution"]
    resources = [each.value.pipeline_arn]
  }
}

# ------------------------------------------------------------------- undelivered events

# The queue policy is set with the queue (CreateQueue's Policy attribute), not by a separate
# aws_sqs_queue_policy: the AWS provider waits for every SetQueueAttributes to propagate (its
# internal/service/sqs waitQueueAttributesPropagated: the same value read back 6 times, 5 s
# apart, about 25 s), so a separate policy added that wait after the queue's own on apply, and
# again on destroy, where it empties the policy before the queue is deleted.
resource "aws_sqs_queue" "events_dlq" {
  name                      = local.dead_letter_queue_names.events
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600 # 14 days, SQS's maximum: time to look and redrive
  policy                    = data.aws_iam_policy_document.events_dlq.json
}

locals {
  # The queue's ARN from its name, as the policy set on the queue itself cannot refer to the
  # queue's arn attribute (format: "Actions, resources, and condition keys for Amazon SQS",
  # Service Authorization Reference, resource type queue).
  events_dlq_arn = "arn:${local.partition}:sqs:${var.region}:${local.account_id}:${local.dead_letter_queue_names.events}"
}

# Earlier versions set the policy with a separate aws_sqs_queue_policy: forget that resource
# without destroying it, since its destroy would empty the policy the queue now sets
# ("Remove a resource from state", Terraform docs: a removed block with destroy = false).
removed {
  from = aws_sqs_queue_policy.events_dlq
  lifecycle {
    destroy = false
  }
}

data "aws_iam_policy_document" "events_dlq" {
  statement {
    sid = "RulesOfThisConfigurationOnly"
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    actions   = ["sqs:SendMessage"]
    resources = [local.events_dlq_arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = values(local.rule_arns)
    }
  }
}

# ------------------------------------------------------------ S3 -> EventBridge notifications

# S3 sends "Object Created" events of the bucket to EventBridge (no CloudTrail trail needed).
# This resource owns the bucket's WHOLE notification configuration: applying it replaces any
# SNS, SQS or Lambda notifications configured on the bucket elsewhere, and destroying it
# removes them all, EventBridge included. On a shared bucket, add the other notifications here.
resource "aws_s3_bucket_notification" "eventbridge" {
  bucket      = var.bucket_name
  eventbridge = true
}
