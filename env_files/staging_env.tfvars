# Staging environment: a separate account that mirrors prod (VPC, no recreation) and still
# receives the sample data, so every change runs the whole loop before it reaches prod.
# Read by Terraform and by pipeline_scripts/config.py; variables.tf documents each variable.

# AWS region of the pipelines, jobs and resources.
region = "eu-west-1"

# dev, staging or prod: must match this file's name.
environment = "staging"

# Existing bucket for data and artefacts (created outside this project).
bucket_name = "mlops-batch-inference-staging-234567890123"

# Everything this project reads and writes lives under this prefix of the bucket.
bucket_prefix = "pipeline_shared/batch-scoring"

# Training data: s3://<bucket_name>/<bucket_prefix>/<bucket_train_prefix>/
bucket_train_prefix = "training/data/raw"

# Batches to score: s3://<bucket_name>/<bucket_prefix>/<bucket_inf_prefix>/
bucket_inf_prefix = "batch-scoring/data/raw"

# Lambda that turns pipeline status changes into email notifications.
notification_function_name = "pipeline-notification-lambda-staging"

# Extra text the notification carries for a given step and status.
custom_notification_config = [
  {
    step_name           = "RegisterModel"
    step_status         = "Succeeded"
    step_custom_message = "Staging registered a new model version: review its metrics in the model registry and approve it to promote it through staging."
  },
]

# Who receives the notifications (SNS email subscriptions; each must confirm once).
email_recipient = ["ml-team@example.com"]

# Names of the three SageMaker pipelines.
pipeline_inf       = "batch-inference-pipeline-staging"
pipeline_train     = "training-pipeline-staging"
pipeline_trainwhpo = "training-hpo-pipeline-staging"

# Update pipelines in place, as prod does.
recreate_pipelines = false

# Model registry group the pipelines register model versions in.
model_package_group_name = "abalone-rings-staging"

# Maximum MSE a model may have (see dev_env.tfvars for how 6.0 was chosen).
accuracy_mse_threshold = 6.0

# Role the pipelines and their jobs run as.
role_arn = "arn:aws:iam::234567890123:role/mlops-batch-inference-sagemaker-staging"

# Key for S3 outputs, job volumes and the pipelines: same account as role_arn, same region.
kms_key = "arn:aws:kms:eu-west-1:234567890123:key/2345bcde-23bc-45de-67f0-234567890abc"

# Jobs run in these private subnets with this security group, as in prod.
subnet_id = ["subnet-0b2c3d4e5f6071829", "subnet-0c3d4e5f607182930"]
sg_id     = ["sg-0234567890abcdef1"]

# Upload the sample data in data/ so the whole loop runs on every deployment.
upload_training_data  = true
upload_inference_data = true

# SageMaker user id the CI deployment runs as.
user_id = "mlops-ci"

# Fail batch runs whose data breaks the training baseline, as prod does.
fail_on_data_quality_violation = true

# Statuses that send an e-mail; the custom messages above are sent whatever these say.
notify_execution_statuses = ["Succeeded", "Failed", "Stopped"]
notify_step_statuses      = ["Failed"]

# Runs start when data lands in S3; set e.g. "cron(0 6 * * ? *)" (06:00 UTC daily) to also score on a schedule.
inference_schedule_expression = ""

# IAM policy set as the permissions boundary of every role Terraform creates, so the deploy
# role may create roles only with it (README, Deploy with GitLab CI); "" for none.
permissions_boundary = ""

# Concurrent executions reserved for each Lambda function; 0 reserves none, which accounts
# with the concurrency quota of new accounts (10) need.
lambda_reserved_concurrency = 0
