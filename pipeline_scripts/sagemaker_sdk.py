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
and TransformStep each create a LocalSagemakerClient, with a local session of its own (a
boto3 session, an S3 resource and clients; it needs a region), only to read a method's name
(sagemaker/mlops/workflow/steps.py: `LocalSagemakerClient().create_processing_job.__name__`).
Rendering is offline, so render.py builds inside offline_building().
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3

from pipeline_scripts.environment import environment


def _any_region() -> dict[str, str]:
    """A region for the SDK's own clients when none is configured."""
    return {} if boto3.session.Session().region_name else {"AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def offline_building() -> Iterator[None]:
    """While building pipelines: no IAM call to validate roles, a region for the SDK, and the
    steps' name checks without a local session each."""
    with environment(SAGEMAKER_VALIDATE_ROLE="false", **_any_region()), _name_checks_only():
        yield


@contextmanager
def _name_checks_only() -> Iterator[None]:
    """The steps read only method names of LocalSagemakerClient(), which the class itself has:
    while building, sagemaker.mlops.workflow.steps gets the class instead of a new client. A
    render opened 20 such sessions: 1.8 -> 0.6 s of CPU, the definitions byte-identical."""
    client_class = sdk_steps.LocalSagemakerClient
    sdk_steps.LocalSagemakerClient = lambda: client_class
    try:
        yield
    finally:
        sdk_steps.LocalSagemakerClient = client_class


with environment(**_any_region()):
    import sagemaker.mlops  # noqa: E402, F401
    import sagemaker.mlops.workflow.steps as sdk_steps  # noqa: E402
