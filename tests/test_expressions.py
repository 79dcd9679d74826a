"""local_runtime.expressions: every expression type of a pipeline definition, on small
hand-written values shaped like what the SageMaker SDK renders and Describe* returns."""

from __future__ import annotations

import re

import pytest

from local_runtime.expressions import (
    ExpressionError,
    ParameterError,
    Scope,
    condition_holds,
    lookup,
    parameter_values,
    referenced_steps,
    resolve,
)

PREPROCESS = {
    "ProcessingJobName": "pipelines-abc123def456-Preprocess-Xy",
    "ProcessingOutputConfig": {
        "Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/run/Preprocess/train"}},
            {"OutputName": "report", "S3Output": {"S3Uri": "s3://b/run/Preprocess/report/"}},
        ]
    },
}
TUNE = {
    "BestTrainingJob": {"TrainingJobName": "job-002"},
    "TrainingJobSummaries": [{"TrainingJobName": "job-002"}, {"TrainingJobName": "job-001"}],
}
FILES = {
    "s3://b/run/Preprocess/report/report.json": {"metrics": {"mse": {"value": 4.5}}, "n": [3, 7]}
}


def scope(**overrides) -> Scope:
    values = {
        "parameters": {"Threshold": 6.0, "Url": "s3://b/data/", "Enabled": True, "Count": 3},
        "execution": {
            "PipelineExecutionId": "abc123def456",
            "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:1:pipeline/p/execution/abc",
            "PipelineName": "p",
            "PipelineArn": "arn:aws:sagemaker:eu-west-1:1:pipeline/p",
            "StartDateTime": "2024-05-01T12:00:00.000Z",
        },
        "steps": {
            "Preprocess": PREPROCESS,
            "TuneModel": TUNE,
            "Resolve": {"OutputParameters": {"transform_uri": "s3://b/t.json"}},
            "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"}},
            "Model": {"ModelName": "m-1"},
            "Transform": {"TransformOutput": {"S3OutputPath": "s3://b/out"}},
        },
        "property_files": {
            "Preprocess": {"Report": {"OutputName": "report", "FilePath": "report.json"}}
        },
        "read_json": FILES.__getitem__,
    }
    return Scope(**{**values, **overrides})


def get(reference: str):
    return {"Get": reference}


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("Parameters.Threshold", 6.0),
        ("Parameters.Enabled", True),
        ("Execution.PipelineExecutionId", "abc123def456"),
        ("Execution.PipelineName", "p"),
        ("Execution.PipelineArn", "arn:aws:sagemaker:eu-west-1:1:pipeline/p"),
        ("Execution.StartDateTime", "2024-05-01T12:00:00.000Z"),
        (
            "Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri",
            "s3://b/run/Preprocess/train",
        ),
        (
            'Steps.Preprocess.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri',
            "s3://b/run/Preprocess/train",
        ),
        ("Steps.Train.ModelArtifacts.S3ModelArtifacts", "s3://b/model.tar.gz"),
        ("Steps.TuneModel.BestTrainingJob.TrainingJobName", "job-002"),
        ("Steps.TuneModel.TrainingJobSummaries[1].TrainingJobName", "job-001"),
        ("Steps.TuneModel.TrainingJobSummaries[-1].TrainingJobName", "job-001"),
        ("Steps.Model.ModelName", "m-1"),
        ("Steps.Transform.TransformOutput.S3OutputPath", "s3://b/out"),
        ("Steps.Resolve.OutputParameters['transform_uri']", "s3://b/t.json"),
    ],
)
def test_get_reads_parameters_execution_variables_and_step_properties(reference, expected):
    assert resolve(get(reference), scope()) == expected


def test_current_date_time_is_now_in_iso_8601_utc():
    value = resolve(get("Execution.CurrentDateTime"), scope())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value)


