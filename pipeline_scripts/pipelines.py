"""The three pipeline definitions, wired from the shared step factories.

Training and training-with-HPO are one builder: they differ only in the step that produces
the model. Step names are part of the contract with EventBridge rules and the notifier
(e.g. `ModelQualityCheck` failing starts retraining), so they are constants here.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core import image_uris
from sagemaker.core.workflow.conditions import (
    ConditionEquals,
    ConditionGreaterThan,
    ConditionLessThanOrEqualTo,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterBoolean, ParameterFloat, ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.assets import REPO_ROOT, StepCode
from pipeline_scripts.card_step import OUTPUT as MODEL_CARD_OUTPUT
from pipeline_scripts.card_step import model_card_step
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import METADATA_KEYS, MODES, OUTPUTS, PARAMETERS, STEPS
from pipeline_scripts.explain_step import (
    OUTPUT as EXPLANATIONS_OUTPUT,
)
from pipeline_scripts.explain_step import (
    ExplainSettings,
    explain_batch_step,
    explain_model_step,
)
from pipeline_scripts.retraining import batch_report_uri, labelled_training_data
from pipeline_scripts.steps import INTEGRITY_OUTPUTS, PROCESSING_ROOT, StepFactory

# Step names referenced by event rules, the notifier and the local runtime.
MODEL_QUALITY_STEP = STEPS["model_quality_check"]
# The one step whose failure starts retraining: it runs only when ModelQualityCheck succeeded
# and measured an MSE above the threshold on enough labels. A crash or bad input fails
# ModelQualityCheck itself, which retrains nothing.
MODEL_QUALITY_FAILED_STEP = STEPS["model_quality_failed"]
# The same for labels that arrive later (Mode=evaluate): a step name is unique in a pipeline,
# and a step after both branches of a ConditionStep would never run (it depends on a step of
# the branch not taken), so the evaluation branch has its own check, gate and Fail step.
LABELS_QUALITY_STEP = STEPS["labels_quality_check"]
LABELS_QUALITY_FAILED_STEP = STEPS["labels_quality_failed"]
MODE_GATE_STEP = STEPS["mode_gate"]
DATA_QUALITY_STEP = STEPS["data_quality_check"]
REGISTER_STEP = "RegisterModel"
COMPARE_STEP = STEPS["compare_with_newest"]
NOVELTY_STEP = STEPS["novelty_check"]
FINGERPRINT_KEY = METADATA_KEYS["fingerprint"]  # code/model_resolver reads it too
# Processing output names, in the S3 paths the notifier and lambda.tf's policies read.
DQ_OUTPUT, MQ_OUTPUT = OUTPUTS["data_quality_results"], OUTPUTS["model_quality_results"]

MSE_JSON_PATH = "regression_metrics.mse.value"
PARTIALS_DIR = f"{PROCESSING_ROOT}/output/partials"  # sharded data-quality steps write here


@dataclass(frozen=True)
class PipelineKinds:
    """Which configured pipeline name is which kind."""

    training: str
    training_hpo: str
    inference: str


def pipeline_kinds(config: ProjectConfig) -> PipelineKinds:
    env = config.env
    return PipelineKinds(env.pipeline_train, env.pipeline_trainwhpo, env.pipeline_inf)


def current_git_commit() -> str:
    """The commit the definitions are built from, recorded on every model version."""
    if os.environ.get("CI_COMMIT_SHA"):
        return os.environ["CI_COMMIT_SHA"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


def _image_uri(config: ProjectConfig) -> str:
    images = config.settings.images
    return image_uris.retrieve(
        framework=images.framework,
        region=config.env.region,
        version=images.framework_version,
        py_version=images.py_version,
        instance_type=config.settings.training.instance_type,
    )


def _mse_threshold(config: ProjectConfig) -> ParameterFloat:
    return ParameterFloat(
        PARAMETERS["mse_threshold"], default_value=float(config.env.accuracy_mse_threshold)
    )


def build_training_pipeline(
    config: ProjectConfig,
    session: PipelineSession,
    code: StepCode,
    *,
    tuning: bool,
    git_commit: str,
) -> Pipeline:
    """preprocess -> data-quality baseline -> train (or tune) -> evaluate -> register or fail."""
    env, settings = config.env, config.settings
    name = env.pipeline_trainwhpo if tuning else env.pipeline_train
    # Cacheable: every step's inputs are the data version or execution-scoped outputs.
    steps = StepFactory(config, session, name, code, _image_uri(config), caching=True)

    data_url = ParameterString("TrainingDataUrl", default_value=env.train_data_uri)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    threshold = _mse_threshold(config)

    data_version = steps.data_version("RecordTrainingDataVersion", data_url)
    # The training data plus the labelled batches (issue 10 point 4, retraining.py).
    labelled = labelled_training_data(steps, config, data_url, data_version)
    prep = settings.preprocessing
    preprocess = steps.processing(
        "Preprocess",
        "preprocess.py",
        inputs={"data": labelled.training_uri},
        outputs=["train", "validation", "test", "transform", "baseline", "test_raw"],
        arguments=[
            "--mode",
            "fit",
            "--target",
            prep.target,
            "--test-fraction",
            str(prep.test_fraction),
            "--validation-fraction",
            str(prep.validation_fraction),
            "--seed",
            str(prep.seed),
            # Part of the step-cache key: new data under the same prefix is a cache miss.
            "--data-version",
            data_version.properties.Outputs["data_version"],
        ],
    )

    def output(step, output_name):
        return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri

    baseline_steps = _data_quality_steps(
        steps, config, "DataQualityBaseline", "baseline", output(preprocess, "baseline")
    )
    baseline = baseline_steps[-1]
    comparison_steps, comparison_metadata = _training_data_comparison(
        steps, config, labelled.training_uri, data_version, output(baseline, DQ_OUTPUT)
    )

    train_uri, validation_uri = output(preprocess, "train"), output(preprocess, "validation")
    if tuning:
        model_step = steps.tuning("TuneModel", train_uri, validation_uri)
        # Correct on a cache hit too: the best job's name comes from the (cached) tuning job
        # and its output prefix is not execution-scoped (StepFactory.tuning_output_uri).
        model_data_url = Join(
            on="/",
            values=[
                steps.tuning_output_uri(model_step.name),
                model_step.properties.BestTrainingJob.TrainingJobName,
                "output",
                "model.tar.gz",
            ],
        )
    else:
        model_step = steps.training("TrainModel", train_uri, validation_uri)
        model_data_url = model_step.properties.ModelArtifacts.S3ModelArtifacts

    transform_uri = Join(on="/", values=[output(preprocess, "transform"), "transform.json"])
    champion, integrity = _champion_and_integrity(steps, model_data_url, transform_uri)
    evaluation_report = PropertyFile(
        name="EvaluationReport", output_name="evaluation", path="evaluation.json"
    )
    evaluate = steps.processing(
        "EvaluateModel",
        "evaluate.py",
        inputs={
            "model": model_data_url,
            "test": output(preprocess, "test"),
            "train": train_uri,
            # Champion vs challenger (issue 10 point 5): the Approved version's own model and
            # transform, scored on the same raw test rows.
            "test_raw": output(preprocess, "test_raw"),
            "champion_model": champion.properties.Outputs["champion_model_data_url"],
            "champion_transform": champion.properties.Outputs["champion_transform_uri"],
        },
        outputs=["evaluation"],
        arguments=["--champion-version", champion.properties.Outputs["champion_version"]],
        property_files=[evaluation_report],
        depends_on=[model_step],
    )

    def evaluation(path: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path=path)

    model_mse = JsonGet(
        step_name=evaluate.name, property_file=evaluation_report, json_path=MSE_JSON_PATH
    )
    explain = _explain_model(steps, preprocess, model_step, model_data_url)
    evaluation_uri = Join(on="/", values=[output(evaluate, "evaluation"), "evaluation.json"])
    statistics_uri = Join(on="/", values=[output(baseline, DQ_OUTPUT), "statistics.json"])
    card = model_card_step(
        steps,
        champion=champion,
        evaluation_uri=evaluation_uri,
        statistics_uri=statistics_uri,
        attributions_uri=_attributions_uri(explain),
        model_data_url=model_data_url,
        data_version=data_version.properties.Outputs["data_version"],
        git_commit=git_commit,
        tuning=tuning,
    )

    # Unchanged data, code and settings hit the step cache everywhere and would register the
    # same model again: register only a model whose fingerprint differs from the newest
    # version's (code/model_resolver, action compare_fingerprint).
    novelty = steps.compare_with_newest_version(COMPARE_STEP, labelled.data_version, tuning=tuning)
    register_arguments = dict(
        model_data_url=model_data_url,
        evaluation_uri=evaluation_uri,
        statistics_uri=statistics_uri,
        constraints_uri=Join(on="/", values=[output(baseline, DQ_OUTPUT), "constraints.json"]),
        approval_status=approval,
        # Every value must be a valid CustomerMetadataValue (botocore SageMaker model: 1..256
        # characters of letters, spaces, digits and _.:/=+-@). Hence no raw TrainingDataUrl: a
        # key may hold other characters; the data version shows it in a valid form.
        metadata={
            "git_commit": git_commit,
            "training_data_version": data_version.properties.Outputs["data_version"],
            "pipeline_execution_arn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
            FINGERPRINT_KEY: novelty.properties.Outputs[FINGERPRINT_KEY],
            "transform_uri": transform_uri,
            # Integrity (point 6): what inference verifies before use.
            **{key: integrity.properties.Outputs[key] for key in INTEGRITY_OUTPUTS},
            # Champion vs challenger (point 5), as evaluate.py formats them ("none": no champion).
            "champion_version": evaluation("formatted.champion_version"),
            "champion_mse": evaluation("formatted.champion_mse"),
            METADATA_KEYS["challenger"]: evaluation("formatted.mse"),
            METADATA_KEYS["records"]: evaluation("formatted.record_count"),
            **comparison_metadata,
            **labelled.metadata,
            ATTRIBUTIONS_KEY: _attributions_uri(explain),
            MODEL_CARD_KEY: Join(on="/", values=[output(card, MODEL_CARD_OUTPUT), "model_card.md"]),
        },
        description=f"Trained by the {name} pipeline",
    )
    register = steps.register_model(REGISTER_STEP, **register_arguments)
    too_inaccurate = FailStep(
        name="ModelAccuracyBelowThreshold",
        error_message=Join(
            on=" ",
            values=[
                "Model MSE",
                # Two decimals, as evaluate.py formats them (13.44, not 13.444444444444445).
                JsonGet(
                    step_name=evaluate.name,
                    property_file=evaluation_report,
                    json_path="formatted.mse",
                ),
                "exceeds accuracy_mse_threshold",
                threshold,
                "(mean-predictor MSE",
                JsonGet(
                    step_name=evaluate.name,
                    property_file=evaluation_report,
                    json_path="formatted.mean_predictor_mse",
                ),
                "); the model was not registered.",
            ],
        ),
    )
    # Outcome False: the model is the newest version's (the compare step's message says so).
    novelty_gate = ConditionStep(
        name=NOVELTY_STEP,
        conditions=[ConditionEquals(left=novelty.properties.Outputs["is_new"], right=True)],
        if_steps=[_champion_gate(steps, config, register, register_arguments, evaluation)],
        else_steps=[],
    )
    accuracy_gate = ConditionStep(
        name="CheckModelAccuracy",
        conditions=[ConditionLessThanOrEqualTo(left=model_mse, right=threshold)],
        if_steps=[novelty_gate],
        else_steps=[too_inaccurate],
    )
    return Pipeline(
        name=name,
        parameters=[data_url, approval, threshold],
        steps=[
            data_version,
            *labelled.steps,
            preprocess,
            *baseline_steps,
            *comparison_steps,
            model_step,
            champion,
            integrity,
            evaluate,
            explain,
            card,
            novelty,
            accuracy_gate,
        ],
        sagemaker_session=session,
    )


# -- explanations (issue 13): small hooks, the steps themselves are in explain_step.py --------

ATTRIBUTIONS_KEY = METADATA_KEYS["attributions"]  # code/model_resolver reads it too


def _attributions_uri(explain: ProcessingStep) -> Join:
    uri = explain.properties.ProcessingOutputConfig.Outputs[EXPLANATIONS_OUTPUT].S3Output.S3Uri
    return Join(on="/", values=[uri, "attributions.json"])


def _explain_model(steps: StepFactory, preprocess, model_step, model_data_url) -> ProcessingStep:
    """ExplainModel beside EvaluateModel: the version's global importance and baseline."""

    def output(name):
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    return explain_model_step(
        steps,
        model_data_url=model_data_url,
        transform_uri=output("transform"),
        train_uri=output("train"),
        # The file, not the folder: an S3Prefix input takes every object whose key starts with
        # the URI ("SageMaker uses all objects that match the specified key name prefix", API
        # reference S3DataSource/ProcessingS3Input S3DataType), and <...>/test is a prefix of
        # <...>/test_raw/test.csv (the raw rows, another layout).
        test_uri=Join(on="/", values=[output("test"), "test.csv"]),
        depends_on=[model_step],
    )


