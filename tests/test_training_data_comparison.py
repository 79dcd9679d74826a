"""Issue 11.6: new training data compared with the previous approved version's training data.

The rendered step, the script run with the definition's own arguments on real data, the model
resolver's look-up of the previous version (moto) and the registered-version e-mail.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline_scripts.api_model import constraint_errors, member_shape
from pipeline_scripts.config import load_config
from pipeline_scripts.render import render
from pipeline_scripts.training_pipeline import COMPARISON_STEP
from tests.conftest import all_steps
from tests.test_pipeline_lambdas import GROUP, _register, aws, model_resolver, sm  # noqa: F401
from tests.test_step_contracts import DEV_ENV, run_processing

FIND_STEP = "FindPreviousTrainingData"
METADATA_SHAPE = member_shape("CreateModelPackage", "CustomerMetadataProperties")


@pytest.fixture(scope="module")
def definitions():
    config = load_config(DEV_ENV)
    env = config.env
    rendered = {p.name: json.loads(p.definition) for p in render(config).pipelines}
    return config, [rendered[env.pipeline_train], rendered[env.pipeline_trainwhpo]]


def _step(definition: dict, name: str) -> dict:
    return next(s for s in all_steps(definition) if s["Name"] == name)


def test_both_training_pipelines_compare_after_the_baseline_and_register_the_findings(
    definitions,
):
    config, trainings = definitions
    for definition in trainings:
        find = _step(definition, FIND_STEP)
        assert find["Type"] == "Lambda"
        assert find["Arguments"]["action"] == "previous_training_data"
        assert find["Arguments"]["model_package_group_name"] == config.env.model_package_group_name
        # The fallback is the new baseline: the Lambda runs after DataQualityBaseline.
        assert "Steps.DataQualityBaseline." in find["Arguments"]["fallback_uri"]["Get"]

        arguments = _step(definition, COMPARISON_STEP)["Arguments"]
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in arguments["ProcessingInputs"]}
        # The data the model is fitted on (training data + labelled batches), target included.
        training = "Steps.JoinLabelledBatches.ProcessingOutputConfig.Outputs['training']"
        assert inputs["data"] == {"Get": f"{training}.S3Output.S3Uri"}
        assert inputs["previous"] == {
            "Get": f"Steps.{FIND_STEP}.OutputParameters['previous_profile_uri']"
        }
        args = arguments["AppSpecification"]["ContainerArguments"]
        assert args[args.index("--previous-version") + 1] == {
            "Get": f"Steps.{FIND_STEP}.OutputParameters['previous_version']"
        }
        assert args[args.index("--target") + 1] == config.settings.preprocessing.target
        assert "--data-version" in args  # a new data version is a step-cache miss

        metadata = _step(definition, "RegisterModel")["Arguments"]["CustomerMetadataProperties"]
        summary = metadata["training_data_comparison"]["Std:JsonGet"]
        assert summary["Path"] == "summary"
        assert summary["PropertyFile"] == {
            "Get": f"Steps.{COMPARISON_STEP}.PropertyFiles.TrainingDataComparison"
        }
        assert metadata["training_data_comparison_uri"]["Std:Join"]["Values"][1] == (
            "comparison.json"
        )
        assert COMPARISON_STEP in metadata["training_data_profile_uri"]["Get"]
        # The resolver reads the profile back under the same key.
        assert model_resolver.PROFILE_KEY in metadata


def _run(definitions, tmp_path, data, previous, version: str):
    """The step as the definition runs it, the Lambda's previous_version filled in."""
    _, (training, _) = definitions
    definition = copy.deepcopy(training)
    args = _step(definition, COMPARISON_STEP)["Arguments"]["AppSpecification"]
    args["ContainerArguments"][args["ContainerArguments"].index("--previous-version") + 1] = version
    job, result = run_processing(
        definition, COMPARISON_STEP, tmp_path, {"data": data, "previous": previous}
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((job.output("comparison") / "comparison.json").read_text())
    assert constraint_errors({"training_data_comparison": report["summary"]}, METADATA_SHAPE) == []
    return job, report


@pytest.fixture(scope="module")
def first(definitions, tmp_path_factory):
    """Version 1: nothing approved yet; its profile is what version 2 is compared with."""
    from tests.conftest import SAMPLE_TRAIN_CSV, SHARED_DIR

    real = SHARED_DIR / "data" / "abalone.csv"
    data = real if real.exists() else SAMPLE_TRAIN_CSV
    tmp = tmp_path_factory.mktemp("first")
    # With nothing approved the Lambda passes the new baseline: any folder is ignored.
    job, report = _run(definitions, tmp, data, data, "none")
    return data, job, report


@pytest.mark.e2e
def test_first_version_says_there_is_nothing_to_compare(first):
    data, job, report = first
    assert report["previous_version"] == "none" and report["finding_count"] == 0
    assert "nothing to compare" in report["summary"]
    profile = json.loads((job.output("profile") / "statistics.json").read_text())
    names = [f["name"] for f in profile["features"]]
    assert names == list(pd.read_csv(data, nrows=0).columns)  # the target is profiled too
    assert (job.output("profile") / "constraints.json").exists()


@pytest.mark.e2e
def test_the_same_data_has_no_findings(definitions, first, tmp_path):
    data, job, _ = first
    _, report = _run(definitions, tmp_path, data, job.output("profile"), "1")
    rows = len(pd.read_csv(data))
    assert report["finding_count"] == 0, report["findings"]
    assert report["summary"] == f"training data vs version 1: no findings. rows {rows} to {rows}"


@pytest.mark.e2e
def test_shifted_training_data_yields_findings_target_first(definitions, first, tmp_path):
    data, job, _ = first
    shifted = pd.read_csv(data)
    rows = len(shifted)
    shifted["rings"] = shifted["rings"] + 3  # a shifted label distribution
    shifted["shell_weight"] = shifted["shell_weight"] * 1.5
    shifted = shifted.iloc[: len(shifted) // 2]
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)
    _, report = _run(definitions, tmp_path / "run", path, job.output("profile"), "1")
    assert report["finding_count"] >= 2
    assert report["findings"][0].startswith("target rings mean ")
    assert any(f.startswith("shell_weight mean ") for f in report["findings"])
    assert report["summary"].startswith("training data vs version 1: ")
    assert report["summary"].endswith(f"rows {rows} to {len(shifted)}")
    assert report["rows"] == {"previous": rows, "new": len(shifted)}


# --------------------------------------------------------------------------- the look-up


def _previous(fallback="s3://bucket/new/baseline"):
    return model_resolver.handler(
        {
            "action": "previous_training_data",
            "model_package_group_name": GROUP,
            "fallback_uri": fallback,
        },
        None,
    )


def test_no_group_or_nothing_approved_is_the_first_version(aws, sm):  # noqa: F811
    result = _previous()
    assert result["previous_version"] == "none"
    assert result["previous_profile_uri"] == "s3://bucket/new/baseline"
    _register(sm, "v1")  # PendingManualApproval only
    assert _previous()["previous_version"] == "none"


def test_newest_approved_version_gives_its_profile_or_its_baseline_folder(sm):  # noqa: F811
    _register(sm, "v1", status="Approved")  # before profiles existed: its baseline folder
    assert _previous() == {
        "previous_version": "1",
        "previous_profile_uri": f"s3://mlops-artifacts/{GROUP}/v1/baseline",
        "message": f"comparing with version 1: s3://mlops-artifacts/{GROUP}/v1/baseline",
    }
    profile = "s3://mlops-artifacts/run2/CompareTrainingData/profile"
    _register(
        sm,
        "v2",
        status="Approved",
        CustomerMetadataProperties={model_resolver.PROFILE_KEY: profile},
    )
    _register(sm, "v3")  # pending: not the previous approved version
    result = _previous()
    assert (result["previous_version"], result["previous_profile_uri"]) == ("2", profile)


# --------------------------------------------------------------------------- the e-mail


def test_registered_version_email_shows_the_findings():
    from tests.test_pipeline_lambdas import _notifier

    notifier = _notifier()
    path = Path(__file__).parent / "events" / "model_package_registered_pending.json"
    event = json.loads(path.read_text())
    summary = "training data vs version 3: 1 finding: target rings mean 9.9 to 13 +0.92 sd"
    event["detail"]["CustomerMetadataProperties"] = {
        "training_data_comparison": summary,
        "training_data_comparison_uri": "s3://b/p/comparison/comparison.json",
    }
    config = notifier.load_config(None, None)
    body = notifier.build_notification(event, config).body
    assert re.search(rf"^Training data vs previous: +{re.escape(summary)}$", body, re.M), body
    assert "s3://b/p/comparison/comparison.json" in body


@pytest.mark.e2e
def test_a_version_without_a_training_data_profile_is_compared_without_its_target(
    definitions, first, tmp_path
):
    """Versions registered before this step give their data-quality baseline (features only):
    the features are compared, the target is named as not compared, no false finding."""
    data, job, _ = first
    previous = tmp_path / "previous"
    previous.mkdir()
    for name in ("statistics.json", "constraints.json"):
        document = json.loads((job.output("profile") / name).read_text())
        document["features"] = [f for f in document["features"] if f["name"] != "rings"]
        (previous / name).write_text(json.dumps(document))
    _, report = _run(definitions, tmp_path / "run", data, previous, "4")
    assert report["findings"] == ["target rings not compared: version 4 has no profile of it"]
    assert report["summary"] == (
        "training data vs version 4: 1 finding: target rings not compared: version 4 has no "
        "profile of it"
    )


def test_the_register_step_email_shows_the_registered_versions_findings(sm):  # noqa: F811
    """The registration e-mail is the RegisterModel step's (the model-package rule sends only
    approvals): the notifier reads the findings from the version the step registered."""
    from tests.test_pipeline_lambdas import _notifier

    notifier = _notifier()
    summary = "training data vs version 1: no findings. rows 4177 to 4177"
    uri = "s3://b/p/CompareTrainingData/comparison/comparison.json"
    arn = _register(
        sm,
        "v2",
        CustomerMetadataProperties={
            "training_data_comparison": summary,
            "training_data_comparison_uri": uri,
        },
    )
    path = Path(__file__).parent / "events" / "pipeline_step_succeeded_register_model.json"
    event = json.loads(path.read_text())
    event["detail"]["metadata"]["registerModel"]["arn"] = arn
    config = notifier.load_config(None, json.dumps(notifier.KNOWN_STATUSES))
    body = notifier.build_notification(event, config).body
    assert re.search(rf"^Training data vs previous: +{re.escape(summary)}$", body, re.M), body
    assert uri in body
    # A version it cannot read: the e-mail goes out without the rows.
    event["detail"]["metadata"]["registerModel"]["arn"] = arn.replace("/1", "/99")
    assert "Training data" not in notifier.build_notification(event, config).body
