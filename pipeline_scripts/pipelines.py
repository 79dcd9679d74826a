"""The three pipeline definitions: training and training-with-HPO (one builder,
training_pipeline.py) and batch inference (inference_pipeline.py), on what they share
(pipeline_parts.py: the step names other components match, the image, the data-quality steps).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline_scripts.assets import StepCode
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.inference_pipeline import build_inference_pipeline
from pipeline_scripts.pipeline_parts import current_git_commit
from pipeline_scripts.training_pipeline import build_training_pipeline

if TYPE_CHECKING:
    from sagemaker.core.workflow.pipeline_context import PipelineSession


def build_pipelines(config: ProjectConfig, session: PipelineSession, code: StepCode) -> list:
    """The three pipelines, in the order they are upserted."""
    commit = current_git_commit()
    return [
        build_training_pipeline(config, session, code, tuning=False, git_commit=commit),
        build_training_pipeline(config, session, code, tuning=True, git_commit=commit),
        build_inference_pipeline(config, session, code),
    ]
