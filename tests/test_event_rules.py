"""Event rules (events/*.json) against real SageMaker and S3 event shapes.

The fixtures in tests/events/ are real EventBridge events (shapes from the AWS documentation,
see tests/events/README.md) with the names of env_files/dev_env.tfvars. Each case below lists
EXACTLY the rules an event must reach, so every other rule must not match it: other
pipelines, statuses, step names, prefixes, buckets, model package groups, approval states.
Matching is moto's EventBridge pattern matcher.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from pipeline_scripts import event_rules
from pipeline_scripts.config import load_config
from pipeline_scripts.event_rules import EventRuleError, load_rules, matching_rules

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "events"
DEV = REPO_ROOT / "env_files" / "dev_env.tfvars"
# What the notifier receives: the event's own keys (so a raw event works too) plus "rule".
NOTIFIER_KEYS = ("detail-type", "source", "time", "region", "account", "detail")


@pytest.fixture(scope="module")
def config():
    return load_config(DEV)


@pytest.fixture(scope="module")
def rules(config):
    return load_rules(config)


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def changed(name: str, **detail) -> dict:
    """A fixture event with some detail fields replaced (a__b for nested field b of a)."""
    event = copy.deepcopy(fixture(name))
    for dotted, value in detail.items():
        *parents, last = dotted.split("__")
        node = event["detail"]
        for part in parents:
            node = node[part]
        node[last] = value
    return event


def retyped(name: str, detail_type: str) -> dict:
    event = fixture(name)
    event["detail-type"] = detail_type
    return event


ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/"
HPO_ARN = ARN + "training-hpo-pipeline-dev"
TRAIN_KEY = "pipeline_shared/batch-scoring/training/data/raw/"
INF_KEY = "pipeline_shared/batch-scoring/batch-scoring/data/raw/"
LABELS_KEY = "pipeline_shared/batch-scoring/labels/"

# (case id, event, the exact set of rules it reaches)
CASES = [
    # pipeline execution status changes: every status of the three pipelines, for the notifier
    ("training-execution-succeeded", fixture("pipeline_execution_succeeded"), {"pipeline_status"}),
    ("inference-execution-failed", fixture("pipeline_execution_failed"), {"pipeline_status"}),
    (
        "hpo-execution-executing",
        changed(
            "pipeline_execution_succeeded",
            pipelineArn=HPO_ARN,
            currentPipelineExecutionStatus="Executing",
        ),
        {"pipeline_status"},
    ),
    (
        "other-pipeline-execution",
        changed("pipeline_execution_failed", pipelineArn=ARN + "someone-elses-pipeline"),
        set(),
    ),
    (
        "same-name-other-account",
        changed(
            "pipeline_execution_failed",
            pipelineArn="arn:aws:sagemaker:eu-west-1:210987654321:pipeline/batch-inference-pipeline-dev",
        ),
        set(),
    ),
    # step status changes; only the inference pipeline's ModelQualityBelowThreshold Fail step
    # (a measured MSE above the threshold) retrains; a crash of ModelQualityCheck does not
    (
        "model-quality-failed",
        fixture("pipeline_step_failed_model_quality_gate"),
        {"pipeline_status", "model_quality_failed"},
    ),
    (  # labels that arrived later, judged and failed: retrains the same way
        "late-labels-below-threshold",
        changed("pipeline_step_failed_model_quality_gate", stepName="LateLabelsBelowThreshold"),
        {"pipeline_status", "model_quality_failed"},
    ),
    (  # the late-labels check itself failing (duplicate ids, no predictions): no retraining
        "late-labels-check-crashed",
        changed("pipeline_step_failed_model_quality_gate", stepName="EvaluateLateLabels"),
        {"pipeline_status"},
    ),
    (
        "model-quality-check-crashed",
        fixture("pipeline_step_failed_model_quality"),
        {"pipeline_status"},
    ),
    (
        "model-quality-succeeded",
        changed("pipeline_step_failed_model_quality_gate", currentStepStatus="Succeeded"),
        {"pipeline_status"},
    ),
    (
        "model-quality-executing",
        changed("pipeline_step_failed_model_quality_gate", currentStepStatus="Executing"),
        {"pipeline_status"},
    ),
    (
        "data-quality-check-failed",
        changed("pipeline_step_failed_model_quality_gate", stepName="DataQualityCheck"),
        {"pipeline_status"},
    ),
    (
        "model-quality-step-failed-in-training-pipeline",
        changed(
            "pipeline_step_failed_model_quality_gate", pipelineArn=ARN + "training-pipeline-dev"
        ),
        {"pipeline_status"},
    ),
    (
        "model-quality-failed-in-another-pipeline",
        changed(
            "pipeline_step_failed_model_quality_gate",
            pipelineArn=ARN + "batch-inference-pipeline-prod",
        ),
        set(),
    ),
    (
        "register-model-succeeded",
        fixture("pipeline_step_succeeded_register_model"),
        {"pipeline_status"},
    ),
    # model registry: only Approved versions of this group
    ("package-approved", fixture("registry_package_approved"), {"model_package_approved"}),
    ("package-pending", fixture("model_package_registered_pending"), set()),
    (
        "package-rejected",
        changed("registry_package_approved", ModelApprovalStatus="Rejected"),
        set(),
    ),
    (
        "other-group-approved",
        changed("registry_package_approved", ModelPackageGroupName="abalone-rings-prod"),
        set(),
    ),
    # S3: CSV files under each data prefix, at any depth, start the matching pipeline
    ("training-csv", fixture("s3_object_created_training"), {"training_data_created"}),
    (
        "training-csv-in-subfolder",
        changed("s3_object_created_training", object__key=TRAIN_KEY + "2025/06/part-1.csv"),
        {"training_data_created"},
    ),
    ("inference-csv", fixture("s3_object_created_inference"), {"inference_data_created"}),
    (
        "training-readme",
        changed("s3_object_created_training", object__key=TRAIN_KEY + "README.md"),
        set(),
    ),
    (
        "training-folder-marker",
        changed("s3_object_created_training", object__key=TRAIN_KEY + "new/", object__size=0),
        set(),
    ),
    (
        "sibling-prefix",
        changed(
            "s3_object_created_training",
            object__key="pipeline_shared/batch-scoring/training/data/raw2/x.csv",
        ),
        set(),
    ),
    (
        "pipeline-output-csv",
        changed(
            "s3_object_created_inference",
            object__key="pipeline_shared/batch-scoring/artifacts/batch-inference-pipeline-dev/"
            "q8w3e5r7t9y1/PreprocessBatch/features/features.csv",
        ),
        set(),
    ),
    (
        "other-bucket",
        changed(
            "s3_object_created_training", bucket__name="mlops-batch-inference-prod-345678901234"
        ),
        set(),
    ),
    ("object-deleted", retyped("s3_object_created_training", "Object Deleted"), set()),
    # Extensions the step scripts read (step_common.CSV_SUFFIXES). EventBridge's wildcard is
    # case-sensitive and one field's matchers are OR'ed, so "under the prefix AND ends with .csv
    # in any case" is a list of wildcards of the usual spellings ("Comparison operators for use
    # in event patterns in Amazon EventBridge", docs.aws.amazon.com/eventbridge/latest/
    # userguide/eb-create-pattern-operators.html); moto's matcher implements the same.
    *[
        (
            f"{which}-{suffix}",
            changed(f"s3_object_created_{which}", object__key=key + f"batch-7{suffix}"),
            {f"{which}_data_created"},
        )
        for which, key in [("training", TRAIN_KEY), ("inference", INF_KEY)]
        for suffix in (".CSV", ".csv.gz", ".CSV.GZ")
    ],
    (
        "inference-gz-not-csv",
        changed("s3_object_created_inference", object__key=INF_KEY + "batch.json.gz"),
        set(),
    ),
    # Labels that arrive later: <bucket_prefix>/labels/<batch id>.labels.csv only.
    (
        "labels-csv",
        changed("s3_object_created_inference", object__key=LABELS_KEY + "b1.labels.csv"),
        {"labels_created"},
    ),
    (
        "labels-other-csv",
        changed("s3_object_created_inference", object__key=LABELS_KEY + "b1.csv"),
        set(),
    ),
    (
        "inference-csv-backup",
        changed("s3_object_created_inference", object__key=INF_KEY + "batch.csv.bak"),
        set(),
    ),
]


@pytest.mark.parametrize(("event", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_event_reaches_exactly_the_expected_rules(rules, event, expected):
    assert {rule.name for rule in matching_rules(rules, event)} == expected


def test_every_rule_is_reached_by_a_case(rules):
    reached = {name for _, _, expected in CASES for name in expected}
    assert reached == set(rules)


def test_rules_start_the_intended_targets(rules):
    assert {name: rule.target for name, rule in rules.items()} == {
        "pipeline_status": "notifier",
        "model_package_approved": "notifier",
        "model_quality_failed": "retrain_gate",
        "training_data_created": "start_training",
        "inference_data_created": "dispatch_batch",
        "labels_created": "dispatch_batch",
    }


@pytest.mark.parametrize(
    "event",
    [c[1] for c in CASES if {"pipeline_status", "model_package_approved"} & c[2]],
    ids=[c[0] for c in CASES if {"pipeline_status", "model_package_approved"} & c[2]],
)
def test_notifier_receives_the_event_keys_plus_the_rule_name(rules, event):
    for rule in matching_rules(rules, event):
        if rule.target != "notifier":
            continue
        assert set(rule.input_transformer.input_paths) == set(NOTIFIER_KEYS)
        received = rule.target_input(event)
        assert received == {"rule": rule.name, **{key: event[key] for key in NOTIFIER_KEYS}}


def test_only_notifier_rules_transform_their_input(rules):
    for rule in rules.values():
        assert (rule.input_transformer is not None) == (rule.target == "notifier"), rule.name


# --------------------------------------------------------------------------- bad rule files


def write_rule(directory: Path, name: str, rule: dict | str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(rule if isinstance(rule, str) else json.dumps(rule))
    return path


GOOD = {
    "description": "d",
    "event_pattern": {"source": ["aws.s3"], "detail": {"bucket": {"name": ["${bucket_name}"]}}},
    "input_transformer": None,
    "target": "start_training",
}


@pytest.mark.parametrize(
    ("name", "rule", "expected"),
    [
        (
            "bad_json",
            '{"description": "d",\n "target": }',
            "line 2, column 12: expected valid JSON",
        ),
        ("missing_key", {k: v for k, v in GOOD.items() if k != "target"}, "expected the keys"),
        ("extra_key", {**GOOD, "targets": []}, "expected the keys"),
        ("bad_target", {**GOOD, "target": "start_everything"}, "'target': expected one of"),
        ("empty_pattern", {**GOOD, "event_pattern": {}}, "a non-empty JSON object"),
        (
            "unknown_placeholder",
            {**GOOD, "event_pattern": {"source": ["${bucket}"]}},
            "placeholder ${bucket}: expected one of",
        ),
        (
            "expression",
            {**GOOD, "event_pattern": {"source": ["${upper(bucket_name)}"]}},
            "placeholder ${upper(bucket_name)}",
        ),
        ("directive", {**GOOD, "description": "%{ if x }"}, "Terraform template syntax '%{'"),
        (
            "bad_transformer",
            {**GOOD, "input_transformer": {"input_paths": {}}},
            "'input_transformer': expected the keys input_paths, input_template",
        ),
        ("Bad-Name", GOOD, "expected a file name of lowercase letters"),
    ],
)
def test_bad_rule_file_is_rejected_naming_file_and_problem(config, tmp_path, name, rule, expected):
    path = write_rule(tmp_path / "events", name, rule)
    with pytest.raises(EventRuleError) as info:
        load_rules(config, path.parent)
    assert str(path) in str(info.value) and expected in str(info.value), str(info.value)


def test_value_that_json_would_need_to_escape_is_rejected(config, tmp_path):
    env = dataclasses.replace(config.env, bucket_name='bad"bucket')
    path = write_rule(tmp_path / "events", "rule", GOOD)
    with pytest.raises(EventRuleError, match="without quotes, backslashes"):
        load_rules(dataclasses.replace(config, env=env), path.parent)


def test_empty_rules_directory_is_rejected(config, tmp_path):
    with pytest.raises(EventRuleError, match="found none"):
        load_rules(config, tmp_path)


def test_input_transformer_problems_are_reported(rules):
    rule = rules["pipeline_status"]
    event = fixture("pipeline_execution_succeeded")
    del event["detail"]
    with pytest.raises(EventRuleError, match=r"input path \$.detail is not in the event"):
        rule.target_input(event)
    inside_string = event_rules.Rule(
        name="quoted",
        description="",
        event_pattern=rule.event_pattern,
        input_transformer=event_rules.InputTransformer({"s": "$.source"}, '{"x": "<s>"}'),
        target="notifier",
    )
    with pytest.raises(EventRuleError, match="not inside strings"):
        inside_string.target_input(fixture("pipeline_execution_succeeded"))
