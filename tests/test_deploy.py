"""Upsert, re-upsert and delete round-trip against moto's SageMaker and S3."""

from __future__ import annotations

import json
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from pipeline_scripts.cli import run
from pipeline_scripts.config import load_config
from pipeline_scripts.deploy import upsert_pipeline
from pipeline_scripts.render import render
from tests.conftest import REPO_ROOT

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    config = load_config(DEV_ENV)
    with mock_aws():
        s3 = boto3.client("s3", region_name=config.env.region)
        s3.create_bucket(
            Bucket=config.env.bucket_name,
            CreateBucketConfiguration={"LocationConstraint": config.env.region},
        )
        yield config


def pipeline_names(config):
    env = config.env
    return [env.pipeline_train, env.pipeline_trainwhpo, env.pipeline_inf]


@pytest.mark.e2e
def test_upsert_creates_then_changes_nothing_then_delete_removes(aws, tmp_path):
    config = aws
    first, second, deleted = [], [], []
    run("upsert", str(DEV_ENV), tmp_path, out=first.append)
    sagemaker = boto3.client("sagemaker", region_name=config.env.region)
    before = {n: sagemaker.describe_pipeline(PipelineName=n) for n in pipeline_names(config)}

    run("upsert", str(DEV_ENV), tmp_path, out=second.append)
    after = {n: sagemaker.describe_pipeline(PipelineName=n) for n in pipeline_names(config)}

    assert [line for line in first if line.startswith("pipeline")] == [
        f"pipeline {n}: created" for n in pipeline_names(config)
    ]
    assert [line for line in second if line.startswith(("pipeline", "code"))] == [
        line.replace("uploaded", "unchanged").replace("created", "unchanged")
        for line in first
        if line.startswith(("pipeline", "code"))
    ]
    for name in pipeline_names(config):
        assert after[name]["LastModifiedTime"] == before[name]["LastModifiedTime"]
        stored = json.loads(after[name]["PipelineDefinition"])
        assert stored == json.loads((tmp_path / f"{name}.json").read_text())
        assert after[name]["RoleArn"] == config.env.role_arn

    # The code each definition references is in S3, encrypted with the configured key.
    s3 = boto3.client("s3", region_name=config.env.region)
    for asset in render(config).code_assets:
        bucket, key = asset.bucket_and_key
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == asset.body

    run("delete", str(DEV_ENV), tmp_path, out=deleted.append)
    assert deleted == [f"pipeline {n}: deleted" for n in pipeline_names(config)]
    assert sagemaker.list_pipelines()["PipelineSummaries"] == []
    deleted.clear()
    run("delete", str(DEV_ENV), tmp_path, out=deleted.append)
    assert deleted == [f"pipeline {n}: absent" for n in pipeline_names(config)]


@pytest.mark.e2e
def test_changed_definition_is_updated_or_recreated(aws):
    config = aws
    sagemaker = boto3.client("sagemaker", region_name=config.env.region)
    pipeline = render(config).pipelines[0]
    assert upsert_pipeline(sagemaker, pipeline, config, recreate=False) == "created"
    changed = json.loads(pipeline.definition)
    changed["Parameters"][0]["DefaultValue"] = "s3://elsewhere/data/"
    changed_pipeline = replace(pipeline, definition=json.dumps(changed))
    assert upsert_pipeline(sagemaker, changed_pipeline, config, recreate=False) == "updated"
    stored = sagemaker.describe_pipeline(PipelineName=pipeline.name)["PipelineDefinition"]
    assert json.loads(stored) == changed
    assert upsert_pipeline(sagemaker, pipeline, config, recreate=True) == "recreated"
    stored = sagemaker.describe_pipeline(PipelineName=pipeline.name)["PipelineDefinition"]
    assert json.loads(stored) == json.loads(pipeline.definition)
    assert upsert_pipeline(sagemaker, pipeline, config, recreate=True) == "unchanged"
