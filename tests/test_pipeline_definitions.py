"""Design-time checks of the rendered pipeline definitions.

Each step's Arguments must be a valid request for the SageMaker API the step calls, checked
with botocore's own service model (types, required members, lengths) plus the model's enums
and patterns; pipeline expressions are replaced by placeholders of the type the API expects at
that position. Each definition is also validated against AWS's published definition schema.
"""

from __future__ import annotations

import io
import json
import re
import tarfile

import botocore.session
import pytest
from botocore.validate import ParamValidator

from pipeline_scripts import pipeline_parts
from pipeline_scripts.api_model import constraint_errors, is_expression
from pipeline_scripts.cli import run
from pipeline_scripts.config import load_config
from pipeline_scripts.render import offline_session, render
from tests.conftest import REPO_ROOT, all_steps, shared_path

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"

# Step type -> (SageMaker API operation, the name member the pipeline service fills in).
STEP_OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Training": ("CreateTrainingJob", "TrainingJobName"),
    "Tuning": ("CreateHyperParameterTuningJob", "HyperParameterTuningJobName"),
    "Model": ("CreateModel", "ModelName"),
    "RegisterModel": ("CreateModelPackage", None),
    "Transform": ("CreateTransformJob", "TransformJobName"),
}


@pytest.fixture(scope="module")
def config():
    return load_config(DEV_ENV)


@pytest.fixture(scope="module")
def definitions(config):
    return {p.name: json.loads(p.definition) for p in render(config).pipelines}


@pytest.fixture(scope="module")
def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


PLACEHOLDERS = {
    "string": "s3://placeholder-bucket/placeholder",
    "integer": 1,
    "long": 1,
    "float": 1.0,
    "double": 1.0,
    "boolean": True,
}


def with_placeholders(value, shape):
    """Replaces pipeline expressions by a value of the type the API shape expects there."""
    if is_expression(value):
        assert shape.type_name in PLACEHOLDERS, f"expression where a {shape.type_name} is expected"
        return PLACEHOLDERS[shape.type_name]
    if isinstance(value, dict) and shape.type_name == "structure":
        return {
            k: with_placeholders(v, shape.members[k]) if k in shape.members else v
            for k, v in value.items()
        }
    if isinstance(value, dict) and shape.type_name == "map":
        return {k: with_placeholders(v, shape.value) for k, v in value.items()}
    if isinstance(value, list) and shape.type_name == "list":
        return [with_placeholders(v, shape.member) for v in value]
    return value


def api_request(step) -> tuple[str, dict]:
    operation, name_member = STEP_OPERATIONS[step["Type"]]
    request = dict(step["Arguments"])
    if name_member:
        request[name_member] = "placeholder-job-name"
    return operation, request


