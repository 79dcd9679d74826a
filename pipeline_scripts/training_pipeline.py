"""The training pipelines (plain and with hyperparameter tuning): one builder, they differ only
in the step that produces the model."""

from __future__ import annotations

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core.workflow.conditions import (
    ConditionEquals,
    ConditionLessThanOrEqualTo,
)
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join, JsonGet
from sagemaker.core.workflow.parameters import ParameterString
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.condition_step import ConditionStep
from sagemaker.mlops.workflow.fail_step import FailStep
from sagemaker.mlops.workflow.pipeline import Pipeline
from sagemaker.mlops.workflow.steps import ProcessingStep

from pipeline_scripts.assets import StepCode
from pipeline_scripts.card_step import OUTPUT as MODEL_CARD_OUTPUT
from pipeline_scripts.card_step import model_card_step
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import (
    CHAMPION_OUTPUTS,
    COMPARE_OUTPUTS,
    DATA_VERSION_OUTPUTS,
    INTEGRITY_OUTPUTS,
    METADATA_KEYS,
    PREVIOUS_OUTPUTS,
)
from pipeline_scripts.explain_step import (
    OUTPUT as EXPLANATIONS_OUTPUT,
)
from pipeline_scripts.explain_step import (
    explain_model_step,
)
from pipeline_scripts.pipeline_parts import (
    ATTRIBUTIONS_KEY,
    COMPARE_STEP,
    DQ_OUTPUT,
    FINGERPRINT_KEY,
    MODEL_CARD_KEY,
    MSE_JSON_PATH,
    NOVELTY_STEP,
    REGISTER_STEP,
    data_quality_arguments,
    data_quality_steps,
    image_uri,
    mse_threshold,
    output_uri,
)
from pipeline_scripts.retraining import labelled_training_data
from pipeline_scripts.steps import StepFactory


def build_training_pipeline(
    config: ProjectConfig,
    session: PipelineSession,
    code: StepCode,
    *,
    tuning: bool,
    git_commit: str,
) -> Pipeline:
    """data version -> + labelled batches -> preprocess -> data-quality baseline and training
    data comparison -> train (or tune) -> champion, integrity, evaluate, explain, model card ->
    register when accurate and new (else fail or skip)."""
    name = config.env.pipeline_trainwhpo if tuning else config.env.pipeline_train
    # Cacheable: every step's inputs are the data version or execution-scoped outputs.
    steps = StepFactory(config, session, name, code, image_uri(config), caching=True)
    data_url = ParameterString("TrainingDataUrl", default_value=config.env.train_data_uri)
    approval = ParameterString("ModelApprovalStatus", default_value="PendingManualApproval")
    threshold = mse_threshold(config)

    data_version = steps.data_version("RecordTrainingDataVersion", data_url)
    # The training data plus the labelled batches (issue 10 point 4, retraining.py).
    labelled = labelled_training_data(steps, config, data_url, data_version)
    preprocess = _preprocess(steps, config, labelled.training_uri, data_version)
    baseline_steps = data_quality_steps(
        steps, config, "DataQualityBaseline", "baseline", output_uri(preprocess, "baseline")
    )
    baseline = baseline_steps[-1]
    comparison_steps, comparison_metadata = _training_data_comparison(
        steps, config, labelled.training_uri, data_version, output_uri(baseline, DQ_OUTPUT)
    )
    model_step, model_data_url = _model(steps, preprocess, tuning)
    transform_uri = Join(on="/", values=[output_uri(preprocess, "transform"), "transform.json"])
    champion, integrity = _champion_and_integrity(steps, model_data_url, transform_uri)
    evaluate, evaluation = _evaluate(
        steps, preprocess, model_step, model_data_url, champion, labelled.recent_uri
    )
    explain = _explain_model(steps, preprocess, model_step, model_data_url)
    evaluation_uri = Join(on="/", values=[output_uri(evaluate, "evaluation"), "evaluation.json"])
    statistics_uri = Join(on="/", values=[output_uri(baseline, DQ_OUTPUT), "statistics.json"])
    card = model_card_step(
        steps,
        champion=champion,
        evaluation_uri=evaluation_uri,
        statistics_uri=statistics_uri,
        attributions_uri=_attributions_uri(explain),
        model_data_url=model_data_url,
        data_version=data_version.properties.Outputs[DATA_VERSION_OUTPUTS["version"]],
        git_commit=git_commit,
        tuning=tuning,
    )
    # Unchanged data, code and settings hit the step cache everywhere and would register the
    # same model again: register only a model whose fingerprint differs from the newest
    # version's (code/model_resolver, action compare_fingerprint).
    novelty = steps.compare_with_newest_version(COMPARE_STEP, labelled.data_version, tuning=tuning)
    register_arguments = _register_arguments(
        name=name,
        git_commit=git_commit,
        approval=approval,
        model_data_url=model_data_url,
        transform_uri=transform_uri,
        evaluation_uri=evaluation_uri,
        statistics_uri=statistics_uri,
        baseline=baseline,
        data_version=data_version,
        novelty=novelty,
        integrity=integrity,
        evaluation=evaluation,
        extra_metadata={
            **comparison_metadata,
            **labelled.metadata,
            ATTRIBUTIONS_KEY: _attributions_uri(explain),
            MODEL_CARD_KEY: Join(
                on="/", values=[output_uri(card, MODEL_CARD_OUTPUT), "model_card.md"]
            ),
        },
    )
    gates = _registration_gates(steps, config, novelty, register_arguments, evaluation, threshold)
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
            gates,
        ],
        sagemaker_session=session,
    )


