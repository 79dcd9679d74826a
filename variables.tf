# Input variables, set per environment in env_files/<env>.tfvars.
#
# The same tfvars file is read by the Python pipeline builders (pipeline_scripts/config.py),
# whose EnvConfig declares these variables once more with the same names, types, defaults and
# descriptions, and runs the same checks: tests/test_config.py keeps the two in agreement and
# feeds Terraform the same good and bad files. Keep regular expressions free of backslashes so
# the identical strings work in Python and in Terraform (RE2).
#
# Validation rules that refer to other variables need Terraform >= 1.9.

variable "region" {
  description = "AWS region the pipelines, jobs and resources run in, e.g. eu-west-1."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", var.region))
    error_message = "Expected region to be an AWS region name such as eu-west-1."
  }
}

variable "environment" {
  description = "Deployment environment: dev, staging or prod."
  type        = string
  nullable    = false

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "Expected environment to be one of dev, staging, prod."
  }
}

variable "bucket_name" {
  description = "Name of the existing S3 bucket that holds the data and the pipeline artefacts."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !strcontains(var.bucket_name, "..")
    error_message = "Expected bucket_name to be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending alphanumeric, without '..'."
  }
  validation {
    condition     = !can(regex("^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$", var.bucket_name))
    error_message = "Expected bucket_name not to be formatted as an IP address."
  }
  validation {
    condition = alltrue(concat(
      [for p in ["xn--", "sthree-", "amzn-s3-demo-"] : !startswith(var.bucket_name, p)],
      [for s in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] : !endswith(var.bucket_name, s)],
    ))
    error_message = "Expected bucket_name without a prefix or suffix S3 reserves (xn--, sthree-, amzn-s3-demo-, -s3alias, --ol-s3, .mrap, --x-s3, --table-s3)."
  }
}

variable "bucket_prefix" {
  description = "S3 prefix inside bucket_name for all data and artefacts of this project, e.g. pipeline_shared/batch-scoring."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$", var.bucket_prefix)) && length(setintersection(split("/", var.bucket_prefix), [".", ".."])) == 0
    error_message = "Expected bucket_prefix to be an S3 key prefix inside the bucket: '/'-separated segments of letters, digits, '_', '.', '=' or '-', without s3://, a leading or trailing '/' or empty segments."
  }
}

variable "bucket_train_prefix" {
  description = "Prefix of the training data, relative to bucket_prefix, e.g. training/data/raw."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$", var.bucket_train_prefix)) && length(setintersection(split("/", var.bucket_train_prefix), [".", ".."])) == 0
    error_message = "Expected bucket_train_prefix to be an S3 key prefix: '/'-separated segments of letters, digits, '_', '.', '=' or '-', without s3://, a leading or trailing '/' or empty segments."
  }
  validation {
    condition     = !(var.bucket_train_prefix == var.bucket_prefix || startswith(var.bucket_train_prefix, "${var.bucket_prefix}/") || startswith(var.bucket_prefix, "${var.bucket_train_prefix}/"))
    error_message = "Expected bucket_train_prefix relative to bucket_prefix: do not repeat bucket_prefix in it."
  }
  validation {
    condition     = !(var.bucket_train_prefix == "artifacts" || startswith(var.bucket_train_prefix, "artifacts/"))
    error_message = "Expected bucket_train_prefix outside 'artifacts', where the pipelines write their outputs."
  }
}

variable "bucket_inf_prefix" {
  description = "Prefix of the batch-inference data, relative to bucket_prefix, e.g. batch-scoring/data/raw."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*$", var.bucket_inf_prefix)) && length(setintersection(split("/", var.bucket_inf_prefix), [".", ".."])) == 0
    error_message = "Expected bucket_inf_prefix to be an S3 key prefix: '/'-separated segments of letters, digits, '_', '.', '=' or '-', without s3://, a leading or trailing '/' or empty segments."
  }
  validation {
    condition     = !(var.bucket_inf_prefix == var.bucket_prefix || startswith(var.bucket_inf_prefix, "${var.bucket_prefix}/") || startswith(var.bucket_prefix, "${var.bucket_inf_prefix}/"))
    error_message = "Expected bucket_inf_prefix relative to bucket_prefix: do not repeat bucket_prefix in it."
  }
  validation {
    condition     = !(var.bucket_inf_prefix == "artifacts" || startswith(var.bucket_inf_prefix, "artifacts/"))
    error_message = "Expected bucket_inf_prefix outside 'artifacts', where the pipelines write their outputs."
  }
  validation {
    # Overlapping prefixes would make new batches look like new training data and vice versa.
    condition     = !(var.bucket_inf_prefix == var.bucket_train_prefix || startswith(var.bucket_inf_prefix, "${var.bucket_train_prefix}/") || startswith(var.bucket_train_prefix, "${var.bucket_inf_prefix}/"))
    error_message = "Expected bucket_inf_prefix neither inside nor around bucket_train_prefix."
  }
}