@pytest.mark.e2e
def test_render_writes_three_deterministic_definitions(config, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    lines = []
    run("render", str(DEV_ENV), first, out=lines.append)
    run("render", str(DEV_ENV), second, out=lines.append)
    names = sorted(p.name for p in first.iterdir())
    env = config.env
    assert names == sorted(
        f"{n}.json" for n in (env.pipeline_train, env.pipeline_trainwhpo, env.pipeline_inf)
    )
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert len(lines) == 6


def api_errors(definitions, sagemaker_model) -> tuple[list[str], set[str]]:
    """Errors of every job step's request, and the step types that were checked."""
    validator = ParamValidator()
    errors, checked = [], set()
    for pipeline_name, definition in definitions.items():
        for step in all_steps(definition):
            if step["Type"] not in STEP_OPERATIONS:
                continue
            operation, request = api_request(step)
            input_shape = sagemaker_model.operation_model(operation).input_shape
            report = validator.validate(with_placeholders(request, input_shape), input_shape)
            if report.has_errors():
                errors.append(f"{pipeline_name}/{step['Name']}: {report.generate_report()}")
            for error in constraint_errors(request, input_shape, operation):
                errors.append(f"{pipeline_name}/{step['Name']}: {error}")
            checked.add(step["Type"])
    return errors, checked


def test_every_job_step_is_a_valid_sagemaker_api_request(definitions, sagemaker_model):
    errors, checked = api_errors(definitions, sagemaker_model)
    assert errors == []
    assert checked == set(STEP_OPERATIONS)


@pytest.mark.e2e
@pytest.mark.parametrize("env_file", ["staging_env.tfvars", "prod_env.tfvars"])
def test_vpc_environments_render_valid_requests(env_file, sagemaker_model):
    """Staging and prod run in a VPC: the network settings must be valid requests too."""
    config = load_config(REPO_ROOT / "env_files" / env_file)
    definitions = {p.name: json.loads(p.definition) for p in render(config).pipelines}
    assert api_errors(definitions, sagemaker_model)[0] == []
    processing = [
        s for d in definitions.values() for s in all_steps(d) if s["Type"] == "Processing"
    ]
    for step in processing:
        network = step["Arguments"]["NetworkConfig"]
        assert network["EnableNetworkIsolation"] is True
        assert network["VpcConfig"] == {
            "SecurityGroupIds": list(config.env.sg_id),
            "Subnets": list(config.env.subnet_id),
        }


def test_validator_catches_a_broken_request(definitions, sagemaker_model):
    """The check above can fail: a wrong type, a missing member and a bad enum are caught."""
    step = next(s for d in definitions.values() for s in all_steps(d) if s["Type"] == "Processing")
    operation, request = api_request(step)
    shape = sagemaker_model.operation_model(operation).input_shape
    broken = json.loads(json.dumps(request))
    broken["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "one"
    del broken["RoleArn"]
    report = ParamValidator().validate(with_placeholders(broken, shape), shape)
    assert "InstanceCount" in report.generate_report() and "RoleArn" in report.generate_report()
    broken = json.loads(json.dumps(request))
    broken["ProcessingResources"]["ClusterConfig"]["InstanceType"] = "m5.large"
    assert constraint_errors(broken, shape)


# --- AWS's published definition schema ------------------------------------------------------
# The schema lags the API. Its known gaps, each accepted by SageMaker and emitted by the SDK:
# properties it does not know yet, by the path pattern where they appear.
SCHEMA_UNKNOWN_PROPERTIES = {
    "PipelineExperimentConfig": r"",  # top level; SDK default experiment/trial names
    "MlflowConfig": r"",  # top level; SDK 3 always emits it (null)
    "PropertyFiles": r"",  # step level; what Std:JsonGet reads
    "CompressionType": r".*OutputDataConfig",  # training output compression
    "CustomerMetadataProperties": r"Arguments",  # RegisterModel: our lineage
    "DriftCheckBaselines": r"Arguments",  # RegisterModel: data-quality baselines
    "ModelApprovalStatus": r"Arguments",  # RegisterModel: PendingManualApproval
    "SkipModelValidation": r"Arguments",  # RegisterModel
    "Environment": r"Arguments/InferenceSpecification/Containers/\d+",
}
# Where the schema allows only a literal string but the API takes a pipeline variable.
SCHEMA_STRING_ONLY_PATHS = {r"Arguments/PrimaryContainer/ModelDataUrl"}
SCHEMA_STEP_DEFINITIONS = {
    "Condition": "ConditionStep",
    "Training": "TrainingStep",
    "Processing": "ProcessingStep",
    "Transform": "TransformStep",
    "Model": "CreateModelStep",
    "RegisterModel": "RegisterModelStep",
    "Lambda": "LambdaStep",
    "Tuning": "TuningStep",
    "Fail": "FailStep",
}


def as_get_expressions(value):
    """Std:Join and Std:JsonGet checked as Get: the schema's Std:Join subschema is
    unsatisfiable (it requires Values but forbids every property) and it has no Std:JsonGet."""
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in {"Std:Join", "Std:JsonGet"}:
            return {"Get": "Steps.Expression"}
        return {k: as_get_expressions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_get_expressions(v) for v in value]
    return value


def is_known_schema_gap(error) -> bool:
    path = "/".join(map(str, error.absolute_path))
    if error.validator == "additionalProperties":
        unexpected = set(error.instance) - set(error.schema.get("properties", {}))
        return all(
            name in SCHEMA_UNKNOWN_PROPERTIES
            and re.fullmatch(SCHEMA_UNKNOWN_PROPERTIES[name], path)
            for name in unexpected
        )
    if re.fullmatch(r"RetryPolicies/\d+/ExceptionType", path):
        # The API takes a list of exception types; the schema says one string.
        return isinstance(error.instance, list) and all(isinstance(e, str) for e in error.instance)
    is_get = isinstance(error.instance, dict) and error.instance.keys() == {"Get"}
    if error.validator == "type" and is_get:
        return any(re.fullmatch(p, path) for p in SCHEMA_STRING_ONLY_PATHS)
    return False


@pytest.fixture(scope="module")
def definition_schema():
    return json.loads(shared_path("schemas/sagemaker-pipeline-definition.schema.json").read_text())


def schema_errors(definition, schema) -> list[str]:
    """Unexplained schema errors, step by step so a failure names the step and the field."""
    from jsonschema import Draft7Validator

    top = dict(definition, Steps=[])
    errors = [e for e in Draft7Validator(schema).iter_errors(top) if not is_known_schema_gap(e)]
    messages = [f"(definition) {e.message}" for e in errors]
    for step in all_steps(definition):
        step_schema = {
            "definitions": schema["definitions"],
            "$ref": f"#/definitions/{SCHEMA_STEP_DEFINITIONS[step['Type']]}",
        }
        checked = as_get_expressions(step)
        if step["Type"] == "Condition":  # branch steps are checked on their own
            checked["Arguments"] = dict(checked["Arguments"], IfSteps=[], ElseSteps=[])
        for error in Draft7Validator(step_schema).iter_errors(checked):
            if not is_known_schema_gap(error):
                path = "/".join(map(str, error.absolute_path))
                messages.append(f"{step['Name']}: {path}: {error.message[:300]}")
    return messages


def test_definitions_match_the_published_schema_except_known_gaps(definitions, definition_schema):
    for name, definition in definitions.items():
        assert schema_errors(definition, definition_schema) == [], name


def test_schema_check_catches_what_is_not_a_known_gap(definitions, definition_schema):
    definition = json.loads(json.dumps(next(iter(definitions.values()))))
    step = next(s for s in definition["Steps"] if s["Type"] == "Processing")
    step["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "one"
    step["Timeout"] = 5
    errors = schema_errors(definition, definition_schema)
    assert any("InstanceCount" in e for e in errors) and any("Timeout" in e for e in errors)


# --- DAG shape, parameters and cross-cutting settings -----------------------------------------


def references(value) -> set[str]:
    """Names of the steps an expression reads from (Get Steps.X..., PropertyFiles of X)."""
    found = set()
    if isinstance(value, dict):
        get = value.get("Get")
        if isinstance(get, str) and get.startswith("Steps."):
            found.add(get.split(".")[1])
        for item in value.values():
            found |= references(item)
    elif isinstance(value, list):
        for item in value:
            found |= references(item)
    return found


def dependencies(definition) -> dict[str, set[str]]:
    graph = {}
    for step in all_steps(definition):
        arguments = step["Arguments"]
        if step["Type"] == "Condition":
            arguments = {"Conditions": arguments["Conditions"]}
        graph.setdefault(step["Name"], set())
        graph[step["Name"]] |= references(arguments) | set(step.get("DependsOn", []))
        if step["Type"] == "Condition":
            for branch_step in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                graph.setdefault(branch_step["Name"], set()).add(step["Name"])
    return graph


TRAINING_DAG = {
    "RecordTrainingDataVersion": set(),
    # Issue 10.4: the training data plus the labelled batches, copied at exact versions.
    "CollectLabelledBatches": {"RecordTrainingDataVersion"},
    "JoinLabelledBatches": {"CollectLabelledBatches", "RecordTrainingDataVersion"},
    "Preprocess": {"JoinLabelledBatches", "RecordTrainingDataVersion"},
    "DataQualityBaseline": {"Preprocess"},
    # Issue 11.6: the new training data against the previous approved version's.
    "FindPreviousTrainingData": {"DataQualityBaseline"},
    "CompareTrainingData": {
        "FindPreviousTrainingData", "JoinLabelledBatches", "RecordTrainingDataVersion",
    },
    "<model>": {"Preprocess"},
    # Champion vs challenger and integrity (issue 10 points 5, 6): Lambda steps on the new
    # model's artifacts; evaluation reads the champion's.
    "ResolveChampion": {"<model>", "Preprocess"},
    "RecordArtifactIntegrity": {"<model>", "Preprocess"},
    "EvaluateModel": {"<model>", "Preprocess", "ResolveChampion", "JoinLabelledBatches"},
    "ExplainModel": {"<model>", "Preprocess"},
    # The card's champion is ResolveChampion's; its metrics come from evaluation.json.
    "ModelCard": {
        "ResolveChampion", "EvaluateModel", "ExplainModel", "DataQualityBaseline",
        "RecordTrainingDataVersion", "<model>",
    },
    "CheckModelAccuracy": {"EvaluateModel"},
    "CompareWithNewestVersion": {"RecordTrainingDataVersion", "CollectLabelledBatches"},
    "CheckModelIsNew": {"CheckModelAccuracy", "CompareWithNewestVersion"},
    "RegisterModel": {
        "CheckModelIsNew", "<model>", "EvaluateModel", "DataQualityBaseline", "Preprocess",
        "RecordTrainingDataVersion", "CompareWithNewestVersion", "CompareTrainingData",
        "RecordArtifactIntegrity", "ExplainModel", "ModelCard", "CollectLabelledBatches",
    },
    "ModelAccuracyBelowThreshold": {"CheckModelAccuracy", "EvaluateModel"},
}  # fmt: skip


@pytest.mark.parametrize("tuning, model_step", [(False, "TrainModel"), (True, "TuneModel")])
def test_training_dag(definitions, config, tuning, model_step):
    name = config.env.pipeline_trainwhpo if tuning else config.env.pipeline_train
    expected = {
        k.replace("<model>", model_step): {v.replace("<model>", model_step) for v in vs}
        for k, vs in TRAINING_DAG.items()
    }
    assert dependencies(definitions[name]) == expected


def test_inference_dag(definitions, config):
    """The model is resolved at run time; the model-quality check runs after the data-quality
    check whatever it found, and the data-quality gate only after the model-quality check."""
    assert dependencies(definitions[config.env.pipeline_inf]) == {
        # Mode=evaluate (labels that arrived later) takes the other branch: nothing scores.
        pipeline_parts.MODE_GATE_STEP: set(),
        pipeline_parts.LABELS_QUALITY_STEP: {pipeline_parts.MODE_GATE_STEP},
        "LateLabelsGate": {pipeline_parts.LABELS_QUALITY_STEP},
        pipeline_parts.LABELS_QUALITY_FAILED_STEP: {
            "LateLabelsGate",
            pipeline_parts.LABELS_QUALITY_STEP,
        },
        "ResolveApprovedModel": {pipeline_parts.MODE_GATE_STEP},
        # Nothing reads the model or transform before their integrity is verified.
        "VerifyModelArtifacts": {"ResolveApprovedModel"},
        "PreprocessBatch": {"VerifyModelArtifacts"},
        "CreateModel": {"ResolveApprovedModel", "VerifyModelArtifacts"},
        "BatchTransform": {"CreateModel", "PreprocessBatch"},
        # Beside BatchTransform: contributions need the model and the features, not predictions.
        # Reads the verified model and transform, like CreateModel; the baseline is resolved.
        "ExplainBatch": {"ResolveApprovedModel", "VerifyModelArtifacts", "PreprocessBatch"},
        "DataQualityCheck": {"PreprocessBatch", "ResolveApprovedModel"},
        pipeline_parts.MODEL_QUALITY_STEP: {
            "BatchTransform",
            "PreprocessBatch",
            "DataQualityCheck",
        },
        # The gates wait for ExplainBatch, so their Fail steps' e-mails can explain the batch.
        "DataQualityGate": {"DataQualityCheck", pipeline_parts.MODEL_QUALITY_STEP, "ExplainBatch"},
        # Only a measured MSE above the threshold reaches the Fail step that retrains.
        "ModelQualityGate": {pipeline_parts.MODEL_QUALITY_STEP, "ExplainBatch"},
        pipeline_parts.MODEL_QUALITY_FAILED_STEP: {
            "ModelQualityGate",
            pipeline_parts.MODEL_QUALITY_STEP,
        },
        "DataQualityViolations": {"DataQualityGate", "DataQualityCheck", "ResolveApprovedModel"},
    }


def parameter_uses(value) -> set[str]:
    if isinstance(value, dict):
        get = value.get("Get")
        own = (
            {get.split(".", 1)[1]}
            if isinstance(get, str) and get.startswith("Parameters.")
            else set()
        )
        return own.union(*(parameter_uses(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(parameter_uses(v) for v in value))
    return set()


def test_parameters_are_declared_used_and_default_to_the_config(definitions, config):
    env = config.env
    expected_defaults = {
        env.pipeline_train: {
            "TrainingDataUrl": env.train_data_uri,
            "ModelApprovalStatus": "PendingManualApproval",
            "MseThreshold": env.accuracy_mse_threshold,
        },
        env.pipeline_inf: {
            "InferenceDataUrl": env.inference_data_uri,
            "BatchId": "all",
            "BatchVersionId": "",
            "BatchETag": "",
            "MseThreshold": env.accuracy_mse_threshold,
            "FailOnDataQualityViolation": env.fail_on_data_quality_violation,
            # Labels that arrived later (the batch dispatcher sets both for them).
            "Mode": "score",
            "LabelsDataUrl": f"{env.s3_base_uri}/labels",
        },
    }
    expected_defaults[env.pipeline_trainwhpo] = expected_defaults[env.pipeline_train]
    for name, definition in definitions.items():
        declared = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        assert declared == expected_defaults[name]
        assert parameter_uses(definition["Steps"]) == set(declared), name


def test_accuracy_gate_compares_evaluation_mse_with_the_threshold(definitions, config):
    definition = definitions[config.env.pipeline_train]
    gate = next(s for s in all_steps(definition) if s["Name"] == "CheckModelAccuracy")
    (condition,) = gate["Arguments"]["Conditions"]
    assert condition["Type"] == "LessThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == pipeline_parts.MSE_JSON_PATH
    assert condition["RightValue"] == {"Get": "Parameters.MseThreshold"}
    assert [s["Name"] for s in gate["Arguments"]["IfSteps"]] == [pipeline_parts.NOVELTY_STEP]
    (fail,) = gate["Arguments"]["ElseSteps"]
    message = fail["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    # the compared MSE, as evaluate.py formats it for people (two decimals)
    formatted = {"Std:JsonGet": {**condition["LeftValue"]["Std:JsonGet"], "Path": "formatted.mse"}}
    assert formatted in message and {"Get": "Parameters.MseThreshold"} in message


def test_registered_versions_carry_metrics_baselines_and_lineage(definitions, config):
    for name in (config.env.pipeline_train, config.env.pipeline_trainwhpo):
        register = next(s for s in all_steps(definitions[name]) if s["Type"] == "RegisterModel")
        arguments = register["Arguments"]
        assert arguments["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
        assert arguments["ModelPackageGroupName"] == config.env.model_package_group_name
        baselines = arguments["DriftCheckBaselines"]["ModelDataQuality"]
        assert {"Statistics", "Constraints"} <= baselines.keys()
        assert "Statistics" in arguments["ModelMetrics"]["ModelQuality"]
        metadata = arguments["CustomerMetadataProperties"]
        assert set(metadata) == {
            "git_commit", "training_data_version", "pipeline_execution_arn", "transform_uri",
            "model_fingerprint", "model_sha256", "model_version_id", "transform_sha256",
            "transform_version_id", "champion_version", "champion_mse", "challenger_mse",
            "evaluation_records",
            # issue 10.5, on the recent labelled rows held out
            "recent_records", "challenger_recent_mse", "champion_recent_mse",
            # issue 11.6 (tests/test_training_data_comparison.py)
            "training_data_comparison", "training_data_comparison_uri", "training_data_profile_uri",
            # issue 13
            "attributions_uri", "model_card_uri",
            # issue 10.4 (tests/test_labelled_batches.py)
            "labelled_batches", "labelled_batches_manifest",
        }  # fmt: skip
        assert metadata["model_card_uri"] == {
            "Std:Join": {"On": "/", "Values": [_output("ModelCard", "model_card"), "model_card.md"]}
        }
        # The version's own ExplainModel output, which ExplainBatch reuses as its baseline.
        assert metadata["attributions_uri"] == {
            "Std:Join": {"On": "/", "Values": [
                {"Get": "Steps.ExplainModel.ProcessingOutputConfig.Outputs['explanations']"
                        ".S3Output.S3Uri"},
                "attributions.json",
            ]}
        }  # fmt: skip
        assert metadata["pipeline_execution_arn"] == {"Get": "Execution.PipelineExecutionArn"}
        assert metadata["training_data_version"] == {
            "Get": "Steps.RecordTrainingDataVersion.OutputParameters['data_version']"
        }


def _sample(value, definition: dict, env):
    """A pipeline expression as it resolves at run time, with an AWS-shaped execution ARN/id
    and each processing output's own configured S3Uri (Lambda outputs are checked against the
    same shape in test_pipeline_lambdas)."""
    if isinstance(value, str | int | float):
        return str(value)
    if "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(_sample(v, definition, env) for v in join["Values"])
    reference = value["Get"]
    execution_id = "a1b2c3d4e5f6"  # DescribePipelineExecution: 12 lowercase alphanumerics
    if reference == "Execution.PipelineExecutionId":
        return execution_id
    if reference == "Execution.PipelineExecutionArn":
        name = definition["_name"].lower()
        return f"arn:{env.partition}:sagemaker:{env.region}:{env.account_id}:pipeline/{name}/execution/{execution_id}"  # noqa: E501
    match = re.fullmatch(
        r"Steps\.(\w+)\.ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", reference
    )  # noqa: E501
    assert match, f"no sample for {reference}"
    step = next(s for s in all_steps(definition) if s["Name"] == match[1])
    outputs = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    output = next(o for o in outputs if o["OutputName"] == match[2])
    return _sample(output["S3Output"]["S3Uri"], definition, env)


def _processing(definition, name):
    step = next(s for s in all_steps(definition) if s["Name"] == name)
    arguments = step["Arguments"]
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"]}
    outputs = {
        o["OutputName"]: o["S3Output"]["S3Uri"]
        for o in arguments["ProcessingOutputConfig"]["Outputs"]
    }
    return arguments, inputs, outputs


def _output(step, name):
    return {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}


def test_training_learns_from_the_labelled_batches_and_records_them(definitions, config):
    """Issue 10.4: Preprocess fits on the training data plus the labelled batches that the
    data-version Lambda snapshotted; the version records the set; the fingerprint covers it."""
    env = config.env
    collected = "Steps.CollectLabelledBatches.OutputParameters"
    for name in (env.pipeline_train, env.pipeline_trainwhpo):
        definition = definitions[name]
        steps = {s["Name"]: s for s in all_steps(definition)}
        collect = steps["CollectLabelledBatches"]
        assert collect["Type"] == "Lambda"
        assert collect["FunctionArn"].endswith(f":{env.model_package_group_name}-data-version")
        assert collect["Arguments"] == {
            "action": "labelled_batches",
            "labels_uri": f"{env.s3_base_uri}/labels/",
            "predictions_uri": f"{env.s3_base_uri}/predictions/",
            "snapshot_uri": f"{env.s3_base_uri}/labelled-batches/",
            "days": config.settings.retraining.labelled_batches_days,
            "kms_key": env.kms_key,
        }
        arguments, inputs, outputs = _processing(definition, "JoinLabelledBatches")
        assert inputs["train"] == {"Get": "Parameters.TrainingDataUrl"}
        assert inputs["snapshot"] == {"Get": f"{collected}['snapshot_uri']"}
        assert set(outputs) == {"training", "recent", "report"}
        # The held-out share of the labelled rows: Preprocess's test share and seed.
        prep = config.settings.preprocessing
        cli = arguments["AppSpecification"]["ContainerArguments"]
        assert cli[cli.index("--test-fraction") + 1] == str(prep.test_fraction)
        assert cli[cli.index("--seed") + 1] == str(prep.seed)
        _, evaluate_inputs, _ = _processing(definition, "EvaluateModel")
        assert evaluate_inputs["recent"] == _output("JoinLabelledBatches", "recent")
        assert evaluate_inputs["transform"] == _output("Preprocess", "transform")
        _, preprocess_inputs, _ = _processing(definition, "Preprocess")
        assert preprocess_inputs["data"] == _output("JoinLabelledBatches", "training")
        _, comparison_inputs, _ = _processing(definition, "CompareTrainingData")
        assert comparison_inputs["data"] == _output("JoinLabelledBatches", "training")
        fingerprint = steps["CompareWithNewestVersion"]["Arguments"]["data_version"]
        assert {"Get": f"{collected}['labelled_batches']"} in fingerprint["Std:Join"]["Values"]
        register = next(s for s in all_steps(definition) if s["Type"] == "RegisterModel")
        metadata = register["Arguments"]["CustomerMetadataProperties"]
        assert metadata["labelled_batches"] == {"Get": f"{collected}['labelled_batches']"}
        assert metadata["labelled_batches_manifest"] == {"Get": f"{collected}['manifest_uri']"}
        for key, path in [("recent_records", "formatted.recent_record_count"),
                          ("challenger_recent_mse", "formatted.recent_mse"),
                          ("champion_recent_mse", "formatted.recent_champion_mse")]:  # fmt: skip
            assert metadata[key]["Std:JsonGet"]["Path"] == path, key
    # The batch report lands next to the batch's predictions, where the Lambda reads it.
    definition = definitions[env.pipeline_inf]
    _, _, outputs = _processing(definition, "PreprocessBatch")
    predictions = [env.s3_base_uri, "predictions", {"Get": "Parameters.BatchId"}]
    assert outputs["report"] == {"Std:Join": {"On": "/", "Values": [
        {"Std:Join": {"On": "/", "Values": predictions}}, "report"]}}  # fmt: skip


def test_explain_steps_read_the_model_its_transform_and_the_right_data(definitions, config):
    for name in (config.env.pipeline_train, config.env.pipeline_trainwhpo):
        arguments, inputs, outputs = _processing(definitions[name], "ExplainModel")
        assert arguments["AppSpecification"]["ContainerArguments"][:2] == ["--mode", "model"]
        assert inputs["transform"] == _output("Preprocess", "transform")
        assert inputs["train"] == _output("Preprocess", "train")
        # Only test.csv: the folder's URI is also a key prefix of Preprocess's test_raw output.
        assert inputs["test"] == {
            "Std:Join": {"On": "/", "Values": [_output("Preprocess", "test"), "test.csv"]}
        }
        register = next(s for s in all_steps(definitions[name]) if s["Type"] == "RegisterModel")
        model_data = register["Arguments"]["InferenceSpecification"]["Containers"][0]
        assert inputs["model"] == model_data["ModelDataUrl"]
        assert set(outputs) == {"explanations"}
    arguments, inputs, outputs = _processing(definitions[config.env.pipeline_inf], "ExplainBatch")
    resolved = "Steps.ResolveApprovedModel.OutputParameters"
    assert arguments["AppSpecification"]["ContainerArguments"][:2] == ["--mode", "batch"]
    assert "--per-record" not in arguments["AppSpecification"]["ContainerArguments"]
    # The model and transform as VerifyModelArtifacts checked them, like CreateModel's.
    verified = "Steps.VerifyModelArtifacts.OutputParameters"
    assert inputs["model"] == {"Get": f"{verified}['model_uri']"}
    assert inputs["transform"] == {"Get": f"{verified}['transform_uri']"}
    assert inputs["baseline"] == {"Get": f"{resolved}['attributions_uri']"}
    assert inputs["batch"] == _output("PreprocessBatch", "transform_input")
    assert set(outputs) == {"explanations"}  # per_record is off by default


def test_model_card_step_gets_this_runs_files_and_the_champions(definitions, config):
    for tuning, name in ((False, config.env.pipeline_train), (True, config.env.pipeline_trainwhpo)):
        definition = definitions[name]
        arguments, inputs, outputs = _processing(definition, "ModelCard")
        # One champion lookup: ResolveChampion, the step EvaluateModel scores the champion from.
        assert not any(s["Name"] == "FindChampion" for s in all_steps(definition))
        champion = next(s for s in all_steps(definition) if s["Name"] == "ResolveChampion")
        assert champion["Arguments"]["action"] == "champion"
        # This run's evaluation.json, whose "champion" block holds the champion's metrics.
        assert inputs["evaluation"] == {
            "Std:Join": {"On": "/", "Values": [_output("EvaluateModel", "evaluation"),
                                               "evaluation.json"]}
        }  # fmt: skip
        assert "champion_evaluation" not in inputs
        register = next(s for s in all_steps(definition) if s["Type"] == "RegisterModel")
        assert (
            inputs["statistics"]
            == (
                register["Arguments"]["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"][
                    "S3Uri"
                ]
            )
        )
        found = "Steps.ResolveChampion.OutputParameters"
        assert inputs["champion_attributions"] == {"Get": f"{found}['champion_attributions_uri']"}
        args = arguments["AppSpecification"]["ContainerArguments"]
        flags = dict(zip(args[::2], args[1:][::2], strict=False))
        assert flags["--champion-version"] == {"Get": f"{found}['champion_version']"}
        assert flags["--champion-attributions"] == {"Get": f"{found}['champion_attributions']"}
        assert (
            flags["--git-commit"]
            == (register["Arguments"]["CustomerMetadataProperties"]["git_commit"])
        )
        tuned = [a for a in args if isinstance(a, str) and "tuned in [" in a]
        assert bool(tuned) == tuning
        assert set(outputs) == {"model_card"}


@pytest.mark.e2e
def test_per_record_explanations_land_next_to_the_batch_predictions(config, tmp_path):
    import dataclasses

    from pipeline_scripts.config import ExplanationSettings

    settings = dataclasses.replace(
        config.settings, explanations=ExplanationSettings(per_record=True)
    )
    rendered = render(dataclasses.replace(config, settings=settings)).pipelines
    definition = next(
        json.loads(p.definition) for p in rendered if p.name == config.env.pipeline_inf
    )
    arguments, _, outputs = _processing(definition, "ExplainBatch")
    assert "--per-record" in arguments["AppSpecification"]["ContainerArguments"]
    transform = next(s for s in all_steps(definition) if s["Name"] == "BatchTransform")
    predictions = transform["Arguments"]["TransformOutput"]["S3OutputPath"]
    assert outputs["per_record"] == {
        "Std:Join": {"On": "/", "Values": [predictions, "explanations"]}
    }


def test_batch_transform_leaves_concurrency_to_the_container_unless_set(definitions, config):
    """pipelines.yaml transform.max_concurrent_transforms 0 (the default) renders no
    MaxConcurrentTransforms, so SageMaker asks the XGBoost image (one request per CPU); a
    number renders as that number."""
    import dataclasses

    assert config.settings.transform.max_concurrent_transforms == 0
    step = next(s for s in all_steps(definitions[config.env.pipeline_inf])
                if s["Name"] == "BatchTransform")  # fmt: skip
    assert "MaxConcurrentTransforms" not in step["Arguments"]
    transform = dataclasses.replace(config.settings.transform, max_concurrent_transforms=2)
    settings = dataclasses.replace(config.settings, transform=transform)
    rendered = render(dataclasses.replace(config, settings=settings)).pipelines
    definition = next(
        json.loads(p.definition) for p in rendered if p.name == config.env.pipeline_inf
    )
    step = next(s for s in all_steps(definition) if s["Name"] == "BatchTransform")
    assert step["Arguments"]["MaxConcurrentTransforms"] == 2


def test_registered_metadata_values_are_valid_at_run_time(definitions, config):
    """CreateModelPackage checks each CustomerMetadataProperties value (1..256 characters of
    ^([\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@]*)$) after the expressions are resolved."""
    from pipeline_scripts.api_model import member_shape

    shape = member_shape("CreateModelPackage", "CustomerMetadataProperties")
    for name in (config.env.pipeline_train, config.env.pipeline_trainwhpo):
        definition = {**definitions[name], "_name": name}
        register = next(s for s in all_steps(definition) if s["Type"] == "RegisterModel")
        metadata = {
            key: _sample(value, definition, config.env)
            for key, value in register["Arguments"]["CustomerMetadataProperties"].items()
            # Lambda outputs: checked against the same shape in test_pipeline_lambdas; property
            # file values (JsonGet) where the scripts write them (test_champion,
            # test_training_data_comparison), on real reports.
            if not (
                isinstance(value, dict)
                and ("OutputParameters" in str(value) or "Std:JsonGet" in value)
            )
        }
        assert constraint_errors(metadata, shape, "customerMetadataProperties") == [], name


def test_every_job_is_encrypted_tagged_retried_and_writes_per_execution(definitions, config):
    """KMS on volumes and outputs, the tags.json tags, retries for throttling and capacity
    errors, and outputs under the execution id so no run overwrites another's artefacts."""
    kms, tags = config.env.kms_key, [{"Key": k, "Value": v} for k, v in sorted(config.tags.items())]
    execution_scoped = {"Get": "Execution.PipelineExecutionId"}
    for definition in definitions.values():
        for step in all_steps(definition):
            arguments = step["Arguments"]
            kind = step["Type"]
            if kind not in {"Processing", "Training", "Tuning", "Transform"}:
                continue
            retried = {e for policy in step["RetryPolicies"] for e in policy["ExceptionType"]}
            assert {"Step.THROTTLING", "SageMaker.CAPACITY_ERROR"} <= retried, step["Name"]
            assert arguments["Tags"] == tags, step["Name"]
            if kind == "Processing":
                assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == kms
                assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == kms
                outputs = [
                    o["S3Output"]["S3Uri"] for o in arguments["ProcessingOutputConfig"]["Outputs"]
                ]
            elif kind in {"Training", "Tuning"}:
                job = arguments.get("TrainingJobDefinition", arguments)
                assert job["ResourceConfig"]["VolumeKmsKeyId"] == kms
                assert job["OutputDataConfig"]["KmsKeyId"] == kms
                assert job["EnableInterContainerTrafficEncryption"] is True, step["Name"]
                # Tuned jobs write under a fixed prefix (unique job names): see the cache test.
                outputs = [job["OutputDataConfig"]["S3OutputPath"]] if kind == "Training" else []
            else:
                assert arguments["TransformOutput"]["KmsKeyId"] == kms
                assert arguments["TransformResources"]["VolumeKmsKeyId"] == kms
                outputs = [arguments["TransformOutput"]["S3OutputPath"]]
            # Predictions and the batch's report land per batch (a stable place consumers and
            # retraining read, issue 10.4), all else per execution.
            for uri in outputs:
                values = _join_values(uri)
                per_batch = kind == "Transform" or (
                    step["Name"] == "PreprocessBatch" and values[-1] == "report"
                )
                scope = {"Get": "Parameters.BatchId"} if per_batch else execution_scoped
                assert scope in values, step["Name"]


def _join_values(value) -> list:
    """The values of a Std:Join, nested Joins flattened into it."""
    if not (isinstance(value, dict) and "Std:Join" in value):
        return [value]
    return [v for item in value["Std:Join"]["Values"] for v in _join_values(item)]


@pytest.mark.e2e
def test_every_job_runs_code_from_the_uploaded_bundle(config, definitions):
    """Processing jobs mount the whole content-addressed bundle and run a script in it;
    training runs train.py from the bundle's sourcedir.tar.gz. Both are upload assets."""
    rendered = render(config)
    uploaded = {a.s3_uri: a.body for a in rendered.code_assets}
    archive_uri = next(u for u in uploaded if u.endswith("/sourcedir.tar.gz"))
    with tarfile.open(fileobj=io.BytesIO(uploaded[archive_uri])) as archive:
        archived = set(archive.getnames())
    for definition in definitions.values():
        for step in all_steps(definition):
            arguments = step["Arguments"]
            if step["Type"] == "Processing":
                (code,) = [i for i in arguments["ProcessingInputs"] if i["InputName"] == "code"]
                assert code["S3Input"]["LocalPath"] == "/opt/ml/processing/input/code"
                script = arguments["AppSpecification"]["ContainerEntrypoint"][1]
                assert script.startswith("/opt/ml/processing/input/code/")
                assert code["S3Input"]["S3Uri"] + script.rsplit("/", 1)[1] in uploaded
            elif step["Type"] in {"Training", "Tuning"}:
                job = arguments.get("TrainingJobDefinition", arguments)
                hyperparameters = job.get("StaticHyperParameters") or job["HyperParameters"]
                (code,) = [c for c in job["InputDataConfig"] if c["ChannelName"] == "code"]
                assert code["DataSource"]["S3DataSource"]["S3Uri"] == archive_uri
                # The channel's one object, where SageMaker puts it in the job.
                submit = json.loads(hyperparameters["sagemaker_submit_directory"])
                assert submit == "/opt/ml/input/data/code/" + archive_uri.rsplit("/", 1)[1]
                assert json.loads(hyperparameters["sagemaker_program"]) in archived
    # The same files, packages (scripts/dq/) included, by their path below scripts/.
    assert archived == {u.split("/scripts/", 1)[1] for u in uploaded if "/scripts/" in u}
    assert {"data_quality.py", "dq/__init__.py", "dq/checks.py"} <= archived


def test_training_steps_are_cached_on_the_data_version_and_inference_never(definitions, config):
    """A new batch or training file under the same prefix must never be served from cache."""
    env = config.env
    for name in (env.pipeline_train, env.pipeline_trainwhpo):
        steps = {s["Name"]: s for s in all_steps(definitions[name])}
        preprocess_args = steps["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
        at = preprocess_args.index("--data-version")
        assert preprocess_args[at + 1] == {
            "Get": "Steps.RecordTrainingDataVersion.OutputParameters['data_version']"
        }
        assert steps["Preprocess"]["CacheConfig"]["Enabled"] is config.settings.caching.enabled
    for step in all_steps(definitions[env.pipeline_inf]):
        assert "CacheConfig" not in step, step["Name"]


def _training_jobs(definitions):
    for definition in definitions.values():
        for step in all_steps(definition):
            if step["Type"] in {"Training", "Tuning"}:
                yield step, step["Arguments"].get("TrainingJobDefinition", step["Arguments"])


def test_no_metric_definitions_on_the_xgboost_image(definitions):
    """CreateTrainingJob/CreateHyperParameterTuningJob: "You can't override the metric
    definitions for Amazon SageMaker algorithms"; the objective is a built-in metric."""
    from pipeline_scripts import xgboost_image

    jobs = list(_training_jobs(definitions))
    assert {step["Type"] for step, _ in jobs} == {"Training", "Tuning"}
    for step, job in jobs:
        algorithm = job["AlgorithmSpecification"]
        assert xgboost_image.is_xgboost_image(algorithm["TrainingImage"]), step["Name"]
        assert xgboost_image.metric_definition_errors(algorithm) == [], step["Name"]
        if step["Type"] == "Tuning":
            config = step["Arguments"]["HyperParameterTuningJobConfig"]
            objective = config["HyperParameterTuningJobObjective"]
            assert objective["MetricName"] in xgboost_image.BUILTIN_METRICS
            direction = xgboost_image.BUILTIN_METRIC_DIRECTIONS[objective["MetricName"]]
            assert objective["Type"] == direction


def test_metric_definitions_on_the_xgboost_image_get_the_service_error():
    """What the definitions sent before: SageMaker's ValidationException text."""
    from pipeline_scripts import xgboost_image

    old = {
        "TrainingImage": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5",
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "validation:rmse", "Regex": "validation-rmse:([0-9.]+)"}],
    }
    assert xgboost_image.metric_definition_errors(old) == [
        "You can't override the metric definitions for Amazon SageMaker algorithms. Please "
        "retry the request without specifying metric definitions."
    ]
    custom = {**old, "TrainingImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mine:1"}
    assert xgboost_image.metric_definition_errors(custom) == []


def _environments(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Environment" and isinstance(item, dict):
                yield item
            yield from _environments(item)
    elif isinstance(value, list):
        for item in value:
            yield from _environments(item)


def test_no_empty_environment_values(definitions):
    """SAGEMAKER_PROGRAM "" makes the XGBoost image's serving import module "" and fail."""
    checked = 0
    for name, definition in definitions.items():
        for environment in _environments(definition["Steps"]):
            assert "" not in environment.values(), (name, environment)
            checked += 1
    assert checked >= 3  # at least the two registered containers and the created model


def test_training_runs_network_isolated_with_the_code_as_a_channel(definitions):
    """No S3 route is needed inside the job: the code arrives as an input channel."""
    for step, job in _training_jobs(definitions):
        assert job["EnableNetworkIsolation"] is True, step["Name"]
        assert job["EnableInterContainerTrafficEncryption"] is True, step["Name"]
        hyperparameters = job.get("StaticHyperParameters") or job["HyperParameters"]
        assert not json.loads(hyperparameters["sagemaker_submit_directory"]).startswith("s3://")


def _resolve(value, variables: dict):
    """A Join/Get as the pipeline service resolves it, from `variables` (Get -> value)."""
    if isinstance(value, str):
        return value
    if "Std:Join" in value:
        join = value["Std:Join"]
        return join["On"].join(_resolve(v, variables) for v in join["Values"])
    return variables[value["Get"]]


def test_tuned_model_location_is_right_on_a_cache_hit(definitions, config):
    """Execution 1 runs the tuning job; execution 2 hits the step cache (the key ignores
    OutputDataConfig: "Default cache key attributes by pipeline step type") and gets
    execution 1's best job. The model URL execution 2 evaluates and registers must be where
    that job wrote its model: <S3OutputPath of execution 1>/<job>/output/model.tar.gz."""
    definition = definitions[config.env.pipeline_trainwhpo]
    steps = {s["Name"]: s for s in all_steps(definition)}
    tuning = next(s for s in steps.values() if s["Type"] == "Tuning")
    best_job = {f"Steps.{tuning['Name']}.BestTrainingJob.TrainingJobName": "tunemodel-001-abc"}
    first = {"Execution.PipelineExecutionId": "execution1", **best_job}
    second = {"Execution.PipelineExecutionId": "execution2", **best_job}

    output_path = tuning["Arguments"]["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"]
    written = f"{_resolve(output_path, first)}/tunemodel-001-abc/output/model.tar.gz"
    evaluate_input = next(
        i["S3Input"]["S3Uri"]
        for i in steps["EvaluateModel"]["Arguments"]["ProcessingInputs"]
        if i["InputName"] == "model"
    )
    registered = steps[pipeline_parts.REGISTER_STEP]["Arguments"]["InferenceSpecification"]
    for url in (evaluate_input, registered["Containers"][0]["ModelDataUrl"]):
        assert _resolve(url, second) == written


@pytest.mark.e2e
def test_rendering_makes_no_aws_call(config, monkeypatch):
    """Offline by construction (explicit S3 locations, no default-bucket lookup), without
    presetting the SDK's private Session._default_bucket."""
    import botocore.client

    def refuse(client, operation, params):
        raise AssertionError(f"rendering called {operation}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    session = offline_session(config)
    assert session._default_bucket is None  # nothing private preset
    assert len(render(config).pipelines) == 3


def test_building_opens_no_local_session_and_keeps_the_steps_name_check(config, monkeypatch):
    """ProcessingStep and TransformStep build a LocalSagemakerClient only to read method names
    (pipeline_scripts/sagemaker_sdk.py): rendering opens no local session for that, the SDK's
    module is as it was afterwards, and the check still refuses arguments of another call."""
    from sagemaker.core.local.local_session import LocalSession
    from sagemaker.core.workflow.pipeline_context import _StepArguments
    from sagemaker.mlops.workflow import steps as sdk_steps

    from pipeline_scripts.sagemaker_sdk import offline_building

    opened = []
    init = LocalSession.__init__

    def counted(self, *args, **kwargs):
        opened.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(LocalSession, "__init__", counted)
    client_class = sdk_steps.LocalSagemakerClient
    assert len(render(config).pipelines) == 3
    assert opened == []
    assert sdk_steps.LocalSagemakerClient is client_class
    wrong_call = _StepArguments(caller_name="fit")
    with offline_building(), pytest.raises(ValueError, match=r"processor\.run"):
        sdk_steps.ProcessingStep(name="Process", step_args=wrong_call)
    with offline_building(), pytest.raises(ValueError, match=r"transformer\.transform"):
        sdk_steps.TransformStep(name="Transform", step_args=wrong_call)


def test_a_model_is_registered_only_when_it_differs_from_the_newest_version(definitions, config):
    """RegisterModel sits behind a condition on the compare step's is_new, and the version
    records the fingerprint the compare step computed."""
    for name in (config.env.pipeline_train, config.env.pipeline_trainwhpo):
        steps = {s["Name"]: s for s in all_steps(definitions[name])}
        compare = steps[pipeline_parts.COMPARE_STEP]
        assert compare["Type"] == "Lambda"
        assert compare["FunctionArn"].endswith("-model-resolver")
        assert compare["Arguments"]["action"] == "compare_fingerprint"
        # The training data's version and the labelled set (issue 10.4): either changing is new.
        assert compare["Arguments"]["data_version"] == {"Std:Join": {"On": " + ", "Values": [
            {"Get": "Steps.RecordTrainingDataVersion.OutputParameters['data_version']"},
            {"Get": "Steps.CollectLabelledBatches.OutputParameters['labelled_batches']"},
        ]}}  # fmt: skip
        gate = steps[pipeline_parts.NOVELTY_STEP]["Arguments"]
        assert gate["Conditions"] == [
            {
                "Type": "Equals",
                "LeftValue": {
                    "Get": f"Steps.{pipeline_parts.COMPARE_STEP}.OutputParameters['is_new']"
                },
                "RightValue": True,
            }
        ]
        assert [s["Name"] for s in gate["IfSteps"]] == [pipeline_parts.REGISTER_STEP]
        assert gate["ElseSteps"] == []
        metadata = steps[pipeline_parts.REGISTER_STEP]["Arguments"]["CustomerMetadataProperties"]
        assert metadata["model_fingerprint"] == {
            "Get": f"Steps.{pipeline_parts.COMPARE_STEP}.OutputParameters['model_fingerprint']"
        }
    plain, tuned = (
        next(s for s in all_steps(definitions[n]) if s["Name"] == pipeline_parts.COMPARE_STEP)
        for n in (config.env.pipeline_train, config.env.pipeline_trainwhpo)
    )
    # Tuning settings are part of what decides the model.
    assert plain["Arguments"]["code_and_settings"] != tuned["Arguments"]["code_and_settings"]