def _preprocess(steps: StepFactory, config: ProjectConfig, data_uri, data_version):
    """Preprocess: fit the transform on the training data, split it, write the baseline rows."""
    prep = config.settings.preprocessing
    return steps.processing(
        "Preprocess",
        "preprocess.py",
        inputs={"data": data_uri},
        outputs=["train", "validation", "test", "transform", "baseline", "test_raw"],
        arguments=[
            *("--mode", "fit", "--target", prep.target),
            *("--test-fraction", str(prep.test_fraction)),
            *("--validation-fraction", str(prep.validation_fraction)),
            *("--seed", str(prep.seed)),
            # Part of the step-cache key: new data under the same prefix is a cache miss.
            *("--data-version", data_version.properties.Outputs[DATA_VERSION_OUTPUTS["version"]]),
        ],
    )


def _model(steps: StepFactory, preprocess, tuning: bool):
    """(the step that produces the model: TrainModel or TuneModel, its model.tar.gz URI)."""
    train_uri, validation_uri = (
        output_uri(preprocess, "train"),
        output_uri(preprocess, "validation"),
    )
    if not tuning:
        model_step = steps.training("TrainModel", train_uri, validation_uri)
        return model_step, model_step.properties.ModelArtifacts.S3ModelArtifacts
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
    return model_step, model_data_url


def _evaluate(steps: StepFactory, preprocess, model_step, model_data_url, champion, recent_uri):
    """EvaluateModel and a reader of its evaluation.json (path -> JsonGet)."""
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = steps.processing(
        "EvaluateModel",
        "evaluate.py",
        inputs={
            "model": model_data_url,
            "test": output_uri(preprocess, "test"),
            "train": output_uri(preprocess, "train"),
            # Champion vs challenger (issue 10 point 5): the Approved version's own model and
            # transform, scored on the same raw test rows.
            "test_raw": output_uri(preprocess, "test_raw"),
            "champion_model": champion.properties.Outputs[CHAMPION_OUTPUTS["model"]],
            "champion_transform": champion.properties.Outputs[CHAMPION_OUTPUTS["transform"]],
            # ... and on the labelled rows JoinLabelledBatches held out from training, the
            # challenger through its new transform.
            "recent": recent_uri,
            "transform": output_uri(preprocess, "transform"),
        },
        outputs=["evaluation"],
        arguments=["--champion-version", champion.properties.Outputs[CHAMPION_OUTPUTS["version"]]],
        property_files=[report],
        depends_on=[model_step],
    )

    def evaluation(path: str) -> JsonGet:
        return JsonGet(step_name=evaluate.name, property_file=report, json_path=path)

    return evaluate, evaluation


def _register_arguments(*, name, git_commit, approval, model_data_url, transform_uri,
                        evaluation_uri, statistics_uri, baseline, data_version, novelty,
                        integrity, evaluation, extra_metadata) -> dict:  # fmt: skip
    """RegisterModel's arguments: the model, its evaluation and baseline, and the metadata
    other components read (lineage, fingerprint, integrity, champion vs challenger)."""
    return dict(
        model_data_url=model_data_url,
        evaluation_uri=evaluation_uri,
        statistics_uri=statistics_uri,
        constraints_uri=Join(on="/", values=[output_uri(baseline, DQ_OUTPUT), "constraints.json"]),
        approval_status=approval,
        # Every value must be a valid CustomerMetadataValue (botocore SageMaker model: 1..256
        # characters of letters, spaces, digits and _.:/=+-@). Hence no raw TrainingDataUrl: a
        # key may hold other characters; the data version shows it in a valid form.
        metadata={
            METADATA_KEYS["commit"]: git_commit,
            METADATA_KEYS["training_data"]: data_version.properties.Outputs[
                DATA_VERSION_OUTPUTS["version"]
            ],
            METADATA_KEYS["execution"]: ExecutionVariables.PIPELINE_EXECUTION_ARN,
            FINGERPRINT_KEY: novelty.properties.Outputs[COMPARE_OUTPUTS["fingerprint"]],
            METADATA_KEYS["transform"]: transform_uri,
            # Integrity (point 6): what inference verifies before use.
            **{key: integrity.properties.Outputs[key] for key in INTEGRITY_OUTPUTS},
            # Champion vs challenger (point 5), as evaluate.py formats them ("none": no champion).
            METADATA_KEYS["compared_with"]: evaluation("formatted.champion_version"),
            METADATA_KEYS["champion"]: evaluation("formatted.champion_mse"),
            METADATA_KEYS["challenger"]: evaluation("formatted.mse"),
            METADATA_KEYS["records"]: evaluation("formatted.record_count"),
            # ... and on the recent labelled rows held out ("none": none held out).
            METADATA_KEYS["recent"]: evaluation("formatted.recent_record_count"),
            METADATA_KEYS["challenger_recent"]: evaluation("formatted.recent_mse"),
            METADATA_KEYS["champion_recent"]: evaluation("formatted.recent_champion_mse"),
            **extra_metadata,
        },
        description=f"Trained by the {name} pipeline",
    )