def test_job_name_variables_exist_only_inside_their_job():
    inside = scope(job_variables={"ProcessingJobName": "pipelines-x-Step-1"})
    assert resolve(get("Execution.ProcessingJobName"), inside) == "pipelines-x-Step-1"
    with pytest.raises(ExpressionError, match="ProcessingJobName only inside"):
        resolve(get("Execution.ProcessingJobName"), scope())


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("Parameters.Missing", "no parameter 'Missing' is declared"),
        ("Steps.Evaluate.ProcessingJobName", "step 'Evaluate' has not succeeded"),
        (
            "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri",
            r"'ProcessingOutputConfig.Outputs' has no element named 'test'",
        ),
        ("Steps.Train.ModelArtifacts.S3Uri", r"'ModelArtifacts' has no field 'S3Uri'"),
        ("Steps.TuneModel.TrainingJobSummaries[5].TrainingJobName", r"has no element \[5\]"),
        ("Steps.Train.ModelArtifacts[0]", r"has no element \[0\]"),
        ("Steps.Train.ModelArtifacts S3ModelArtifacts", "cannot parse the path at .* S3Model"),
        ("Nothing.Here", "expected Parameters"),
    ],
)
def test_bad_references_name_the_expression_and_the_problem(reference, message):
    with pytest.raises(ExpressionError, match=message) as error:
        resolve(get(reference), scope())
    assert reference.split(".")[0] in str(error.value)


def test_join_writes_values_as_text_and_nests():
    join = {
        "Std:Join": {
            "On": "/",
            "Values": [
                "s3://b",
                get("Execution.PipelineExecutionId"),
                get("Parameters.Threshold"),
                get("Parameters.Count"),
                get("Parameters.Enabled"),
                {"Std:Join": {"On": "-", "Values": ["a", get("Steps.Model.ModelName")]}},
            ],
        }
    }
    assert resolve(join, scope()) == "s3://b/abc123def456/6.0/3/true/a-m-1"


def test_join_refuses_values_without_a_text_form():
    with pytest.raises(ExpressionError, match="cannot turn"):
        resolve({"Std:Join": {"On": "", "Values": [get("Steps.Model")]}}, scope())


def test_json_get_reads_a_property_file_from_the_steps_output():
    report = {"Get": "Steps.Preprocess.PropertyFiles.Report"}
    value = {"Std:JsonGet": {"PropertyFile": report, "Path": "metrics.mse.value"}}
    assert resolve(value, scope()) == 4.5
    listed = {"Std:JsonGet": {"PropertyFile": report, "Path": "n[1]"}}
    assert resolve(listed, scope()) == 7


def test_json_get_also_reads_an_s3_uri():
    uri = {"Std:Join": {"On": "/", "Values": ["s3://b/run/Preprocess/report", "report.json"]}}
    value = {"Std:JsonGet": {"S3Uri": uri, "Path": "metrics.mse.value"}}
    assert resolve(value, scope()) == 4.5


def test_json_get_errors_name_the_file_and_path():
    report = {"Get": "Steps.Preprocess.PropertyFiles.Report"}
    with pytest.raises(ExpressionError, match=r"metrics\.rmse\.value in s3://b/run/Preprocess"):
        resolve({"Std:JsonGet": {"PropertyFile": report, "Path": "metrics.rmse.value"}}, scope())
    other = {"Get": "Steps.Preprocess.PropertyFiles.Other"}
    with pytest.raises(ExpressionError, match="declares no property file 'Other'"):
        resolve({"Std:JsonGet": {"PropertyFile": other, "Path": "x"}}, scope())


def test_resolve_keeps_literals_and_structure():
    value = {"A": [1, "x", {"B": get("Parameters.Url")}], "C": None, "D": {"Get": 1, "E": 2}}
    expected = {"A": [1, "x", {"B": "s3://b/data/"}], "C": None, "D": {"Get": 1, "E": 2}}
    assert resolve(value, scope()) == expected


def test_referenced_steps_finds_properties_and_property_files():
    value = {
        "x": get("Steps.Preprocess.ProcessingJobName"),
        "y": [
            {"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.R"), "Path": "a"}}
        ],
        "z": get("Parameters.Url"),
    }
    assert referenced_steps(value) == {"Preprocess", "Evaluate"}


