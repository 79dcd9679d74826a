"""The batch-inference pipeline: one batch scored with the newest Approved model and checked
(data quality against the model's baseline, model quality against labels in the batch), or
(Mode=evaluate) labels that arrived later judged against the batch's stored predictions."""

from __future__ import annotations

from typing import NamedTuple

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core.workflow.conditions import (
    ConditionEquals,
    ConditionGreaterThan,
)
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterFloat, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.pipeline import Pipeline

from pipeline_scripts.assets import StepCode
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import MODES, PARAMETERS, RESOLVE_OUTPUTS, STEPS, VERIFY_OUTPUTS
from pipeline_scripts.explain_step import (
    OUTPUT as EXPLANATIONS_OUTPUT,
)
from pipeline_scripts.explain_step import (
    ExplainSettings,
    explain_batch_step,
)
from pipeline_scripts.pipeline_parts import (
    DATA_QUALITY_STEP,
    DQ_OUTPUT,
    LABELS_QUALITY_FAILED_STEP,
    LABELS_QUALITY_STEP,
    MODE_GATE_STEP,
    MODEL_QUALITY_FAILED_STEP,
    MODEL_QUALITY_STEP,
    MQ_OUTPUT,
    data_quality_steps,
    image_uri,
    mse_threshold,
    output_uri,
    predictions_uri,
)
from pipeline_scripts.retraining import batch_report_uri
from pipeline_scripts.steps import PROCESSING_ROOT, StepFactory


def _explain_batch(config: ProjectConfig, steps: StepFactory, resolved, verified, batch_uri,
                   batch_id):  # fmt: skip
    """ExplainBatch beside BatchTransform: the batch's attributions against the version's
    baseline; per-record ones (pipelines.yaml explanations.per_record) next to the batch's
    predictions, in <predictions>/explanations/ (model_quality.py reads only *.out there).
    The model and transform are VerifyModelArtifacts' outputs (checked, like CreateModel's)."""
    per_record = config.settings.explanations.per_record
    return explain_batch_step(
        steps,
        model_data_url=verified.properties.Outputs[VERIFY_OUTPUTS["model"]],
        transform_uri=verified.properties.Outputs[VERIFY_OUTPUTS["transform"]],
        baseline_uri=resolved[RESOLVE_OUTPUTS["attributions"]],
        batch_uri=batch_uri,
        settings=ExplainSettings(per_record=per_record),
        per_record_uri=(
            Join(on="/", values=[predictions_uri(config, batch_id), EXPLANATIONS_OUTPUT])
            if per_record
            else None
        ),
    )


class _Parameters(NamedTuple):
    """The inference pipeline's parameters, in the order the definition lists them."""

    data_url: ParameterString
    batch_id: ParameterString
    batch_version: ParameterString
    batch_etag: ParameterString
    threshold: ParameterFloat
    fail_on_violation: ParameterBoolean
    mode: ParameterString
    labels_url: ParameterString


def _parameters(config: ProjectConfig) -> _Parameters:
    # One batch per execution: the dispatcher Lambda (code/batch_dispatcher) sets
    # InferenceDataUrl to the batch object's URI and BatchId to its name; the defaults (the
    # whole prefix, "all") are for a scheduled or manual run over every batch.
    env = config.env
    return _Parameters(
        data_url=ParameterString(
            PARAMETERS["inference_data_url"], default_value=env.inference_data_uri
        ),
        batch_id=ParameterString(PARAMETERS["batch_id"], default_value="all"),
        batch_version=ParameterString(PARAMETERS["batch_version_id"], default_value=""),
        batch_etag=ParameterString(PARAMETERS["batch_etag"], default_value=""),
        threshold=mse_threshold(config),
        fail_on_violation=ParameterBoolean(
            PARAMETERS["fail_on_data_quality_violation"],
            default_value=bool(env.fail_on_data_quality_violation),
        ),
        mode=ParameterString(PARAMETERS["mode"], default_value=MODES["score"]),
        labels_url=labels_parameter(config),
    )