variable "notification_function_name" {
  description = "Name of the Lambda function that turns pipeline status changes into notifications."
  type        = string
  default     = "pipeline-notification-lambda"
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.notification_function_name))
    error_message = "Expected notification_function_name to be a Lambda function name: 1 to 64 letters, digits, '_' or '-'."
  }
}

variable "custom_notification_config" {
  description = "Custom notification messages, each for one pipeline step (step_name) reaching one status (step_status: Starting, Executing, Stopping, Stopped, Failed or Succeeded)."
  type = list(object({
    step_name           = string
    step_status         = string
    step_custom_message = string
  }))
  default  = []
  nullable = false

  validation {
    condition     = alltrue([for c in var.custom_notification_config : contains(["Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"], c.step_status)])
    error_message = "Expected every step_status in custom_notification_config to be one of Starting, Executing, Stopping, Stopped, Failed, Succeeded."
  }
  validation {
    condition     = alltrue([for c in var.custom_notification_config : can(regex("^[A-Za-z0-9_-]{1,64}$", c.step_name)) && trimspace(c.step_custom_message) != ""])
    error_message = "Expected every custom_notification_config entry to have a pipeline step name (1 to 64 letters, digits, '_' or '-') and a non-empty message."
  }
  validation {
    condition     = length(distinct([for c in var.custom_notification_config : "${c.step_name}/${c.step_status}"])) == length(var.custom_notification_config)
    error_message = "Expected one custom_notification_config entry per step_name and step_status."
  }
  validation {
    # It goes into the notifier's environment, whose variables may total 4 KB ("Lambda
    # quotas", AWS Lambda Developer Guide); 3 KB leaves room for the others. The base64
    # length counts bytes (3 bytes -> 4 characters), not characters.
    condition     = length(base64encode(jsonencode(var.custom_notification_config))) <= 4096
    error_message = "Expected custom_notification_config of at most 3072 bytes as JSON: it is passed in the notifier's environment, which Lambda limits to 4 KB."
  }
}

variable "email_recipient" {
  description = "Email addresses that receive the pipeline notifications (at least one)."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.email_recipient) > 0 && length(distinct(var.email_recipient)) == length(var.email_recipient)
    error_message = "Expected email_recipient to list at least one address, each once."
  }
  validation {
    condition     = alltrue([for e in var.email_recipient : can(regex("^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+([.][A-Za-z0-9-]+)*[.][A-Za-z]{2,}$", e))])
    error_message = "Expected every email_recipient entry to be an email address such as ml-team@example.com."
  }
}

variable "pipeline_inf" {
  description = "Name of the batch-inference SageMaker pipeline."
  type        = string
  default     = "batch-inference-pipeline"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9](-*[a-z0-9]){0,255}$", var.pipeline_inf))
    error_message = "Expected pipeline_inf to be a lower-case SageMaker pipeline name: lower-case letters, digits and hyphens, starting and ending alphanumeric, at most 256 characters."
  }
}

variable "pipeline_train" {
  description = "Name of the training SageMaker pipeline."
  type        = string
  default     = "training-pipeline"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9](-*[a-z0-9]){0,255}$", var.pipeline_train))
    error_message = "Expected pipeline_train to be a lower-case SageMaker pipeline name: lower-case letters, digits and hyphens, starting and ending alphanumeric, at most 256 characters."
  }
  validation {
    condition     = var.pipeline_train != var.pipeline_inf
    error_message = "Expected pipeline_train to differ from pipeline_inf."
  }
}

