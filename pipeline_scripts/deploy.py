"""Create, update and delete the pipelines with plain boto3.

Works against real AWS and against any endpoint set with AWS_ENDPOINT_URL (boto3 reads it).
The definition sent is the rendered string itself: `Pipeline.upsert()` would re-render.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from botocore.exceptions import ClientError

from pipeline_scripts.assets import CodeAsset
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.render import RenderedPipeline


def _is_missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in {"ResourceNotFound", "ValidationException", "404", "NoSuchKey", "NotFound"}


def upload_code(s3, assets: Iterable[CodeAsset], kms_key: str) -> list[tuple[str, str]]:
    """Uploads step code that is not there yet. Keys are content hashes: existing = identical."""
    results = []
    for asset in assets:
        bucket, key = asset.bucket_and_key
        try:
            s3.head_object(Bucket=bucket, Key=key)
            results.append((asset.s3_uri, "unchanged"))
            continue
        except ClientError as error:
            if not _is_missing(error):
                raise
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=asset.body,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=kms_key,
        )
        results.append((asset.s3_uri, "uploaded"))
    return results


def _describe(sagemaker, name: str) -> dict | None:
    try:
        return sagemaker.describe_pipeline(PipelineName=name)
    except ClientError as error:
        if _is_missing(error):
            return None
        raise


def upsert_pipeline(
    sagemaker, pipeline: RenderedPipeline, config: ProjectConfig, recreate: bool
) -> str:
    """Returns what happened: created, updated, recreated or unchanged.

    `recreate` (recreate_pipelines) deletes a pipeline whose definition changed before
    creating it again, dropping its execution history; an unchanged pipeline is left alone.
    """
    env = config.env
    existing = _describe(sagemaker, pipeline.name)
    if existing is not None:
        same_definition = json.loads(existing["PipelineDefinition"]) == json.loads(
            pipeline.definition
        )
        if same_definition and existing.get("RoleArn") == env.role_arn:
            return "unchanged"
        if not recreate:
            sagemaker.update_pipeline(
                PipelineName=pipeline.name,
                PipelineDefinition=pipeline.definition,
                PipelineDescription=_description(config),
                RoleArn=env.role_arn,
            )
            return "updated"
        sagemaker.delete_pipeline(PipelineName=pipeline.name)
    sagemaker.create_pipeline(
        PipelineName=pipeline.name,
        PipelineDefinition=pipeline.definition,
        PipelineDescription=_description(config),
        RoleArn=env.role_arn,
        Tags=[{"Key": k, "Value": v} for k, v in sorted(config.tags.items())],
    )
    return "created" if existing is None else "recreated"


def delete_pipeline(sagemaker, name: str) -> str:
    if _describe(sagemaker, name) is None:
        return "absent"
    sagemaker.delete_pipeline(PipelineName=name)
    return "deleted"


def _description(config: ProjectConfig) -> str:
    return f"Batch-inference MLOps template, {config.env.environment} environment"