MODEL_CARD_KEY = METADATA_KEYS["model_card"]  # the notifier links it in the e-mail


def _explain_batch(config: ProjectConfig, steps: StepFactory, resolved, verified, batch_uri,
                   batch_id):  # fmt: skip
    """ExplainBatch beside BatchTransform: the batch's attributions against the version's
    baseline; per-record ones (pipelines.yaml explanations.per_record) next to the batch's
    predictions, in <predictions>/explanations/ (model_quality.py reads only *.out there).
    The model and transform are VerifyModelArtifacts' outputs (checked, like CreateModel's)."""
    per_record = config.settings.explanations.per_record
    return explain_batch_step(
        steps,
        model_data_url=verified.properties.Outputs["model_uri"],
        transform_uri=verified.properties.Outputs["transform_uri"],
        baseline_uri=resolved[ATTRIBUTIONS_KEY],
        batch_uri=batch_uri,
        settings=ExplainSettings(per_record=per_record),
        per_record_uri=(
            Join(on="/", values=[predictions_uri(config, batch_id), EXPLANATIONS_OUTPUT])
            if per_record
            else None
        ),
    )


COMPARISON_STEP = "CompareTrainingData"


def _training_data_comparison(steps: StepFactory, config: ProjectConfig, data_url, data_version,
                              baseline_uri) -> tuple[list, dict]:  # fmt: skip
    """Issue 11.6: the new training data (target included) against the newest Approved
    version's training-data profile (scripts/training_data_comparison.py). Returns the steps
    and the metadata they put on the new version; findings never block registration."""
    previous = steps.previous_training_data("FindPreviousTrainingData", baseline_uri)
    found = previous.properties.Outputs
    report = PropertyFile(
        name="TrainingDataComparison", output_name="comparison", path="comparison.json"
    )
    compare = steps.processing(
        COMPARISON_STEP,
        "training_data_comparison.py",
        inputs={"data": data_url, "previous": found["previous_profile_uri"]},
        outputs=["profile", "comparison"],
        arguments=[
            *("--previous-version", found["previous_version"]),
            *("--target", config.settings.preprocessing.target),
            # Part of the step-cache key: new data under the same prefix is a cache miss.
            *("--data-version", data_version.properties.Outputs["data_version"]),
            *_data_quality_arguments(config)[2:],  # the settings, without --output-dir
        ],
        property_files=[report],
    )
    outputs = compare.properties.ProcessingOutputConfig.Outputs
    # Valid CustomerMetadataValues: the summary is sanitised by the script, the URIs are
    # execution-scoped S3 URIs like transform_uri.
    metadata = {
        METADATA_KEYS["training_data_summary"]: JsonGet(
            step_name=compare.name, property_file=report, json_path="summary"
        ),
        METADATA_KEYS["training_data_report"]: Join(
            on="/", values=[outputs["comparison"].S3Output.S3Uri, "comparison.json"]
        ),
        METADATA_KEYS["training_data_profile"]: outputs["profile"].S3Output.S3Uri,
    }
    return [previous, compare], metadata