def binary(kind, left, right):
    return {"Type": kind, "LeftValue": left, "RightValue": right}


REPORT = {"Get": "Steps.Preprocess.PropertyFiles.Report"}
MSE = {"Std:JsonGet": {"PropertyFile": REPORT, "Path": "metrics.mse.value"}}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (binary("LessThanOrEqualTo", MSE, get("Parameters.Threshold")), True),
        (binary("LessThan", MSE, 4.5), False),
        (binary("GreaterThan", MSE, 4), True),
        (binary("GreaterThanOrEqualTo", MSE, 4.5), True),
        (binary("Equals", get("Parameters.Enabled"), True), True),
        (binary("Equals", get("Parameters.Url"), "s3://b/other/"), False),
        (binary("Equals", get("Parameters.Count"), 3.0), True),
        ({"Type": "In", "QueryValue": get("Parameters.Count"), "Values": [1, 3]}, True),
        ({"Type": "Not", "Condition": binary("GreaterThan", MSE, 4)}, False),
        ({"Type": "Or", "Conditions": [binary("LessThan", MSE, 1), binary("Equals", 1, 1)]}, True),
    ],
)
def test_conditions(condition, expected):
    assert condition_holds(condition, scope()) is expected


def test_conditions_refuse_mismatched_types_and_unknown_kinds():
    with pytest.raises(ExpressionError, match="cannot compare 'a'"):
        condition_holds(binary("GreaterThan", "a", 1), scope())
    with pytest.raises(ExpressionError, match="cannot compare True"):
        condition_holds(binary("GreaterThan", True, False), scope())
    with pytest.raises(ExpressionError, match="'Between' is not one of"):
        condition_holds({"Type": "Between"}, scope())


DECLARED = [
    {"Name": "Url", "Type": "String", "DefaultValue": "s3://b/data/"},
    {"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0},
    {"Name": "Count", "Type": "Integer", "DefaultValue": 3},
    {"Name": "Enabled", "Type": "Boolean", "DefaultValue": False},
    {
        "Name": "Status",
        "Type": "String",
        "DefaultValue": "Pending",
        "EnumValues": ["Pending", "Approved"],
    },
]


def test_parameters_take_defaults_and_typed_overrides_as_the_api_passes_them():
    defaults = parameter_values(DECLARED, None)
    assert defaults == {p["Name"]: p["DefaultValue"] for p in DECLARED}
    overrides = {"Threshold": "4.5", "Count": "7", "Enabled": "TRUE", "Status": "Approved"}
    values = parameter_values(DECLARED, overrides)
    assert values["Threshold"] == 4.5 and values["Count"] == 7 and values["Enabled"] is True
    assert parameter_values(DECLARED, {"Threshold": 5, "Count": 8.0})["Count"] == 8


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "1"}, "parameter.*Nope not declared"),
        ({"Threshold": "six"}, r"Threshold \(Float\): 'six' is not a valid float"),
        ({"Threshold": True}, "is not a valid float"),
        ({"Count": "2.5"}, "is not a valid integer"),
        ({"Enabled": "yes"}, "is not a valid boolean"),
        ({"Url": 3}, "is not a valid string"),
        ({"Status": "Rejected"}, "not one of"),
    ],
)
def test_bad_parameter_overrides_are_refused(overrides, message):
    with pytest.raises(ParameterError, match=message):
        parameter_values(DECLARED, overrides)


def test_a_parameter_without_default_needs_a_value():
    with pytest.raises(ParameterError, match="Url .* has no default"):
        parameter_values([{"Name": "Url", "Type": "String"}], {})


def test_lookup_selects_list_elements_by_any_name_field():
    channels = {"Channels": [{"ChannelName": "train", "S3Uri": "a"}, {"ChannelName": "val"}]}
    assert lookup(channels, "Channels['train'].S3Uri", where="test") == "a"