variable "pipeline_trainwhpo" {
  description = "Name of the training-with-hyperparameter-tuning SageMaker pipeline."
  type        = string
  default     = "training-hpo-pipeline"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9](-*[a-z0-9]){0,255}$", var.pipeline_trainwhpo))
    error_message = "Expected pipeline_trainwhpo to be a lower-case SageMaker pipeline name: lower-case letters, digits and hyphens, starting and ending alphanumeric, at most 256 characters."
  }
  validation {
    condition     = var.pipeline_trainwhpo != var.pipeline_train && var.pipeline_trainwhpo != var.pipeline_inf
    error_message = "Expected pipeline_trainwhpo to differ from pipeline_train and pipeline_inf."
  }
}

variable "recreate_pipelines" {
  description = "Delete and recreate existing pipelines on upsert instead of updating them in place."
  type        = bool
  default     = false
  nullable    = false

  validation {
    # Deleting a pipeline also drops its execution history, which prod keeps.
    condition     = !(var.environment == "prod" && var.recreate_pipelines)
    error_message = "Expected recreate_pipelines = false in prod: recreating drops the pipelines' execution history."
  }
}

variable "model_package_group_name" {
  description = "Name of the SageMaker model package group (model registry) the models are registered in."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", var.model_package_group_name))
    error_message = "Expected model_package_group_name to be letters, digits and hyphens, starting and ending alphanumeric, at most 63 characters."
  }
  validation {
    # Names derive from it; the longest, <name>-inference-data-created and
    # <name>-model-package-approved (EventBridge rules), must fit the 64 characters of a rule
    # name. tests/test_terraform.py checks every derived name against its resource's limit.
    condition     = length(var.model_package_group_name) <= 41
    error_message = "Expected model_package_group_name of at most 41 characters: the names derived from it, such as <name>-model-package-approved (an EventBridge rule, at most 64 characters), must fit."
  }
}

variable "accuracy_mse_threshold" {
  description = "Maximum mean squared error a model may have: a worse model is not registered, and a batch scored worse triggers retraining."
  type        = number
  default     = 6.0
  nullable    = false

  validation {
    condition     = var.accuracy_mse_threshold > 0
    error_message = "Expected accuracy_mse_threshold to be a number > 0."
  }
}

variable "role_arn" {
  description = "ARN of the IAM role the SageMaker pipelines and their jobs run as."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}$", var.role_arn))
    error_message = "Expected role_arn to be an IAM role ARN such as arn:aws:iam::123456789012:role/my-role."
  }
}

variable "kms_key" {
  description = "ARN of the KMS key (key or alias ARN, in region and in the account of role_arn) that encrypts S3 outputs, job volumes and the pipelines."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:(key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})|alias/[A-Za-z0-9/_-]{1,250})$", var.kms_key))
    error_message = "Expected kms_key to be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>) or alias ARN (...:alias/<name>)."
  }
  validation {
    condition     = try(split(":", var.kms_key)[3], "") == var.region
    error_message = "Expected kms_key to be a key in region (the value of the region variable)."
  }
  validation {
    condition     = try(split(":", var.kms_key)[4], "") == try(split(":", var.role_arn)[4], "") && try(split(":", var.kms_key)[1], "") == try(split(":", var.role_arn)[1], "")
    error_message = "Expected kms_key to be a key in the account and partition of role_arn."
  }
}

variable "subnet_id" {
  description = "Subnet ids the jobs and the Lambda functions run in; empty runs them outside a VPC (set with sg_id)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for s in var.subnet_id : can(regex("^subnet-[0-9a-f]{8,17}$", s))]) && length(distinct(var.subnet_id)) == length(var.subnet_id)
    error_message = "Expected every subnet_id entry to be a subnet id such as subnet-0a1b2c3d4e5f60718, each once."
  }
  # Pairing with sg_id is checked on sg_id: validations referring to each other form a cycle.
}

variable "sg_id" {
  description = "Security group ids of the jobs and the Lambda functions; empty runs them outside a VPC (set with subnet_id)."
  type        = list(string)
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for s in var.sg_id : can(regex("^sg-[0-9a-f]{8,17}$", s))]) && length(distinct(var.sg_id)) == length(var.sg_id)
    error_message = "Expected every sg_id entry to be a security group id such as sg-0123456789abcdef0, each once."
  }
  validation {
    condition     = (length(var.subnet_id) == 0) == (length(var.sg_id) == 0)
    error_message = "Expected subnet_id and sg_id to be both empty (no VPC) or both set."
  }
}

