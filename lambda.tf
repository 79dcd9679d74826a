# The three Lambda functions: the notifier (EventBridge -> SNS e-mail) and the two helpers the
# pipelines' Lambda steps call. Each gets its own role, dead-letter queue (with an alarm, in
# alarms.tf) and log group; all share the KMS key of kms.tf.

locals {
  functions = {
    notifier = {
      description = "Turns pipeline, model registry and data events into readable e-mails"
      code_dir    = "notifier"
      handler     = "notifier.handler"
      timeout     = 30
      environment = {
        SNS_TOPIC_ARN              = aws_sns_topic.notifications.arn
        CUSTOM_NOTIFICATION_CONFIG = jsonencode(var.custom_notification_config)
        NOTIFY_STATUSES = jsonencode({
          execution = var.notify_execution_statuses
          step      = var.notify_step_statuses
        })
        # A Succeeded batch run's e-mail names data-quality violations and skipped or
        # under-labelled model quality, read from these outputs (pipeline_scripts/config.py
        # artifacts_uri).
        INFERENCE_PIPELINE = var.pipeline_inf
        ARTIFACTS_URI      = "s3://${var.bucket_name}/${var.bucket_prefix}/artifacts"
      }
    }
    model_resolver = {
      description = "Finds the newest Approved model version for the batch-inference pipeline"
      code_dir    = "model_resolver"
      handler     = "model_resolver.handler"
      timeout     = 60
      environment = {}
    }
    data_version = {
      description = "Fingerprints the training data of a training pipeline execution (lineage)"
      code_dir    = "training_data_version"
      handler     = "training_data_version.handler"
      # Lists every object version under the training prefix.
      timeout     = 300
      environment = {}
    }
    batch_dispatcher = local.batch_dispatcher_function # dispatcher.tf
    retrain_gate     = local.retrain_gate_function     # dispatcher.tf
  }

  # The helper names are a contract with pipeline_scripts/lambda_steps.py lambda_function_arn.
  function_names = {
    notifier       = var.notification_function_name
    model_resolver = "${var.model_package_group_name}-${local.contract.lambda_suffixes.model_resolver}"
    data_version   = "${var.model_package_group_name}-${local.contract.lambda_suffixes.data_version}"
    # local_runtime/router.py function_arn
    batch_dispatcher = "${var.model_package_group_name}-${local.contract.lambda_suffixes.batch_dispatcher}"
    retrain_gate     = "${var.model_package_group_name}-${local.contract.lambda_suffixes.retrain_gate}"
  }

  # Functions join the jobs' VPC when it is set; the VPC then needs a route (NAT or interface
  # endpoints) to the AWS APIs they call: SageMaker, S3, SNS and KMS.
  vpc_enabled = length(var.subnet_id) > 0
}

# The zips are built by pipeline_scripts/lambda_package.py (`make package`; the CI Terraform
# jobs run it before init): deterministic, so the same code gives the same hash on every
# machine and a checkout alone never redeploys a function.
locals {
  function_packages = { for key, f in local.functions : key => "${path.module}/build/lambda/${f.code_dir}.zip" }
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and signed artefacts in S3; the code is zipped from the reviewed commit by the plan a person approves in CI.
  for_each         = local.functions
  function_name    = local.function_names[each.key]
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  runtime          = "python3.13"
  architectures    = ["arm64"]
  handler          = each.value.handler
  filename         = local.function_packages[each.key]
  source_code_hash = filebase64sha256(local.function_packages[each.key])
  timeout          = each.value.timeout
  memory_size      = 256

  # 0, the default, reserves nothing (-1 is the provider's "unreserved"; Lambda's own 0 would
  # stop the function): an account with the concurrency quota of new accounts (10) cannot
  # reserve any, as Lambda keeps 10 unreserved ("Lambda quotas", AWS Lambda Developer Guide).
  reserved_concurrent_executions = var.lambda_reserved_concurrency == 0 ? -1 : var.lambda_reserved_concurrency
  # The key encrypts the environment variables only; Lambda does not keep a key for a function
  # without any, so setting one there would show as a change on every plan.
  kms_key_arn = length(each.value.environment) > 0 ? aws_kms_key.this.arn : null

  dynamic "environment" {
    for_each = length(each.value.environment) > 0 ? [each.value.environment] : []
    content {
      variables = environment.value
    }
  }

  tracing_config {
    mode = "Active"
  }

  # Asynchronous invocations (the notifier's) that still fail after Lambda's retries.
  dead_letter_config {
    target_arn = aws_sqs_queue.function_dlq[each.key].arn
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  dynamic "vpc_config" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      subnet_ids         = var.subnet_id
      security_group_ids = var.sg_id
    }
  }

  # Lambda checks at creation that the role may write to the dead-letter queue.
  depends_on = [aws_iam_role_policy.function]
}

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.function_names
  name              = "/aws/lambda/${each.value}"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_sqs_queue" "function_dlq" {
  for_each                  = local.function_names
  name                      = local.dead_letter_queue_names[each.key]
  kms_master_key_id         = aws_kms_key.this.arn
  message_retention_seconds = 1209600 # 14 days, SQS's maximum: time to look and redrive
}

