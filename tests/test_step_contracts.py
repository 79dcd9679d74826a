"""The rendered definitions and the step scripts agree, checked by running the scripts on real
data with exactly the container arguments, input/output locations, hyperparameters, metric
regex and property files that the definitions give SageMaker.

Data flows between steps as the definitions wire it (see the DAG tests); the container root
/opt/ml is mapped to a temporary directory. Batch transform itself is SageMaker's serving
container, so the test reproduces its documented CSV behaviour (input filter $[1:], join with
the input, output filter $[0,-1]) with the same xgboost library.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost

from pipeline_scripts import xgboost_image
from pipeline_scripts.config import load_config
from pipeline_scripts.render import render
from tests.conftest import REPO_ROOT, all_steps, run_step_script

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
DRIFT_BATCH = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
CONTAINER_ROOT = "/opt/ml/processing"


class Job:
    """One step's sandbox: <root>/input/<name>/ and <root>/output/<name>/."""

    def __init__(self, root: Path, step: dict):
        self.root, self.step = root, step

    def output(self, name: str) -> Path:
        return self.root / "output" / name


def resolve(value, parameters: dict):
    """A ContainerArgument: literal, a parameter, or a Std:Join of parameters."""
    if isinstance(value, str):
        return value.replace(CONTAINER_ROOT, "{root}")
    if "Get" in value and value["Get"].startswith("Steps."):
        # ResolveChampion's outputs as for a champion with attributions (the model card test).
        for name, sample in (("champion_version", "1"), ("champion_attributions", "yes")):
            if value["Get"].endswith(f"['{name}']"):
                return sample
        return "lambda-output-in-test"  # e.g. the data version recorded for lineage
    if "Get" in value and value["Get"].startswith("Execution."):
        return "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/a1b2c3d4e5f6"
    if "Get" in value:
        return str(parameters[value["Get"].removeprefix("Parameters.")])
    join = value["Std:Join"]
    return join["On"].join(resolve(v, parameters) for v in join["Values"])


def run_processing(definition: dict, name: str, tmp: Path, inputs: dict[str, Path]):
    """Runs the step's script as its definition says; `inputs` maps input names to sources."""
    step = next(s for s in all_steps(definition) if s["Name"] == name)
    arguments = step["Arguments"]
    job = Job(tmp / name, step)
    declared_inputs = {i["InputName"] for i in arguments["ProcessingInputs"]} - {"code"}
    assert declared_inputs == set(inputs), f"{name}: the test wires {set(inputs)}"
    for input_name, source in inputs.items():
        target = job.root / "input" / input_name
        target.mkdir(parents=True)
        for file in source.iterdir() if source.is_dir() else [source]:
            shutil.copy(file, target)
    for output in arguments["ProcessingOutputConfig"]["Outputs"]:
        assert output["S3Output"]["LocalPath"] == f"{CONTAINER_ROOT}/output/{output['OutputName']}"
        job.output(output["OutputName"]).mkdir(parents=True)

    entrypoint = arguments["AppSpecification"]["ContainerEntrypoint"]
    assert entrypoint[0] == "python3"
    script = REPO_ROOT / "scripts" / Path(entrypoint[1]).name
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    container_args = [
        resolve(a, parameters).format(root=job.root)
        for a in arguments["AppSpecification"].get("ContainerArguments", [])
    ]
    result = run_step_script(script.name, *container_args, "--base-dir", job.root, expect_ok=False)
    for output in arguments["ProcessingOutputConfig"]["Outputs"]:
        if result.returncode == 0:
            assert any(job.output(output["OutputName"]).iterdir()), f"{name}: empty output"
    return job, result


def json_get(definition: dict, step_name: str, property_file: str, path: str, job: Job):
    """Evaluates a Std:JsonGet against the file the step really wrote."""
    step = next(s for s in all_steps(definition) if s["Name"] == step_name)
    spec = next(p for p in step["PropertyFiles"] if p["PropertyFileName"] == property_file)
    document = json.loads((job.output(spec["OutputName"]) / spec["FilePath"]).read_text())
    for key in path.split("."):
        document = document[key]
    return document


