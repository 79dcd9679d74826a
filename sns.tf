# The notification topic (encrypted with the key of kms.tf) and its e-mail subscriptions.

resource "aws_sns_topic" "notifications" {
  name              = "${local.name_prefix}${local.contract.sns_topic_suffix}"
  display_name      = "MLOps ${var.environment}"
  kms_master_key_id = aws_kms_key.this.arn
}

resource "aws_sns_topic_policy" "notifications" {
  arn    = aws_sns_topic.notifications.arn
  policy = data.aws_iam_policy_document.topic.json
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid = "NotifierPublishes"
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["notifier"].arn]
    }
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
  }

  statement {
    sid = "DeadLetterQueueAlarmsPublish"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = values(local.dlq_alarm_arns)
    }
  }

  # An explicit deny, so not even a broad IAM policy in the account can publish here; the
  # service principal of the alarms above is the one exception.
  statement {
    sid    = "NobodyElsePublishes"
    effect = "Deny"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
    condition {
      test     = "ArnNotEquals"
      variable = "aws:PrincipalArn"
      values   = [aws_iam_role.function["notifier"].arn]
    }
    # Present only in requests a service principal makes ("AWS global condition context
    # keys", IAM User Guide), so IAM principals stay denied.
    condition {
      test     = "StringNotEquals"
      variable = "aws:PrincipalServiceName"
      values   = ["cloudwatch.amazonaws.com"]
    }
  }

  statement {
    sid    = "TlsOnly"
    effect = "Deny"
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    actions   = ["sns:Publish", "sns:Subscribe"]
    resources = [aws_sns_topic.notifications.arn]
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# Each address receives a confirmation e-mail first; nothing arrives until it is confirmed.
resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.email_recipient)
  topic_arn = aws_sns_topic.notifications.arn
  protocol  = "email"
  endpoint  = each.value
}
