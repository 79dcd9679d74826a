"""The SageMaker SDK without side effects on os.environ.

Importing: SageMaker SDK 3.27.0 creates boto3 clients when sagemaker.mlops is imported (class
attributes of AIRHub, sagemaker/ai_registry/air_hub.py, reached through sagemaker.serve), which
raises NoRegionError when no region is configured. Any region does for those clients (each
client this project uses names its own region), so when none is configured the import runs
with AWS_DEFAULT_REGION=us-east-1, and os.environ is restored after it. Every module that
imports sagemaker.mlops (or sagemaker.serve) imports this module first.

Building steps: the SDK validates execution roles by calling IAM
(sagemaker/core/helper/iam_role_resolver.py, resolve_and_validate_role, e.g. from ModelTrainer)
unless SAGEMAKER_VALIDATE_ROLE is "false", and offers no argument for it; and ProcessingStep
creates a LocalSagemakerClient with boto3's default session, which needs a region, only to
read a method name (sagemaker/mlops/workflow/steps.py). Rendering is offline, so render.py
builds inside offline_building().
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import boto3

from pipeline_scripts.environment import environment


def _any_region() -> dict[str, str]:
    """A region for the SDK's own clients when none is configured."""
    return {} if boto3.session.Session().region_name else {"AWS_DEFAULT_REGION": "us-east-1"}


def offline_building() -> AbstractContextManager[None]:
    """While building pipelines: no IAM call to validate roles, and a region for the SDK."""
    return environment(SAGEMAKER_VALIDATE_ROLE="false", **_any_region())


with environment(**_any_region()):
    import sagemaker.mlops  # noqa: E402, F401