def json_gets(definition: dict) -> list[dict]:
    found = []

    def walk(value):
        if isinstance(value, dict):
            if "Std:JsonGet" in value:
                found.append(value["Std:JsonGet"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(definition["Steps"])
    return found


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Runs the training then the inference steps once; the tests inspect the results."""
    from tests.conftest import SAMPLE_TRAIN_CSV, SHARED_DIR

    real = SHARED_DIR / "data" / "abalone.csv"
    training_csv = real if real.exists() else SAMPLE_TRAIN_CSV
    config = load_config(DEV_ENV)
    env = config.env
    definitions = {p.name: json.loads(p.definition) for p in render(config).pipelines}
    training, inference = definitions[env.pipeline_train], definitions[env.pipeline_inf]
    tmp = tmp_path_factory.mktemp("loop")
    jobs = {}

    # Issue 10.4: the training data joined with an empty labelled set is the training data.
    snapshot = tmp / "snapshot"
    snapshot.mkdir()
    manifest = {"labelled_batches": [], "summary": "batches=0 sha256=e3b0c44298fc1c14"}
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    jobs["JoinLabelledBatches"], result = run_processing(
        training, "JoinLabelledBatches", tmp, {"train": training_csv, "snapshot": snapshot}
    )
    assert result.returncode == 0, result.stderr
    joined = jobs["JoinLabelledBatches"].output("training") / training_csv.name
    assert joined.read_bytes() == training_csv.read_bytes()
    jobs["Preprocess"], result = run_processing(training, "Preprocess", tmp, {"data": joined})
    assert result.returncode == 0, result.stderr
    prep = jobs["Preprocess"]
    jobs["DataQualityBaseline"], result = run_processing(
        training, "DataQualityBaseline", tmp, {"data": prep.output("baseline")}
    )
    assert result.returncode == 0, result.stderr
    # Against the new baseline (features only), as for a version registered before training-data
    # profiles existed; tests/test_training_data_comparison.py covers the other cases.
    jobs["CompareTrainingData"], result = run_processing(
        training,
        "CompareTrainingData",
        tmp,
        {"data": training_csv, "previous": jobs["DataQualityBaseline"].output("data_quality")},
    )
    assert result.returncode == 0, result.stderr

    train_step = next(s for s in training["Steps"] if s["Name"] == "TrainModel")
    model_dir, train_log = _train(train_step, prep, tmp)
    model_tar = tmp / "model.tar.gz"
    with tarfile.open(model_tar, "w:gz") as tar:
        for file in model_dir.iterdir():
            tar.add(file, arcname=file.name)

    jobs["EvaluateModel"], result = run_processing(
        training,
        "EvaluateModel",
        tmp,
        {
            "model": model_tar,
            "test": prep.output("test"),
            "train": prep.output("train"),
            # The champion path as the definition wires it (the Lambda's outputs: here the
            # same model and its own transform, as when the champion is this very model).
            "test_raw": prep.output("test_raw"),
            "champion_model": model_tar,
            "champion_transform": prep.output("transform") / "transform.json",
            # Issue 10.5: the labelled rows JoinLabelledBatches held out (none here: its
            # marker file) and the challenger's transform to score them with.
            "recent": jobs["JoinLabelledBatches"].output("recent"),
            "transform": prep.output("transform"),
        },
    )
    assert result.returncode == 0, result.stderr
    evaluation = jobs["EvaluateModel"].output("evaluation") / "evaluation.json"
    report = json.loads(evaluation.read_text())
    assert report["recent"] == {"item_count": 0}
    # The same model through its own transform on the raw rows scores exactly as on test.csv.
    assert report["champion"]["item_count"] == report["dataset"]["item_count"]
    assert report["champion"]["regression_metrics"]["mse"]["value"] == pytest.approx(
        report["regression_metrics"]["mse"]["value"], rel=1e-9
    )

    transform_json = prep.output("transform") / "transform.json"
    jobs["ExplainModel"], result = run_processing(
        training,
        "ExplainModel",
        tmp,
        {"model": model_tar, "transform": transform_json, "train": prep.output("train"),
         "test": prep.output("test")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    attributions = jobs["ExplainModel"].output("explanations") / "attributions.json"
    evaluation = jobs["EvaluateModel"].output("evaluation") / "evaluation.json"
    jobs["ModelCard"], result = run_processing(
        training,
        "ModelCard",
        tmp,
        {
            "evaluation": evaluation,
            "statistics": jobs["DataQualityBaseline"].output("data_quality") / "statistics.json",
            "attributions": attributions,
            # The champion's attributions (its metrics are evaluation.json's "champion" block,
            # here the same model's): the card must call them "same".
            "champion_attributions": attributions,
        },
    )
    assert result.returncode == 0, result.stderr
    jobs["PreprocessBatch"], result = run_processing(
        inference, "PreprocessBatch", tmp, {"data": DRIFT_BATCH, "transform": transform_json}
    )
    assert result.returncode == 0, result.stderr
    jobs["ExplainBatch"], result = run_processing(
        inference,
        "ExplainBatch",
        tmp,
        {"model": model_tar, "transform": transform_json, "baseline": attributions,
         "batch": jobs["PreprocessBatch"].output("transform_input")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    predictions = _batch_transform(inference, model_dir, jobs["PreprocessBatch"], tmp)

    baseline_dir = jobs["DataQualityBaseline"].output("data_quality")
    jobs["DataQualityCheck"], result = run_processing(
        inference,
        "DataQualityCheck",
        tmp,
        {
            "data": jobs["PreprocessBatch"].output("features"),
            "baseline_statistics": baseline_dir / "statistics.json",
            "baseline_constraints": baseline_dir / "constraints.json",
        },
    )
    assert result.returncode == 0, result.stderr
    jobs["ModelQualityCheck"], model_quality = run_processing(
        inference,
        "ModelQualityCheck",
        tmp,
        {
            "predictions": predictions,
            "ground_truth": jobs["PreprocessBatch"].output("ground_truth"),
            "data_quality": jobs["DataQualityCheck"].output("data_quality"),
        },
    )
    # Mode=evaluate: the same batch's labels arriving later, joined with its predictions.
    late = tmp / "late_labels" / "batch.labels.csv"
    late.parent.mkdir()
    shutil.copy(jobs["PreprocessBatch"].output("ground_truth") / "ground_truth.csv", late)
    jobs["EvaluateLateLabels"], result = run_processing(
        inference, "EvaluateLateLabels", tmp, {"predictions": predictions, "labels": late.parent}
    )
    assert result.returncode == 0, result.stderr
    return {
        "config": config,
        "definitions": definitions,
        "training_hpo": definitions[env.pipeline_trainwhpo],
        "jobs": jobs,
        "train_log": train_log,
        "train_step": train_step,
        "model_quality": model_quality,
    }


def _train(step: dict, prep: Job, tmp: Path) -> tuple[Path, str]:
    """Script mode as the framework image runs it: every user hyperparameter (JSON-decoded)
    becomes a --name value flag; channels and the model dir arrive in SM_* variables."""
    arguments = step["Arguments"]
    hyperparameters = {k: json.loads(v) for k, v in arguments["HyperParameters"].items()}
    entry = hyperparameters.pop("sagemaker_program")
    submit = hyperparameters.pop("sagemaker_submit_directory")
    assert submit == "/opt/ml/input/data/code/sourcedir.tar.gz"
    hyperparameters = {k: v for k, v in hyperparameters.items() if not k.startswith("sagemaker_")}
    channels = {c["ChannelName"]: c for c in arguments["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "code"}
    # The code channel holds the archive train.py comes from (scripts/ here).
    code_uri = channels["code"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert code_uri.endswith("/sourcedir.tar.gz")
    model_dir = tmp / "model"
    model_dir.mkdir()
    env = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNEL_TRAIN": str(prep.output("train")),
        "SM_CHANNEL_VALIDATION": str(prep.output("validation")),
    }
    flags = [part for k, v in hyperparameters.items() for part in (f"--{k}", str(v))]
    result = run_step_script(entry, *flags, env=env, expect_ok=False)
    assert result.returncode == 0, result.stderr
    return model_dir, result.stdout + result.stderr


def _batch_transform(definition: dict, model_dir: Path, batch: Job, tmp: Path) -> Path:
    step = next(s for s in definition["Steps"] if s["Name"] == "BatchTransform")
    processing = step["Arguments"]["DataProcessing"]
    assert processing == {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}
    assert step["Arguments"]["TransformInput"]["SplitType"] == "Line"
    out_dir = tmp / "BatchTransform"
    out_dir.mkdir()
    booster = xgboost.Booster(model_file=str(model_dir / "xgboost-model"))
    for source in batch.output("transform_input").iterdir():
        rows = np.loadtxt(source, delimiter=",", ndmin=2)
        scores = booster.predict(xgboost.DMatrix(rows[:, 1:]))
        lines = [f"{int(r[0])},{p}" for r, p in zip(rows, scores, strict=True)]
        (out_dir / f"{source.name}.out").write_text("\n".join(lines) + "\n")
    return out_dir


@pytest.mark.e2e
def test_builtin_xgboost_metric_reads_what_train_py_logs(loop):
    """SageMaker rejects MetricDefinitions on its XGBoost image and scrapes the image's own
    validation:rmse from the log as it records it (tabs as #011); the tuning objective is it."""
    arguments = loop["train_step"]["Arguments"]
    assert "MetricDefinitions" not in arguments["AlgorithmSpecification"]
    assert xgboost_image.is_xgboost_image(arguments["AlgorithmSpecification"]["TrainingImage"])
    tuning = next(s for s in loop["training_hpo"]["Steps"] if s["Type"] == "Tuning")["Arguments"]
    objective = tuning["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]
    assert objective == {"MetricName": xgboost_image.VALIDATION_RMSE, "Type": "Minimize"}
    assert "MetricDefinitions" not in tuning["TrainingJobDefinition"]["AlgorithmSpecification"]

    regex = xgboost_image.BUILTIN_METRICS[objective["MetricName"]]
    logged = xgboost_image.as_logged(loop["train_log"])
    values = [float(v) for v in re.findall(regex, logged)]
    assert len(values) == int(json.loads(arguments["HyperParameters"]["num_round"]))
    assert values[-1] < values[0]
    assert re.findall(regex, loop["train_log"]) == []  # only the recorded form matches


@pytest.mark.e2e
def test_every_json_get_resolves_against_what_the_scripts_wrote(loop):
    jobs, checked = loop["jobs"], 0
    for definition in loop["definitions"].values():
        for expression in json_gets(definition):
            step_name = expression["PropertyFile"]["Get"].split(".")[1]
            file_name = expression["PropertyFile"]["Get"].split(".")[-1]
            value = json_get(definition, step_name, file_name, expression["Path"], jobs[step_name])
            assert isinstance(value, int | float | str) and not isinstance(value, bool)
            checked += 1
    assert checked >= 6


@pytest.mark.e2e
def test_trained_model_passes_the_gate_and_beats_the_mean_predictor(loop):
    evaluation = loop["jobs"]["EvaluateModel"].output("evaluation") / "evaluation.json"
    report = json.loads(evaluation.read_text())
    mse = report["regression_metrics"]["mse"]["value"]
    assert mse <= loop["config"].env.accuracy_mse_threshold
    assert (
        report["baseline_mean_predictor"]["mse"]["value"]
        > loop["config"].env.accuracy_mse_threshold
    )


@pytest.mark.e2e
def test_drifted_batch_fails_model_quality_with_the_reason_and_reports_drift(loop):
    """The check measures the failure (exit 0, status failed) and gives the reason that the
    Fail step ModelQualityBelowThreshold, the one that triggers retraining, reports."""
    result = loop["model_quality"]
    assert result.returncode == 0
    statistics = loop["jobs"]["ModelQualityCheck"].output("model_quality") / "statistics.json"
    stats = json.loads(statistics.read_text())
    assert stats["status"] == "failed"
    reason = stats["reason"]
    threshold = loop["config"].env.accuracy_mse_threshold
    assert "MSE" in reason and f"{threshold:.2f}" in reason and "data quality" in reason
    summary = loop["jobs"]["DataQualityCheck"].output("data_quality") / "summary.json"
    assert json.loads(summary.read_text())["violation_count"] > 0


@pytest.mark.e2e
def test_explain_steps_compare_the_drifted_batch_with_the_recorded_baseline(loop):
    jobs = loop["jobs"]
    recorded = json.loads(
        (jobs["ExplainModel"].output("explanations") / "attributions.json").read_text()
    )
    batch = json.loads(
        (jobs["ExplainBatch"].output("explanations") / "attributions.json").read_text()
    )
    assert recorded["kind"] == "model" and batch["kind"] == "batch"
    assert batch["baseline"] == recorded["baseline"]  # reused, not recomputed
    # The drifted demo batch shifts shell_weight (README "Local runtime"): its attribution moves.
    assert batch["changes"]["shell_weight"]["verdict"] == "changed"


@pytest.mark.e2e
def test_model_card_step_renders_what_it_receives(loop):
    jobs, config = loop["jobs"], loop["config"]
    card = (jobs["ModelCard"].output("model_card") / "model_card.md").read_text()
    evaluation = json.loads(
        (jobs["EvaluateModel"].output("evaluation") / "evaluation.json").read_text()
    )
    mse = evaluation["regression_metrics"]["mse"]["value"]
    assert card.startswith(f"# Model card: {config.env.model_package_group_name} version (new)")
    assert f"| mse | {mse:.4g} |" in card and "| champion (version 1) | this version is |" in card
    assert "| same |" in card.split("## Metrics")[1]
    hyperparameters = config.settings.training.hyperparameters
    assert f"| max_depth | {hyperparameters.max_depth} |" in card
    assert "| shell_weight |" in card.split("## Explanations")[1]
    assert "- approval: PendingManualApproval at registration" in card