variable "upload_training_data" {
  description = "Upload the sample training data in data/ to the training data prefix."
  type        = bool
  default     = true
  nullable    = false

  validation {
    # Synthetic sample data must never train a production model.
    condition     = !(var.environment == "prod" && var.upload_training_data)
    error_message = "Expected upload_training_data = false in prod: sample data must not train a production model."
  }
}

variable "upload_inference_data" {
  description = "Upload the sample batch-inference data in data/ to the inference data prefix."
  type        = bool
  default     = false
  nullable    = false

  validation {
    # Synthetic sample batches must never be scored as production data.
    condition     = !(var.environment == "prod" && var.upload_inference_data)
    error_message = "Expected upload_inference_data = false in prod: sample batches must not be scored as production data."
  }
}

variable "user_id" {
  description = "Id of the SageMaker user, e.g. a12345, to tell the pipelines and jobs of users apart."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", var.user_id))
    error_message = "Expected user_id to be letters, digits and hyphens such as a12345, at most 63 characters."
  }
}

variable "fail_on_data_quality_violation" {
  description = "Fail the batch-inference pipeline execution on data-quality violations (violations are always reported)."
  type        = bool
  default     = true
  nullable    = false

  validation {
    # Prod consumers treat a succeeded execution as usable predictions.
    condition     = var.environment != "prod" || var.fail_on_data_quality_violation
    error_message = "Expected fail_on_data_quality_violation = true in prod: a batch that breaks the training baseline must not look like a good run."
  }
}

variable "notify_execution_statuses" {
  description = "Pipeline execution statuses that send an e-mail: any of Executing, Stopping, Stopped, Failed, Succeeded."
  type        = list(string)
  default     = ["Succeeded", "Failed", "Stopped"]
  nullable    = false

  validation {
    condition     = alltrue([for s in var.notify_execution_statuses : contains(["Executing", "Stopping", "Stopped", "Failed", "Succeeded"], s)]) && length(distinct(var.notify_execution_statuses)) == length(var.notify_execution_statuses)
    error_message = "Expected every notify_execution_statuses entry to be one of Executing, Stopping, Stopped, Failed, Succeeded, each once."
  }
}

variable "notify_step_statuses" {
  description = "Pipeline step statuses that send an e-mail: any of Starting, Executing, Stopping, Stopped, Failed, Succeeded (custom_notification_config entries are sent whatever this says)."
  type        = list(string)
  default     = ["Failed"]
  nullable    = false

  validation {
    condition     = alltrue([for s in var.notify_step_statuses : contains(["Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"], s)]) && length(distinct(var.notify_step_statuses)) == length(var.notify_step_statuses)
    error_message = "Expected every notify_step_statuses entry to be one of Starting, Executing, Stopping, Stopped, Failed, Succeeded, each once."
  }
}

variable "inference_schedule_expression" {
  description = "EventBridge schedule that also starts the batch-inference pipeline, e.g. cron(0 6 * * ? *) or rate(1 day); empty for no schedule."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.inference_schedule_expression == "" || can(regex("^(rate[(][1-9][0-9]* (minute|minutes|hour|hours|day|days)[)]|cron[(][^()]+[)])$", var.inference_schedule_expression))
    error_message = "Expected inference_schedule_expression to be empty or an EventBridge schedule expression such as cron(0 6 * * ? *) or rate(1 day)."
  }
}

variable "permissions_boundary" {
  description = "ARN of an IAM policy set as the permissions boundary of every IAM role this configuration creates; empty for none."
  type        = string
  default     = ""
  nullable    = false

  validation {
    condition     = var.permissions_boundary == "" || can(regex("^arn:aws(-[a-z]+)*:iam::([0-9]{12}|aws):policy/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,128}$", var.permissions_boundary))
    error_message = "Expected permissions_boundary to be empty or an IAM policy ARN such as arn:aws:iam::123456789012:policy/ml-boundary."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Concurrent executions reserved for each of the Lambda functions; 0 reserves none (accounts with the concurrency quota of new accounts, 10, cannot reserve any)."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.lambda_reserved_concurrency >= 0 && floor(var.lambda_reserved_concurrency) == var.lambda_reserved_concurrency
    error_message = "Expected lambda_reserved_concurrency to be 0 (none reserved) or a whole number >= 1."
  }
}