def build_inference_pipeline(
    config: ProjectConfig, session: PipelineSession, code: StepCode
) -> Pipeline:
    """mode gate -> resolve and verify the approved model -> preprocess the batch with its
    transform -> score and explain -> data-quality and model-quality checks and gates; or
    (Mode=evaluate) the labels that arrived later against the stored predictions."""
    name = config.env.pipeline_inf
    # Never cached: a new batch arrives under the same prefix, so equal arguments do not
    # mean equal data, and a reused result would silently score an old batch.
    steps = StepFactory(config, session, name, code, image_uri(config), caching=False)
    params = _parameters(config)

    model = steps.resolve_approved_model("ResolveApprovedModel")
    resolved = model.properties.Outputs
    # Integrity (issue 10 point 6): the model and transform are used only through this step's
    # outputs, so nothing reads them before their sha256 and S3 version id are checked
    # against the ones recorded at registration.
    verified = steps.verify_integrity("VerifyModelArtifacts", resolved)
    preprocess = _preprocess_batch(steps, config, params, verified)
    create_model = steps.create_model(
        "CreateModel",
        image_uri=resolved[RESOLVE_OUTPUTS["image"]],
        model_data_url=verified.properties.Outputs[VERIFY_OUTPUTS["model"]],
    )
    transform = steps.batch_transform(
        "BatchTransform",
        model_name=create_model.properties.ModelName,
        input_uri=output_uri(preprocess, "transform_input"),
        output_path=predictions_uri(config, params.batch_id),
    )
    explain = _explain_batch(
        config,
        steps,
        resolved,
        verified,
        output_uri(preprocess, "transform_input"),
        params.batch_id,
    )
    dq_steps, dq_summary = _data_quality_check(steps, config, resolved, preprocess)
    data_quality = dq_steps[-1]
    model_quality, model_quality_gate = _model_quality_check(
        steps, config, params, preprocess, transform, data_quality, explain
    )
    data_quality_gate = _data_quality_gate(
        params, resolved, data_quality, dq_summary, after=[model_quality, explain]
    )
    mode_gate, labels_gate = _late_labels_steps(
        steps, config, params.mode, params.labels_url, params.batch_id, params.threshold,
        scoring=model,
    )  # fmt: skip
    return Pipeline(
        name=name,
        parameters=list(params),
        steps=[
            mode_gate,
            labels_gate,
            verified,
            preprocess,
            create_model,
            transform,
            explain,
            *dq_steps,
            model_quality,
            model_quality_gate,
            data_quality_gate,
        ],
        sagemaker_session=session,
    )


def _preprocess_batch(steps: StepFactory, config: ProjectConfig, params: _Parameters, verified):
    """PreprocessBatch: the batch through the approved model's transform."""
    batch_report = PropertyFile(name="BatchReport", output_name="report", path="batch_report.json")
    return steps.processing(
        "PreprocessBatch",
        "preprocess.py",
        inputs={
            "data": params.data_url,
            "transform": verified.properties.Outputs[VERIFY_OUTPUTS["transform"]],
        },
        outputs=["transform_input", "features", "ground_truth", "report"],
        # Reads only the batch object of the URI and checks its content against the event's
        # ETag (a processing input cannot pin an S3 version: scripts/batch_input.py).
        arguments=[
            *("--mode", "apply", "--batch-uri", params.data_url),
            *("--batch-version", params.batch_version, "--batch-etag", params.batch_etag),
            *_id_column_arguments(config),
        ],
        property_files=[batch_report],
        # Stable, next to the batch's predictions: retraining finds the batch's exact version.
        output_uris={"report": batch_report_uri(predictions_uri(config, params.batch_id))},
    )


def _data_quality_check(steps: StepFactory, config: ProjectConfig, resolved, preprocess):
    """(DataQualityCheck and its shards, if any; its summary.json) against the approved
    version's baseline."""
    dq_summary = PropertyFile(name="DataQualitySummary", output_name=DQ_OUTPUT, path="summary.json")
    dq_steps = data_quality_steps(
        steps,
        config,
        DATA_QUALITY_STEP,
        "check",
        output_uri(preprocess, "features"),
        inputs={
            "baseline_statistics": resolved[RESOLVE_OUTPUTS["baseline_statistics"]],
            "baseline_constraints": resolved[RESOLVE_OUTPUTS["baseline_constraints"]],
        },
        arguments=[
            "--baseline-statistics",
            f"{PROCESSING_ROOT}/input/baseline_statistics/statistics.json",
            "--baseline-constraints",
            f"{PROCESSING_ROOT}/input/baseline_constraints/constraints.json",
        ],  # fmt: skip
        property_files=[dq_summary],
    )
    return dq_steps, dq_summary


