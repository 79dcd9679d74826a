"""The embedded AWS API (local_runtime/aws.py): this process's calls through boto3's default
session are answered in the calling thread by the server's own application, exactly as the
server answers them over HTTP (which other processes, the jobs, use)."""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from local_runtime.aws import embedded_aws

REGION = "eu-west-1"


def _error(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    error = raised.value.response
    return (
        error["Error"]["Code"],
        error["Error"].get("Message", ""),
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


def _scenario(session: boto3.Session | None, bucket: str) -> list:
    """A few S3 and SageMaker calls, their answers without request ids and times."""
    make = boto3.client if session is None else session.client
    s3, sagemaker = make("s3"), make("sagemaker")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    # An underscore in a header name (a metadata key) is kept as sent only by the server.
    s3.put_object(Bucket=bucket, Key="a/b.csv", Body=b"x,y\n1,2\n", Metadata={"m_1": "v"})
    s3.put_object(Bucket=bucket, Key="a/c.csv", Body=b"z" * 2048, Metadata={"plain": "p"})
    # Keys that URLs encode (botocore quotes them; the server decodes the path).
    odd = "a/x y+z%2F=&?é.csv"
    s3.put_object(Bucket=bucket, Key=odd, Body=b"odd")
    got = s3.get_object(Bucket=bucket, Key="a/b.csv")
    head = s3.head_object(Bucket=bucket, Key="a/c.csv")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    group = f"{bucket}-group"
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    described = sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    return [
        (got["Body"].read(), got["Metadata"], got["ContentLength"], got["ContentType"]),
        s3.get_object(Bucket=bucket, Key=odd)["Body"].read(),
        (head["ContentLength"], head["Metadata"], head["ETag"]),
        [(o["Key"], o["Size"], o["ETag"]) for o in listing["Contents"]],
        described["ModelPackageGroupStatus"],
        # Errors: a HEAD carries no body (botocore says "404"), the others the service's code.
        _error(s3.head_object, Bucket=bucket, Key="missing"),
        _error(s3.get_object, Bucket=bucket, Key="missing"),
        _error(sagemaker.describe_model_package_group, ModelPackageGroupName="missing"),
    ]


def test_calls_of_this_process_are_answered_as_the_server_answers_them(caplog):
    with embedded_aws(REGION):
        caplog.set_level(logging.INFO, logger="werkzeug")  # the server logs each request
        in_process = _scenario(None, "in-process")
        over_http = _scenario(boto3.Session(region_name=REGION), "over-http")
    served = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert in_process == over_http
    assert in_process[1] == b"odd"
    assert in_process[5] == ("404", "Not Found", 404)
    # The server saw every call of the other session, and of the default session's only the
    # one with an underscored header.
    assert sum("/over-http" in line for line in served) == 10
    assert [line for line in served if "/in-process" in line] == [
        line for line in served if "PUT /in-process/a/b.csv" in line
    ]
    assert len([line for line in served if "/in-process" in line]) == 1


def test_a_client_kept_past_the_embedded_api_no_longer_reaches_it():
    with embedded_aws(REGION):
        s3 = boto3.client("s3", config=Config(retries={"total_max_attempts": 1}))
        s3.create_bucket(Bucket="kept", CreateBucketConfiguration={"LocationConstraint": REGION})
    with pytest.raises(EndpointConnectionError):
        s3.list_objects_v2(Bucket="kept")
