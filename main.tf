# What Terraform deploys around the three SageMaker pipelines (which `make upsert` creates):
# EventBridge rules (events.tf), the notifier and the helper Lambda functions (lambda.tf), the
# SNS topic (sns.tf), its KMS key (kms.tf), the dead-letter queue alarms (alarms.tf), the sample
# data uploads (sample_data.tf). Inputs: variables.tf,
# set per environment in env_files/<env>.tfvars; tags: tags.json.

terraform {
  # Validation blocks that refer to other variables need >= 1.9; one patch series so every
  # run (laptop and CI image) formats, plans and applies alike.
  required_version = "~> 1.11.4"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # The last 5.x release: python3.13 runtimes are accepted since 5.76.0.
      version = "5.100.0"
    }
  }

  # GitLab-managed Terraform state; CI passes the address, lock address and credentials with
  # -backend-config, so no state location is written here.
  backend "http" {}
}

provider "aws" {
  region = var.region
  # The pipelines run in the account of role_arn: refuse to deploy into any other account.
  allowed_account_ids = [local.account_id]

  default_tags {
    tags = local.tags
  }
}

locals {
  # tags.json is the tag set of every resource (and of the SageMaker jobs); environment and
  # user id tell the deployments of one account apart.
  tags = merge(jsondecode(file("${path.module}/tags.json")), {
    environment = var.environment
    user-id     = var.user_id
  })

  partition  = split(":", var.role_arn)[1]
  account_id = split(":", var.role_arn)[4]

  # Names derive from the model package group, as the helper Lambda names the pipelines call
  # (pipeline_scripts/lambda_steps.py lambda_function_arn) do.
  name_prefix = var.model_package_group_name

  # S3 key prefixes of the data, each ending in "/" so "raw" does not also match "raw2/".
  data_prefixes = {
    training  = "${var.bucket_prefix}/${var.bucket_train_prefix}/"
    inference = "${var.bucket_prefix}/${var.bucket_inf_prefix}/"
  }

  # Every role this configuration creates gets the boundary when one is set, so the deploy
  # role may be allowed to create roles only with it (README, Deploy with GitLab CI).
  permissions_boundary = var.permissions_boundary == "" ? null : var.permissions_boundary

  # SageMaker lowercases the pipeline name in the ARN its events carry (pipeline names are
  # lower-case anyway, variables.tf).
  pipeline_arn_prefix = "arn:${local.partition}:sagemaker:${var.region}:${local.account_id}:pipeline"
  pipeline_arns = {
    training     = "${local.pipeline_arn_prefix}/${lower(var.pipeline_train)}"
    training_hpo = "${local.pipeline_arn_prefix}/${lower(var.pipeline_trainwhpo)}"
    inference    = "${local.pipeline_arn_prefix}/${lower(var.pipeline_inf)}"
  }
}
