"""Render the three pipeline definitions offline and deterministically.

Rendering makes no AWS call: step code is referenced at content-addressed S3 URIs (uploaded
by the upsert), the default bucket is preset and role validation is off. The same
configuration and code therefore always give byte-identical definition files.

SDK telemetry follows the SDK's own config files (TelemetryOptOut in
~/.config/sagemaker/config.yaml); passing the opt-out in code made rendering 4x slower,
because the SDK re-validates its config schema on every lookup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import boto3
from sagemaker.core.workflow.pipeline_context import PipelineSession

from pipeline_scripts.assets import CodeAsset, StepCode
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.pipelines import build_pipelines
from pipeline_scripts.sagemaker_sdk import offline_building
from pipeline_scripts.service_models import share_service_models


@dataclass(frozen=True)
class RenderedPipeline:
    name: str
    definition: str  # the exact string sent to CreatePipeline / UpdatePipeline

    def write(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        path.write_text(self.definition, encoding="utf-8")
        return path


@dataclass(frozen=True)
class Rendered:
    pipelines: list[RenderedPipeline]
    code_assets: list[CodeAsset]


def offline_session(config: ProjectConfig) -> PipelineSession:
    # No credentials are needed to render; a static pair keeps botocore from searching for them.
    boto_session = boto3.Session(
        region_name=config.env.region,
        aws_access_key_id="render-only",
        aws_secret_access_key="render-only",
    )
    # Every S3 location is given explicitly, so the SDK never asks for its default bucket
    # (which would probe or create it); the public default_bucket argument names it anyway.
    return PipelineSession(boto_session=boto_session, default_bucket=config.env.bucket_name)


def canonical_json(definition: str) -> str:
    """Stable, reviewable text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(json.loads(definition), indent=2, sort_keys=True) + "\n"


def render(config: ProjectConfig) -> Rendered:
    # The SDK opens a session of its own for each step it builds: 7 s of CPU parsing the same
    # service models again and again, 1.5-2 s with them shared.
    share_service_models()
    code = StepCode(f"{config.env.s3_base_uri}/code")
    with offline_building():
        pipelines = build_pipelines(config, offline_session(config), code)
        rendered = [RenderedPipeline(p.name, canonical_json(p.definition())) for p in pipelines]
    return Rendered(rendered, code.assets())