def _champion_and_integrity(steps: StepFactory, model_data_url, transform_uri):
    """The Lambda steps around evaluation (issue 10 points 5 and 6): the current champion
    (newest Approved version; the challenger's own artifacts when there is none) and the sha256
    and S3 version id of the new model.tar.gz and transform.json, registered with the version."""
    champion = steps.champion("ResolveChampion", model_data_url, transform_uri)
    integrity = steps.record_integrity("RecordArtifactIntegrity", model_data_url, transform_uri)
    return champion, integrity


def _champion_gate(steps, config, register, register_arguments: dict, evaluation):
    """`register`, or with registration.reject_if_not_better a condition: a challenger whose
    MSE is not below the champion's (evaluate.py challenger_is_better) is registered Rejected,
    the reason as its description (ModelBuilder.register of the pinned SDK takes no
    ApprovalDescription)."""
    if not config.settings.registration.reject_if_not_better:
        return register
    reason = Join(
        on=" ",
        values=[
            "Rejected: challenger MSE",
            evaluation("formatted.mse"),
            "is not below champion version",
            evaluation("formatted.champion_version"),
            "MSE",
            evaluation("formatted.champion_mse"),
            "on the same",
            evaluation("formatted.record_count"),
            "test records",
        ],
    )
    rejected = steps.register_model(
        f"{REGISTER_STEP}Rejected",
        **{**register_arguments, "approval_status": "Rejected", "description": reason},
    )
    return ConditionStep(
        name="CheckBeatsChampion",
        conditions=[ConditionEquals(left=evaluation("challenger_is_better"), right=True)],
        if_steps=[register],
        else_steps=[rejected],
    )


