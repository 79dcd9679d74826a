# An alarm on every dead-letter queue: a message there is an event EventBridge could not
# deliver or a notifier invocation that failed for good, so the e-mail it stood for is lost.
# The alarm itself e-mails through the notification topic (sns.tf and kms.tf let CloudWatch publish).

locals {
  # Names, not the queues themselves: the key policy names the alarms, and the queues use the key.
  dead_letter_queue_names = merge(
    { events = "${local.name_prefix}-events-dlq" },
    { for key, name in local.function_names : key => "${name}-dlq" },
  )
  dlq_alarm_names = { for key in keys(local.dead_letter_queue_names) : key => "${local.name_prefix}-${replace(key, "_", "-")}-dlq-not-empty" }
  dlq_alarm_arns  = { for name, alarm in local.dlq_alarm_names : name => "arn:${local.partition}:cloudwatch:${var.region}:${local.account_id}:alarm:${alarm}" }
}

resource "aws_cloudwatch_metric_alarm" "dead_letter_queue" {
  for_each          = local.dead_letter_queue_names
  alarm_name        = local.dlq_alarm_names[each.key]
  alarm_description = "Messages in ${each.value}: events or e-mails that were not delivered. Read them there, fix the cause, then redrive or delete them."
  namespace         = "AWS/SQS"
  metric_name       = "ApproximateNumberOfMessagesVisible"
  dimensions        = { QueueName = each.value }
  statistic         = "Maximum"
  # SQS sends its metrics to CloudWatch every 5 minutes ("Available CloudWatch metrics for
  # Amazon SQS", Amazon SQS Developer Guide).
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching" # an empty, inactive queue sends no data points
  alarm_actions       = [aws_sns_topic.notifications.arn]
  ok_actions          = [aws_sns_topic.notifications.arn]

  depends_on = [aws_sqs_queue.events_dlq, aws_sqs_queue.function_dlq]
}
