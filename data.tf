# The sample data of data/train and data/inference, uploaded when upload_training_data /
# upload_inference_data are set. A new or changed file starts the matching pipeline through
# the S3 rules of events.tf, so the uploads wait for those rules.

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
  kms_key_id  = var.kms_key

  depends_on = [aws_cloudwatch_event_target.start_pipeline, aws_s3_bucket_notification.eventbridge]
}