def predictions_uri(config: ProjectConfig, batch_id) -> Join:
    """Where a batch's predictions land: <bucket>/<bucket_prefix>/predictions/<batch id>/,
    one `<batch file>.out` of `record_id,prediction` lines. Outside the inference prefix, so
    writing them starts nothing; a re-uploaded batch (same id) replaces its predictions."""
    return Join(on="/", values=[config.env.s3_base_uri, "predictions", batch_id])


def build_inference_pipeline(
    config: ProjectConfig, session: PipelineSession, code: StepCode
) -> Pipeline:
    """resolve approved model -> preprocess with its transform -> score -> quality checks."""
    env = config.env
    name = env.pipeline_inf
    # Never cached: a new batch arrives under the same prefix, so equal arguments do not
    # mean equal data, and a reused result would silently score an old batch.
    steps = StepFactory(config, session, name, code, _image_uri(config), caching=False)

    # One batch per execution: the dispatcher Lambda (code/batch_dispatcher) sets
    # InferenceDataUrl to the batch object's URI and BatchId to its name; the defaults (the
    # whole prefix, "all") are for a scheduled or manual run over every batch.
    data_url = ParameterString(
        PARAMETERS["inference_data_url"], default_value=env.inference_data_uri
    )
    batch_id = ParameterString(PARAMETERS["batch_id"], default_value="all")
    batch_version = ParameterString(PARAMETERS["batch_version_id"], default_value="")
    batch_etag = ParameterString(PARAMETERS["batch_etag"], default_value="")
    threshold = _mse_threshold(config)
    fail_on_violation = ParameterBoolean(
        PARAMETERS["fail_on_data_quality_violation"],
        default_value=bool(env.fail_on_data_quality_violation),
    )
    mode = ParameterString(PARAMETERS["mode"], default_value=MODES["score"])
    labels_url = labels_parameter(config)

    model = steps.resolve_approved_model("ResolveApprovedModel")
    resolved = model.properties.Outputs
    # Integrity (issue 10 point 6): the model and transform are used only through this step's
    # outputs, so nothing reads them before their sha256 and S3 version id are checked
    # against the ones recorded at registration.
    verified = steps.verify_integrity("VerifyModelArtifacts", resolved)

    def output(step, output_name):
        return step.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri

    batch_report = PropertyFile(name="BatchReport", output_name="report", path="batch_report.json")
    preprocess = steps.processing(
        "PreprocessBatch",
        "preprocess.py",
        inputs={"data": data_url, "transform": verified.properties.Outputs["transform_uri"]},
        outputs=["transform_input", "features", "ground_truth", "report"],
        # Reads only the batch object of the URI and checks its content against the event's
        # ETag (a processing input cannot pin an S3 version: scripts/batch_input.py).
        arguments=[
            *("--mode", "apply", "--batch-uri", data_url),
            *("--batch-version", batch_version, "--batch-etag", batch_etag),
            *_id_column_arguments(config),
        ],
        property_files=[batch_report],
        # Stable, next to the batch's predictions: retraining finds the batch's exact version.
        output_uris={"report": batch_report_uri(predictions_uri(config, batch_id))},
    )
    create_model = steps.create_model(
        "CreateModel",
        image_uri=resolved["image_uri"],
        model_data_url=verified.properties.Outputs["model_uri"],
    )
    transform = steps.batch_transform(
        "BatchTransform",
        model_name=create_model.properties.ModelName,
        input_uri=output(preprocess, "transform_input"),
        output_path=predictions_uri(config, batch_id),
    )
    explain = _explain_batch(
        config, steps, resolved, verified, output(preprocess, "transform_input"), batch_id
    )

    dq_summary = PropertyFile(name="DataQualitySummary", output_name=DQ_OUTPUT, path="summary.json")
    data_quality_steps = _data_quality_steps(
        steps,
        config,
        DATA_QUALITY_STEP,
        "check",
        output(preprocess, "features"),
        inputs={
            "baseline_statistics": resolved["baseline_statistics_uri"],
            "baseline_constraints": resolved["baseline_constraints_uri"],
        },
        arguments=[
            "--baseline-statistics",
            f"{PROCESSING_ROOT}/input/baseline_statistics/statistics.json",
            "--baseline-constraints",
            f"{PROCESSING_ROOT}/input/baseline_constraints/constraints.json",
        ],  # fmt: skip
        property_files=[dq_summary],
    )
    data_quality = data_quality_steps[-1]
    # Runs whether or not the data drifted: a violation must never hide a model-quality
    # failure, which is what triggers retraining. Its reason includes the data-quality
    # summary so the alert explains the likely cause.
    quality_report = PropertyFile(
        name="ModelQualityReport", output_name=MQ_OUTPUT, path="statistics.json"
    )
    model_quality = steps.processing(
        MODEL_QUALITY_STEP,
        "model_quality.py",
        inputs={
            "predictions": transform.properties.TransformOutput.S3OutputPath,
            "ground_truth": output(preprocess, "ground_truth"),
            DQ_OUTPUT: output(data_quality, DQ_OUTPUT),
        },
        outputs=[MQ_OUTPUT],
        arguments=[
            *("--mse-threshold", Join(on="", values=[threshold])),
            *("--min-labels", str(config.settings.model_quality.min_labelled_records)),
        ],
        property_files=[quality_report],
    )

    def quality(path: str) -> JsonGet:
        return JsonGet(step_name=model_quality.name, property_file=quality_report, json_path=path)

    model_quality_gate = ConditionStep(
        name="ModelQualityGate",
        conditions=[ConditionEquals(left=quality("status"), right="failed")],
        if_steps=[FailStep(name=MODEL_QUALITY_FAILED_STEP, error_message=quality("reason"))],
        else_steps=[],
        # Its failure e-mail explains the batch (code/notifier/notifier.py).
        depends_on=[explain],
    )
    violation_count = JsonGet(
        step_name=data_quality.name, property_file=dq_summary, json_path="violation_count"
    )
    data_quality_failure = FailStep(
        name=STEPS["data_quality_failed"],
        error_message=Join(
            on=" ",
            values=[
                "Data-quality check found",
                violation_count,
                "violation(s) against the baseline of model version",
                resolved["model_package_version"],
                "-",
                JsonGet(step_name=data_quality.name, property_file=dq_summary, json_path="message"),
            ],
        ),
    )
    data_quality_gate = ConditionStep(
        name="DataQualityGate",
        conditions=[
            ConditionGreaterThan(left=violation_count, right=0),
            ConditionEquals(left=fail_on_violation, right=True),
        ],
        if_steps=[data_quality_failure],
        else_steps=[],
        depends_on=[model_quality, explain],
    )
    mode_gate, labels_gate = _late_labels_steps(
        steps, config, mode, labels_url, batch_id, threshold, scoring=model
    )
    return Pipeline(
        name=name,
        parameters=[
            data_url,
            batch_id,
            batch_version,
            batch_etag,
            threshold,
            fail_on_violation,
            mode,
            labels_url,
        ],  # fmt: skip
        steps=[
            mode_gate,
            labels_gate,
            verified,
            preprocess,
            create_model,
            transform,
            explain,
            *data_quality_steps,
            model_quality,
            model_quality_gate,
            data_quality_gate,
        ],
        sagemaker_session=session,
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
    report = PropertyFile(name="LateLabelsReport", output_name=MQ_OUTPUT, path="statistics.json")
    evaluation = steps.processing(
        LABELS_QUALITY_STEP,
        "model_quality.py",
        # No stored predictions for the batch id (an unknown batch): the job fails naming the
        # predictions URI ("No S3 objects found under S3 URL ...").
        inputs={"predictions": predictions_uri(config, batch_id), "labels": labels_url},
        outputs=[MQ_OUTPUT],
        arguments=[
            "--labels",
            *("--mse-threshold", Join(on="", values=[threshold])),
            *("--min-labels", str(config.settings.model_quality.min_labelled_records)),
        ],
        property_files=[report],
    )

    def value(path: str) -> JsonGet:
        return JsonGet(step_name=evaluation.name, property_file=report, json_path=path)

    labels_gate = ConditionStep(
        name="LateLabelsGate",
        conditions=[ConditionEquals(left=value("status"), right="failed")],
        if_steps=[FailStep(name=LABELS_QUALITY_FAILED_STEP, error_message=value("reason"))],
        else_steps=[],
    )
    mode_gate = ConditionStep(
        name=MODE_GATE_STEP,
        conditions=[ConditionEquals(left=mode, right=MODES["evaluate"])],
        if_steps=[evaluation],
        else_steps=[scoring],
    )
    return mode_gate, labels_gate


def _data_quality_steps(
    steps: StepFactory,
    config: ProjectConfig,
    name: str,
    mode: str,
    data,
    *,
    inputs: dict | None = None,
    arguments: list | None = None,
    property_files: list | None = None,
) -> list[ProcessingStep]:
    """The data-quality step `name` (the last step returned, writing output data_quality).

    With data_quality.instance_count N > 1 a step `<name>Shards` runs first on N instances,
    each profiling its share of the data objects (ShardedByS3Key) into partial statistics, and
    `name` merges them (--mode merge) into the files one pass would have written; with 1 the
    step is exactly the single-instance step.
    """
    count = config.settings.data_quality.instance_count
    data_input = {"data": data}
    mode_arguments = ["--mode", mode]
    shard_steps = []
    if count > 1:
        shards = steps.processing(
            f"{name}Shards",
            "data_quality.py",
            inputs=data_input,
            outputs=["partials"],
            arguments=["--mode", mode, "--shard", "--output-dir", PARTIALS_DIR],
            instance_count=count,
            sharded_inputs=["data"],
        )
        shard_steps = [shards]
        partials = shards.properties.ProcessingOutputConfig.Outputs["partials"].S3Output.S3Uri
        data_input = {"partials": partials}
        mode_arguments = ["--mode", "merge"]
    final = steps.processing(
        name,
        "data_quality.py",
        inputs={**data_input, **(inputs or {})},
        outputs=[DQ_OUTPUT],
        arguments=[*mode_arguments, *_data_quality_arguments(config), *(arguments or [])],
        property_files=property_files or (),
    )
    return [*shard_steps, final]


def _data_quality_arguments(config: ProjectConfig) -> list[str]:
    dq = config.settings.data_quality
    return [
        "--output-dir", f"{PROCESSING_ROOT}/output/{DQ_OUTPUT}",
        "--comparison-threshold", str(dq.comparison_threshold),
        "--datatype-check-threshold", str(dq.datatype_check_threshold),
        "--domain-content-threshold", str(dq.domain_content_threshold),
        "--drift-alpha", str(dq.drift_alpha),
        "--drift-min-shift-sd", str(dq.drift_min_shift_sd),
        "--drift-min-rows", str(dq.drift_min_rows),
    ]  # fmt: skip


def build_pipelines(config: ProjectConfig, session: PipelineSession, code: StepCode) -> list:
    """The three pipelines, in the order they are upserted."""
    commit = current_git_commit()
    return [
        build_training_pipeline(config, session, code, tuning=False, git_commit=commit),
        build_training_pipeline(config, session, code, tuning=True, git_commit=commit),
        build_inference_pipeline(config, session, code),
    ]