resource "aws_iam_role" "function" {
  for_each             = local.function_names
  name                 = each.value
  description          = "Runs the ${each.value} Lambda function"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  permissions_boundary = local.permissions_boundary
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.function_names
  name     = "least-privilege"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}

# What every function needs: its own log group, dead-letter queue, traces and the shared key.
data "aws_iam_policy_document" "function" {
  for_each                = local.function_names
  source_policy_documents = [local.function_policies[each.key]]

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "WriteOwnDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.function_dlq[each.key].arn]
  }

  statement {
    sid       = "UseTheKeyThroughLambdaSnsSqs"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.kms_via_services
    }
  }

  # X-Ray's Put actions have no resource-level permissions.
  statement {
    sid       = "SendTraces"
    actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    resources = ["*"]
  }

  # Network interfaces in the jobs' subnets, when the functions run in the VPC.
  dynamic "statement" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      sid     = "CreateNetworkInterfacesInTheJobsSubnets"
      actions = ["ec2:CreateNetworkInterface"]
      resources = concat(
        ["arn:${local.partition}:ec2:${var.region}:${local.account_id}:network-interface/*"],
        [for id in var.subnet_id : "arn:${local.partition}:ec2:${var.region}:${local.account_id}:subnet/${id}"],
        [for id in var.sg_id : "arn:${local.partition}:ec2:${var.region}:${local.account_id}:security-group/${id}"],
      )
    }
  }
  dynamic "statement" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      sid = "ManageNetworkInterfaces"
      actions = [
        "ec2:AssignPrivateIpAddresses",
        "ec2:DeleteNetworkInterface",
        "ec2:UnassignPrivateIpAddresses",
      ]
      resources = ["arn:${local.partition}:ec2:${var.region}:${local.account_id}:network-interface/*"]
    }
  }
  dynamic "statement" {
    for_each = local.vpc_enabled ? [1] : []
    content {
      sid       = "DescribeNetworkInterfaces"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"] # Describe calls have no resource-level permissions
    }
  }
}

locals {
  function_policies = {
    notifier         = data.aws_iam_policy_document.notifier.json
    model_resolver   = data.aws_iam_policy_document.model_resolver.json
    data_version     = data.aws_iam_policy_document.data_version.json
    batch_dispatcher = data.aws_iam_policy_document.batch_dispatcher.json
    retrain_gate     = data.aws_iam_policy_document.retrain_gate.json
  }
  model_package_group_arn  = "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:model-package-group/${lower(var.model_package_group_name)}"
  model_package_arn_prefix = "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:model-package"
  # Where the batch-inference steps write (pipeline_scripts/steps.py StepFactory.output_uri).
  inference_artifacts_arn = "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/artifacts/${var.pipeline_inf}"
}

