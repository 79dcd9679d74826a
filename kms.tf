# The customer-managed KMS key that encrypts everything this configuration stores: the
# notification topic, the dead-letter queues, the notifier's environment and the logs.

resource "aws_kms_key" "this" {
  description         = "${local.name_prefix}: notifications, dead-letter queues, Lambda environments and logs"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.kms_key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name_prefix}-automation"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms_key" {
  # In a key policy, Resource "*" means this key and nothing else.
  statement {
    sid = "AccountAdministersTheKey"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    # Administration only (no encryption or decryption), so the account's IAM policies can
    # manage the key but never use it directly.
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:DescribeKey",
      "kms:DisableKey",
      "kms:DisableKeyRotation",
      "kms:EnableKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListAliases",
      "kms:ListGrants",
      "kms:ListKeyPolicies",
      "kms:ListKeyRotations",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:RevokeGrant",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"]
  }

  statement {
    sid = "AccountUsesTheKeyThroughLambdaSnsSqsOnly"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    # The functions' roles (publishing to the topic, writing their dead-letter queues,
    # decrypting their environment) and the deployer (encrypting a function's environment).
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.kms_via_services
    }
    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid = "LambdaGrantsForFunctionEnvironments"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    actions   = ["kms:CreateGrant"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptTheFunctionLogs"
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [for name in values(local.function_names) : "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/lambda/${name}"]
    }
  }

  # CloudWatch needs the key to publish the dead-letter queue alarms to the encrypted topic
  # ("Enable compatibility between event sources from AWS services and encrypted topics",
  # https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html).
  statement {
    sid = "CloudWatchPublishesTheAlarmsToTheTopic"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = values(local.dlq_alarm_arns)
    }
  }

  statement {
    sid = "EventBridgeWritesUndeliveredEventsToTheDeadLetterQueue"
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = values(local.rule_arns)
    }
  }
}

locals {
  kms_via_services = [for service in ["lambda", "sns", "sqs"] : "${service}.${var.region}.amazonaws.com"]
}
