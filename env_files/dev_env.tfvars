# Development environment. Read by Terraform (terraform plan -var-file=env_files/dev_env.tfvars)
# and by the Python pipeline builders (pipeline_scripts/config.py); variables.tf documents each
# variable. Every variable is set here explicitly as a worked example.

# AWS region of the pipelines, jobs and resources.
region = "eu-west-1"

# dev, staging or prod: must match this file's name.
environment = "dev"

# Existing bucket for data and artefacts (created outside this project).
bucket_name = "mlops-batch-inference-dev-123456789012"

# Everything this project reads and writes lives under this prefix of the bucket.
bucket_prefix = "pipeline_shared/batch-scoring"

# Training data: s3://<bucket_name>/<bucket_prefix>/<bucket_train_prefix>/
bucket_train_prefix = "training/data/raw"

# Batches to score: s3://<bucket_name>/<bucket_prefix>/<bucket_inf_prefix>/
bucket_inf_prefix = "batch-scoring/data/raw"

# Lambda that turns pipeline status changes into email notifications.
notification_function_name = "pipeline-notification-lambda-dev"

# Extra text the notification carries for a given step and status.
custom_notification_config = [
  {
    step_name           = "RegisterModel"
    step_status         = "Succeeded"
    step_custom_message = "A new model version is waiting for approval: review its evaluation metrics in the model registry and approve it so the next batch run uses it."
  },
]

# Who receives the notifications (SNS email subscriptions; each must confirm once).
email_recipient = ["ml-team@example.com"]

# Names of the three SageMaker pipelines.
pipeline_inf       = "batch-inference-pipeline-dev"
pipeline_train     = "training-pipeline-dev"
pipeline_trainwhpo = "training-hpo-pipeline-dev"

# true deletes and recreates the pipelines on upsert (drops their execution history).
recreate_pipelines = false

# Model registry group the pipelines register model versions in.
model_package_group_name = "abalone-rings-dev"

# Maximum MSE a model may have. On UCI abalone the mean predictor scores 10.4 and a tuned
# gradient-boosted model about 4.6, so 6.0 rejects models that learnt little.
accuracy_mse_threshold = 6.0

# Role the pipelines and their jobs run as.
role_arn = "arn:aws:iam::123456789012:role/mlops-batch-inference-sagemaker-dev"

# Key for S3 outputs, job volumes and the pipelines: same account as role_arn, same region.
kms_key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

# Jobs run outside a VPC when both lists are empty.
subnet_id = []
sg_id     = []

# Upload the sample data in data/ so the whole loop can run in dev.
upload_training_data  = true
upload_inference_data = true

# Your SageMaker user id, to tell your pipelines and jobs from your colleagues'.
user_id = "a12345"

# dev: report data-quality violations without failing the run, so the model-quality check
# still runs on drifted batches.
fail_on_data_quality_violation = false

# Statuses that send an e-mail; the custom messages above are sent whatever these say.
notify_execution_statuses = ["Succeeded", "Failed", "Stopped"]
notify_step_statuses      = ["Failed"]

# dev: runs start when data lands in S3; set e.g. "cron(0 6 * * ? *)" (06:00 UTC daily) to also score on a schedule.
inference_schedule_expression = ""

# IAM policy set as the permissions boundary of every role Terraform creates, so the deploy
# role may create roles only with it (README, Deploy with GitLab CI); "" for none.
permissions_boundary = ""

# Concurrent executions reserved for each Lambda function; 0 reserves none, which accounts
# with the concurrency quota of new accounts (10) need.
lambda_reserved_concurrency = 0