def _registration_gates(steps, config, novelty, register_arguments, evaluation, threshold):
    """CheckModelAccuracy: too inaccurate -> fail; else CheckModelIsNew: the newest version's
    model again -> nothing (the compare step's message says so); else register (or, with
    registration.reject_if_not_better, the champion gate)."""
    too_inaccurate = FailStep(
        name="ModelAccuracyBelowThreshold",
        error_message=Join(
            on=" ",
            values=[
                "Model MSE",
                # Two decimals, as evaluate.py formats them (13.44, not 13.444444444444445).
                evaluation("formatted.mse"),
                "exceeds accuracy_mse_threshold",
                threshold,
                "(mean-predictor MSE",
                evaluation("formatted.mean_predictor_mse"),
                "); the model was not registered.",
            ],
        ),
    )
    register = steps.register_model(REGISTER_STEP, **register_arguments)
    novelty_gate = ConditionStep(
        name=NOVELTY_STEP,
        conditions=[
            ConditionEquals(left=novelty.properties.Outputs[COMPARE_OUTPUTS["new"]], right=True)
        ],
        if_steps=[_champion_gate(steps, config, register, register_arguments, evaluation)],
        else_steps=[],
    )
    return ConditionStep(
        name="CheckModelAccuracy",
        conditions=[ConditionLessThanOrEqualTo(left=evaluation(MSE_JSON_PATH), right=threshold)],
        if_steps=[novelty_gate],
        else_steps=[too_inaccurate],
    )


# -- explanations (issue 13): small hooks, the steps themselves are in explain_step.py --------


def _attributions_uri(explain: ProcessingStep) -> Join:
    return Join(on="/", values=[output_uri(explain, EXPLANATIONS_OUTPUT), "attributions.json"])


def _explain_model(steps: StepFactory, preprocess, model_step, model_data_url) -> ProcessingStep:
    """ExplainModel beside EvaluateModel: the version's global importance and baseline."""
    return explain_model_step(
        steps,
        model_data_url=model_data_url,
        transform_uri=output_uri(preprocess, "transform"),
        train_uri=output_uri(preprocess, "train"),
        # The file, not the folder: an S3Prefix input takes every object whose key starts with
        # the URI ("SageMaker uses all objects that match the specified key name prefix", API
        # reference S3DataSource/ProcessingS3Input S3DataType), and <...>/test is a prefix of
        # <...>/test_raw/test.csv (the raw rows, another layout).
        test_uri=Join(on="/", values=[output_uri(preprocess, "test"), "test.csv"]),
        depends_on=[model_step],
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
        inputs={"data": data_url, "previous": found[PREVIOUS_OUTPUTS["profile"]]},
        outputs=["profile", "comparison"],
        arguments=[
            *("--previous-version", found[PREVIOUS_OUTPUTS["version"]]),
            *("--target", config.settings.preprocessing.target),
            # Part of the step-cache key: new data under the same prefix is a cache miss.
            *("--data-version", data_version.properties.Outputs[DATA_VERSION_OUTPUTS["version"]]),
            *data_quality_arguments(config)[2:],  # the settings, without --output-dir
        ],
        property_files=[report],
    )
    # Valid CustomerMetadataValues: the summary is sanitised by the script, the URIs are
    # execution-scoped S3 URIs like transform_uri.
    metadata = {
        METADATA_KEYS["training_data_summary"]: JsonGet(
            step_name=compare.name, property_file=report, json_path="summary"
        ),
        METADATA_KEYS["training_data_report"]: Join(
            on="/", values=[output_uri(compare, "comparison"), "comparison.json"]
        ),
        METADATA_KEYS["training_data_profile"]: output_uri(compare, "profile"),
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