def _model_quality_check(steps, config, params, preprocess, transform, data_quality, explain):
    """(ModelQualityCheck, ModelQualityGate). It runs whether or not the data drifted: a
    violation must never hide a model-quality failure, which is what triggers retraining. Its
    reason includes the data-quality summary so the alert explains the likely cause."""
    return _judged_quality(
        steps,
        config,
        params.threshold,
        names=(MODEL_QUALITY_STEP, "ModelQualityReport", "ModelQualityGate"),
        fail_step=MODEL_QUALITY_FAILED_STEP,
        inputs={
            "predictions": transform.properties.TransformOutput.S3OutputPath,
            "ground_truth": output_uri(preprocess, "ground_truth"),
            DQ_OUTPUT: output_uri(data_quality, DQ_OUTPUT),
        },
        # Its failure e-mail explains the batch (code/notifier/notifier.py).
        gate_after=[explain],
    )


def _judged_quality(steps, config, threshold, *, names, fail_step, inputs, arguments=(),
                    gate_after=None):  # fmt: skip
    """(model_quality.py's step, its gate): the gate fails `fail_step` with the script's reason
    only when the status is "failed" (a measured MSE above the threshold on enough labels), the
    one outcome the retraining rule matches. names: (step, property file, gate)."""
    step_name, report_name, gate_name = names
    report = PropertyFile(name=report_name, output_name=MQ_OUTPUT, path="statistics.json")
    check = steps.processing(
        step_name,
        "model_quality.py",
        inputs=inputs,
        outputs=[MQ_OUTPUT],
        arguments=[
            *arguments,
            *("--mse-threshold", Join(on="", values=[threshold])),
            *("--min-labels", str(config.settings.model_quality.min_labelled_records)),
        ],
        property_files=[report],
    )

    def value(path: str) -> JsonGet:
        return JsonGet(step_name=check.name, property_file=report, json_path=path)

    gate = ConditionStep(
        name=gate_name,
        conditions=[ConditionEquals(left=value("status"), right="failed")],
        if_steps=[FailStep(name=fail_step, error_message=value("reason"))],
        else_steps=[],
        depends_on=gate_after,
    )
    return check, gate


def _data_quality_gate(params, resolved, data_quality, dq_summary, after):
    """DataQualityGate: violations fail the execution when fail_on_data_quality_violation."""
    violation_count = JsonGet(
        step_name=data_quality.name, property_file=dq_summary, json_path="violation_count"
    )
    failure = FailStep(
        name=STEPS["data_quality_failed"],
        error_message=Join(
            on=" ",
            values=[
                "Data-quality check found",
                violation_count,
                "violation(s) against the baseline of model version",
                resolved[RESOLVE_OUTPUTS["package_version"]],
                "-",
                JsonGet(step_name=data_quality.name, property_file=dq_summary, json_path="message"),
            ],
        ),
    )
    return ConditionStep(
        name="DataQualityGate",
        conditions=[
            ConditionGreaterThan(left=violation_count, right=0),
            ConditionEquals(left=params.fail_on_violation, right=True),
        ],
        if_steps=[failure],
        else_steps=[],
        depends_on=after,
    )


def _id_column_arguments(config: ProjectConfig) -> list[str]:
    """PreprocessBatch's record ids: the configured id column, else (none) the data line."""
    column = config.settings.batch.id_column
    return ["--id-column", column] if column else []


def labels_parameter(config: ProjectConfig) -> ParameterString:
    """LabelsDataUrl: the labels file of an evaluation run (set by the batch dispatcher)."""
    return ParameterString(
        PARAMETERS["labels_data_url"], default_value=f"{config.env.s3_base_uri}/labels"
    )


def _late_labels_steps(steps, config, mode, labels_url, batch_id, threshold, scoring):
    """Mode=evaluate (labels that arrived later, code/batch_dispatcher): ModeGate takes the
    evaluation branch, which joins the labels with the batch's stored predictions and judges
    them as ModelQualityCheck does; every scoring step depends on `scoring` (in the other
    branch), so none of them runs. Mode=score (default) runs `scoring` and the rest as before.
    Returns (ModeGate, the evaluation's quality gate)."""
    evaluation, labels_gate = _judged_quality(
        steps,
        config,
        threshold,
        names=(LABELS_QUALITY_STEP, "LateLabelsReport", "LateLabelsGate"),
        fail_step=LABELS_QUALITY_FAILED_STEP,
        # No stored predictions for the batch id (an unknown batch): the job fails naming the
        # predictions URI ("No S3 objects found under S3 URL ...").
        inputs={"predictions": predictions_uri(config, batch_id), "labels": labels_url},
        arguments=["--labels"],
    )
    mode_gate = ConditionStep(
        name=MODE_GATE_STEP,
        conditions=[ConditionEquals(left=mode, right=MODES["evaluate"])],
        if_steps=[evaluation],
        else_steps=[scoring],
    )
    return mode_gate, labels_gate