data "aws_iam_policy_document" "notifier" {
  statement {
    sid       = "PublishNotifications"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.notifications.arn]
  }
  # A failed processing step's own reason (ExitMessage, from /opt/ml/output/message): the
  # step event carries only "AlgorithmError: ..., exit code: 1". Pipeline jobs only.
  statement {
    sid       = "ReadFailedProcessingJobReason"
    actions   = ["sagemaker:DescribeProcessingJob"]
    resources = ["arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:processing-job/pipelines-*"]
  }
  # A registered version's training-data findings (CustomerMetadataProperties) for its e-mail,
  # when the event does not carry them (notifier _training_data_rows). This group's versions only.
  statement {
    sid       = "ReadModelVersionFindings"
    actions   = ["sagemaker:DescribeModelPackage"]
    resources = ["${local.model_package_arn_prefix}/${lower(var.model_package_group_name)}/*"]
  }
  # The result files a Succeeded batch run's subject is based on (notifier OUTCOME_FILES, and
  # LATE_LABELS_FILE for labels that arrived later), and the attributions its e-mails explain
  # the batch with (notifier EXPLANATIONS_FILE): <execution>/<step>/<output>/<file>.
  statement {
    sid     = "ReadBatchQualityResults"
    actions = ["s3:GetObject"]
    resources = [
      "${local.inference_artifacts_arn}/*/${local.contract.steps.data_quality_check}/${local.contract.outputs.data_quality_results}/summary.json",
      "${local.inference_artifacts_arn}/*/${local.contract.steps.model_quality_check}/${local.contract.outputs.model_quality_results}/statistics.json",
      "${local.inference_artifacts_arn}/*/${local.contract.steps.labels_quality_check}/${local.contract.outputs.model_quality_results}/statistics.json",
      "${local.inference_artifacts_arn}/*/${local.contract.steps.explain_batch}/${local.contract.outputs.batch_explanations}/attributions.json",
    ]
  }
  # The outputs are encrypted with the jobs' key (kms_key); S3 decrypts them for the reader.
  statement {
    sid       = "DecryptBatchQualityResults"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "model_resolver" {
  # A List call is authorized against the model-package resource type as a whole, not one
  # group's packages; listing returns names only, describing stays within the group.
  statement {
    sid       = "ListModelPackages"
    actions   = ["sagemaker:ListModelPackages"]
    resources = ["${local.model_package_arn_prefix}/*"]
  }
  statement {
    sid       = "ReadTheGroupsModelPackages"
    actions   = ["sagemaker:DescribeModelPackage", "sagemaker:DescribeModelPackageGroup"]
    resources = [local.model_package_group_arn, "${local.model_package_arn_prefix}/${lower(var.model_package_group_name)}/*"]
  }
}

data "aws_iam_policy_document" "data_version" {
  statement {
    sid       = "HeadTrainingData"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}/${local.data_prefixes.training}*"]
  }
  statement {
    sid       = "ListTrainingDataVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.data_prefixes.training}*"]
    }
  }
  # Integrity of registered models (issue 10 point 6): record_integrity and verify_integrity
  # read (GetObject, GetObjectVersion) the training pipelines' model.tar.gz and transform.json.
  statement {
    sid     = "ReadModelArtifactsForIntegrity"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [
      "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/artifacts/${var.pipeline_train}/*/model.tar.gz",
      "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/artifacts/${var.pipeline_train}/*/transform.json",
      "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/artifacts/${var.pipeline_trainwhpo}/*/model.tar.gz",
      "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/artifacts/${var.pipeline_trainwhpo}/*/transform.json",
    ]
  }
  # Labelled batches for retraining (issue 10 point 4, action labelled_batches): list the
  # labels files' versions, read a batch's report next to its predictions, and copy exact
  # versions of labels and batches (CopyObject with a source VersionId needs
  # s3:GetObjectVersion on the source and s3:PutObject on the destination: Amazon S3 API
  # reference, CopyObject, "Permissions") into the content-addressed snapshot prefix, which
  # it reads back for the sha256 of each copy.
  statement {
    sid       = "ListLabelsVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.labels_prefix}*"]
    }
  }
  statement {
    sid     = "ReadLabelledBatches"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [
      "arn:${local.partition}:s3:::${var.bucket_name}/${local.labels_prefix}*",
      "arn:${local.partition}:s3:::${var.bucket_name}/${local.data_prefixes.inference}*",
      "arn:${local.partition}:s3:::${var.bucket_name}/${var.bucket_prefix}/predictions/*/report/batch_report.json",
      "arn:${local.partition}:s3:::${var.bucket_name}/${local.labelled_batches_prefix}*",
    ]
  }
  statement {
    sid       = "WriteLabelledBatchesSnapshot"
    actions   = ["s3:PutObject"]
    resources = ["arn:${local.partition}:s3:::${var.bucket_name}/${local.labelled_batches_prefix}*"]
  }
  # The copies are written encrypted with kms_key (SSE-KMS needs kms:GenerateDataKey to write
  # and kms:Decrypt to read: Amazon S3 user guide, "Using server-side encryption with AWS KMS
  # keys (SSE-KMS)", permissions), only through S3.
  statement {
    sid       = "EncryptLabelledBatchesSnapshot"
    actions   = ["kms:GenerateDataKey"]
    resources = [var.kms_key]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
  # The pipelines write them encrypted with the jobs' key (kms_key); S3 decrypts for the reader.
  statement {
    sid       = "DecryptModelArtifacts"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

locals {
  # pipeline_scripts/retraining.py snapshot_uri: <bucket_prefix>/labelled-batches/<sha256>/.
  labelled_batches_prefix = "${var.bucket_prefix}/labelled-batches/"
}

# The pipelines' execution role (role_arn, not created here) may call the two helpers.
resource "aws_lambda_permission" "pipeline_role_invokes_helper" {
  for_each      = toset(["model_resolver", "data_version"])
  statement_id  = "PipelineExecutionRoleInvokes"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = var.role_arn
}
