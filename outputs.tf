output "sns_topic_arn" {
  description = "SNS topic the notifier publishes to; the e-mail subscriptions are on it."
  value       = aws_sns_topic.notifications.arn
}

output "kms_key_arn" {
  description = "KMS key of the topic, the dead-letter queues, the Lambda environments and logs."
  value       = aws_kms_key.this.arn
}

output "notifier_function_arn" {
  description = "ARN of the notifier Lambda function."
  value       = aws_lambda_function.this["notifier"].arn
}

output "model_resolver_function_arn" {
  description = "ARN of the Lambda function the batch-inference pipeline calls to find the newest Approved model."
  value       = aws_lambda_function.this["model_resolver"].arn
}

output "data_version_function_arn" {
  description = "ARN of the Lambda function the training pipelines call to fingerprint their data."
  value       = aws_lambda_function.this["data_version"].arn
}

output "event_rule_names" {
  description = "EventBridge rule names, by rule (events/<rule>.json, plus inference_schedule when set)."
  value       = { for name, rule in aws_cloudwatch_event_rule.this : name => rule.name }
}

output "dead_letter_queue_urls" {
  description = "Dead-letter queues: events EventBridge could not deliver (events), and failed asynchronous invocations of each function."
  value = merge(
    { events = aws_sqs_queue.events_dlq.url },
    { for name, queue in aws_sqs_queue.function_dlq : name => queue.url },
  )
}
