"""The strict local runtime: each rule the service enforces, shown by a definition that breaks it
failing in a local run with AWS's own message. Reuses the embedded API and the small
definitions of tests/test_runner.py."""

from __future__ import annotations

import pytest

from local_runtime.api_model import ApiValidationError, check_request, constraint_errors
from local_runtime.api_model import input_shape as shape_of
from tests import test_runner
from tests.test_runner import Small

# The embedded API and the small-definition builder of tests/test_runner.py.
aws, small = test_runner.aws, test_runner.small
XGBOOST_IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"

METADATA_PATTERN = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"  # botocore: CustomerMetadataValue


def _register(small: Small, name: str, metadata: dict, **extra) -> dict:
    """A RegisterModel step as the SDK renders one, with `metadata` as its
    CustomerMetadataProperties."""
    return {
        "Name": name,
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": "strict-runtime-models",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": XGBOOST_IMAGE,
                        "ModelDataUrl": f"s3://{small.bucket}/strict/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": metadata,
            **extra,
        },
    }


def test_a_value_known_only_at_run_time_is_checked_against_the_api_model(small):
    """Defect 1's kind: a metadata value that breaks CreateModelPackage's pattern once the
    expressions are resolved fails RegisterModel with the service's ValidationException."""
    value = {
        "Std:Join": {
            "On": " ",
            "Values": ["s3://b/p/", "(1 objects,", {"Get": "Execution.PipelineExecutionId"}, ")"],
        }
    }
    step = _register(small, "RegisterModel", {"data_version": value})
    execution = small.runner().run_definition(small.definition(step), "strict-metadata")
    record = execution.step("RegisterModel")
    assert record.status == "Failed"
    shown = f"s3://b/p/ (1 objects, {execution.execution_id} )"
    assert record.failure_reason == (
        "ValidationException: 1 validation error detected: "
        f"Value '{shown}' at 'customerMetadataProperties.data_version' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {METADATA_PATTERN}"
    )


def test_the_same_request_with_valid_values_registers(small):
    step = _register(small, "RegisterModel", {"data_version": "s3://b/p/ 1 objects sha256:f2"})
    execution = small.runner().run_definition(small.definition(step), "strict-metadata-ok")
    assert execution.status == "Succeeded", execution.failure_reason


def test_several_violations_are_counted_and_joined_as_aws_does(small):
    step = _register(
        small,
        "RegisterModel",
        {"k" * 129: "ok", "v": "x" * 257},
        ModelApprovalStatus="Accepted",
    )
    execution = small.runner().run_definition(small.definition(step), "strict-many")
    reason = execution.step("RegisterModel").failure_reason
    assert reason.startswith("ValidationException: 3 validation errors detected: Value '")
    assert "at 'modelApprovalStatus' failed to satisfy constraint: Member must satisfy enum " in (
        reason
    )
    assert "Member must have length less than or equal to 128" in reason
    assert "Member must have length less than or equal to 256" in reason
    assert reason.count("; Value ") == 2


def test_a_processing_request_broken_at_run_time_fails_before_the_job_runs(small):
    """An instance count from a parameter: 0 is below CreateProcessingJob's minimum."""
    step = small.processing("Prepare", "write", "data", "1", outputs=["data"])
    count = {"Get": "Parameters.Instances"}
    step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = count
    definition = small.definition(
        step, parameters=[{"Name": "Instances", "Type": "Integer", "DefaultValue": 1}]
    )
    execution = small.runner().run_definition(definition, "strict-count", {"Instances": 0})
    record = execution.step("Prepare")
    assert record.failure_reason == (
        "ValidationException: 1 validation error detected: Value '0' at "
        "'processingResources.clusterConfig.instanceCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )
    assert not (record.workdir / "processing").exists()  # no job was started


def test_required_members_and_types_are_checked():
    shape = shape_of("CreateModelPackage")
    assert constraint_errors({"ModelApprovalStatus": "Approved"}, shape) == []
    with pytest.raises(ApiValidationError) as raised:
        check_request("StartPipelineExecution", {"PipelineParameters": [{"Name": "x"}]})
    assert str(raised.value) == (
        "ValidationException: 2 validation errors detected: Value null at 'pipelineName' failed "
        "to satisfy constraint: Member must not be null; Value null at "
        "'pipelineParameters.1.member.value' failed to satisfy constraint: Member must not be null"
    )


def test_a_processing_job_that_explains_its_failure_keeps_its_message(small):
    step = small.processing("Check", "explain", "MSE 9.1 exceeds threshold 6.00")
    execution = small.runner().run_definition(small.definition(step), "strict-message")
    assert execution.step("Check").failure_reason == "MSE 9.1 exceeds threshold 6.00"
