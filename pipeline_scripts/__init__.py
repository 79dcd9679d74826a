"""Configuration, builders and CLI of the SageMaker batch-inference pipelines."""

import os

# SageMaker SDK 3.27.0 creates a boto3 client when sagemaker.mlops is imported, which fails
# without a region; any region will do there (each client we use names its own).
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Role validation calls IAM while building steps; rendering must work offline.
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
