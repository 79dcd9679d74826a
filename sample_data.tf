# The sample data of data/train and data/inference, uploaded when upload_training_data /
# upload_inference_data are set. A new or changed file starts the matching pipeline through
# the S3 rules of events.tf, so the uploads wait for everything an upload sets in motion: the
# rules and their targets, the functions, their invoke permissions and the notifier target.
#
# Destroying does NOT delete these objects: the GitLab destroy job first removes them from
# the state (`terraform state rm`), because the provider deletes every version of an object
# it destroys in a versioned bucket, including versions that registered models point to.

locals {
  sample_data = {
    training  = { upload = var.upload_training_data, dir = "data/train" }
    inference = { upload = var.upload_inference_data, dir = "data/inference" }
  }
  sample_data_files = merge([
    for kind, data in local.sample_data : {
      for file in fileset("${path.module}/${data.dir}", "*.csv") : "${kind}/${file}" => {
        source = "${path.module}/${data.dir}/${file}"
        key    = "${local.data_prefixes[kind]}${file}"
      }
    } if data.upload
  ]...)
}

resource "aws_s3_object" "sample_data" {
  for_each     = local.sample_data_files
  bucket       = var.bucket_name
  key          = each.value.key
  source       = each.value.source
  content_type = "text/csv"
  # With SSE-KMS the ETag is not the file's MD5, so the content hash is what detects a change.
  source_hash = filemd5(each.value.source)
  # The key ARN even when kms_key is an alias ARN: S3 reports the key ARN, so an alias would
  # show as a change, and re-upload (starting the pipelines), on every apply.
  kms_key_id = data.aws_kms_key.data.arn

  depends_on = [
    aws_cloudwatch_event_target.start_pipeline,
    aws_cloudwatch_event_target.notifier,
    aws_s3_bucket_notification.eventbridge,
    aws_lambda_function.this,
    aws_lambda_permission.events_invoke_notifier,
    aws_lambda_permission.pipeline_role_invokes_helper,
  ]
}

data "aws_kms_key" "data" {
  key_id = var.kms_key
}
