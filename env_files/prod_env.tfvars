# Production environment: its own account, jobs inside a VPC, pipelines updated in place and
# real data only. Read by Terraform and by pipeline_scripts/config.py; variables.tf documents
# each variable.

# AWS region of the pipelines, jobs and resources.
region = "eu-west-1"

# dev, staging or prod: must match this file's name.
environment = "prod"

# Existing bucket for data and artefacts (created outside this project).
bucket_name = "mlops-batch-inference-prod-345678901234"

# Everything this project reads and writes lives under this prefix of the bucket.
bucket_prefix = "pipeline_shared/batch-scoring"

# Training data: s3://<bucket_name>/<bucket_prefix>/<bucket_train_prefix>/
bucket_train_prefix = "training/data/raw"

# Batches to score: s3://<bucket_name>/<bucket_prefix>/<bucket_inf_prefix>/
bucket_inf_prefix = "batch-scoring/data/raw"

# Lambda that turns pipeline status changes into email notifications.
notification_function_name = "pipeline-notification-lambda-prod"

# Extra text the notification carries for a given step and status.
custom_notification_config = [
  {
    step_name           = "RegisterModel"
    step_status         = "Succeeded"
    step_custom_message = "A new production model version is waiting for approval: compare its metrics with the approved version in the model registry before approving it."
  },
]

# Who receives the notifications (SNS email subscriptions; each must confirm once).
email_recipient = ["ml-team@example.com", "ml-oncall@example.com"]

# Names of the three SageMaker pipelines.
pipeline_inf       = "batch-inference-pipeline-prod"
pipeline_train     = "training-pipeline-prod"
pipeline_trainwhpo = "training-hpo-pipeline-prod"

# Never recreate in prod: it would drop the pipelines' execution history.
recreate_pipelines = false

# Model registry group the pipelines register model versions in.
model_package_group_name = "abalone-rings-prod"

# Maximum MSE a model may have (see dev_env.tfvars for how 6.0 was chosen).
accuracy_mse_threshold = 6.0

# Role the pipelines and their jobs run as.
role_arn = "arn:aws:iam::345678901234:role/mlops-batch-inference-sagemaker-prod"

# Key for S3 outputs, job volumes and the pipelines: same account as role_arn, same region.
kms_key = "arn:aws:kms:eu-west-1:345678901234:key/3456cdef-34cd-56ef-7801-34567890abcd"

# Jobs run in these private subnets with this security group.
subnet_id = ["subnet-0a1b2c3d4e5f60718", "subnet-0f1e2d3c4b5a69788"]
sg_id     = ["sg-0123456789abcdef0"]

# Prod only ever sees real data.
upload_training_data  = false
upload_inference_data = false

# SageMaker user id the CI deployment runs as.
user_id = "mlops-ci"

# Fail batch runs whose data breaks the training baseline.
fail_on_data_quality_violation = true

# Statuses that send an e-mail; the custom messages above are sent whatever these say.
notify_execution_statuses = ["Succeeded", "Failed", "Stopped"]
notify_step_statuses      = ["Failed", "Stopped"]

# Runs start when data lands in S3; set e.g. "cron(0 6 * * ? *)" (06:00 UTC daily) to also score on a schedule.
inference_schedule_expression = ""

# IAM policy set as the permissions boundary of every role Terraform creates, so the deploy
# role may create roles only with it (README, Deploy with GitLab CI); "" for none.
permissions_boundary = ""

# Concurrent executions reserved for each Lambda function; 0 reserves none, which accounts
# with the concurrency quota of new accounts (10) need.
lambda_reserved_concurrency = 0
