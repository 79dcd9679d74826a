"""A catalogue of bad inputs and injected faults (issue 11), each with what should happen.

Most cases run the step scripts as the jobs run them (subprocesses on real files: fast); a few
run the whole local loop (`make demo --batch-data F`) and are marked e2e. Whatever happens,
nothing a user reads (a step's reason, an e-mail, summary.json, report.html) holds a
traceback: a bad batch is a failed step whose one-line reason names the file, the line or
column and what was expected, and the loop always writes summary.json and report.html.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest
import yaml

from tests.conftest import FAULTS_LOOP_GROUP, REPO_ROOT, put
from tests.conftest import run_step_script as run
from tests.test_step_scripts import last_line

TRAIN = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
BATCH = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
LINES = BATCH.read_text().splitlines()
HEADER, ROWS = LINES[0], LINES[1:41]  # 40 records keep every case fast
CLEAN = "\n".join([HEADER, *ROWS]) + "\n"
# A raw stack trace, in any language a user might meet one: Python's or a C++ library's.
TRACE = re.compile(r'Traceback \(most recent call last\)|File ".*", line \d+|\bstack trace\b')


def assert_readable(text: str) -> None:
    assert not TRACE.search(text), text


def with_cell(column: str, value: str, row: int = 0, text: str = CLEAN) -> str:
    """CLEAN with one cell replaced (row 0 is the first record, on line 2)."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    base = tmp_path_factory.mktemp("fit")
    put(base / "input" / "data" / TRAIN.name, TRAIN)
    run("preprocess.py", "--mode", "fit", "--base-dir", base)
    return base


def apply_batch(fitted, tmp_path, files, env=None):
    put(
        tmp_path / "input" / "transform" / "transform.json",
        fitted / "output" / "transform" / "transform.json",
    )
    for name, content in files.items():
        put(tmp_path / "input" / "data" / name, content)
    return run("preprocess.py", "--mode", "apply", "--base-dir", tmp_path, env=env, expect_ok=False)


def outputs(base):
    out = base / "output"
    return {
        name: (out / name).read_bytes()
        for name in ("transform_input/batch.csv", "features/features.csv")
    }


# --- batches: (files, what should happen) ---------------------------------------------------
# ("ok", None): same outputs as the clean batch; ("ok", warning): succeeds, warning on stderr;
# ("fail", fragments): exit 1, the last stderr line (the job's reason) holds every fragment.

BATCHES = {
    "clean": ({"b.csv": CLEAN}, "ok", None),
    # encodings
    "utf-8 with BOM": ({"b.csv": b"\xef\xbb\xbf" + CLEAN.encode()}, "ok", None),
    "windows line ends": ({"b.csv": CLEAN.replace("\n", "\r\n").encode()}, "ok", None),
    "latin-1": (
        {"b.csv": with_cell("sex", "\u00e9", row=2).encode("latin-1")},
        "fail",
        ["b.csv: line 4 is not UTF-8 text (byte 0xe9)", "CSV UTF-8"],
    ),
    "utf-16": ({"b.csv": CLEAN.encode("utf-16")}, "fail", ["b.csv: is UTF-16 text"]),
    # compression and extensions
    "csv.gz": ({"b.csv.gz": gzip.compress(CLEAN.encode())}, "ok", None),
    "upper-case .CSV": ({"b.CSV": CLEAN}, "ok", None),
    "gzip bytes named .csv": (
        {"b.csv": gzip.compress(CLEAN.encode())},
        "fail",
        ["b.csv: is gzip-compressed", ".csv.gz"],
    ),
    "broken .csv.gz": (
        {"b.csv.gz": gzip.compress(CLEAN.encode())[:-20]},
        "fail",
        ["b.csv.gz: not a readable gzip file"],
    ),
    # separators and layout
    "semicolons": (
        {"b.csv": CLEAN.replace(",", ";")},
        "fail",
        ["b.csv: required column 'sex' is missing", "header has sex;length"],
    ),
    "tabs": ({"b.csv": CLEAN.replace(",", "\t")}, "fail", ["b.csv: required column"]),
    "columns in another order": (
        {
            "b.csv": "\n".join(",".join(reversed(line.split(","))) for line in [HEADER, *ROWS])
            + "\n"
        },
        "ok",
        None,
    ),
    "duplicate header": (
        {"b.csv": CLEAN.replace("diameter", "length", 1)},
        "fail",
        ["b.csv: header has empty or repeated column names ['length']"],
    ),
    "empty file": ({"b.csv": ""}, "fail", ["b.csv: file is empty"]),
    "header only": ({"b.csv": HEADER + "\n"}, "fail", ["b.csv: the file has a header but no data"]),
    "truncated last line": (
        {"b.csv": CLEAN + "M,0.5,0.4"},
        "fail",
        ["b.csv: line 42 has 3 fields; expected 9"],
    ),
    # a 200 kB cell is data: an unseen category here, which the data-quality check reports
    "huge line": ({"b.csv": with_cell("sex", "M" * 200_000, row=5)}, "ok", ""),
    "huge quoted line": ({"b.csv": with_cell("sex", '"' + "M" * 200_000 + '"', row=5)}, "ok", ""),
    "decimal comma, unquoted": (
        {"b.csv": with_cell("length", "0,5")},
        "fail",
        ["b.csv: line 2 has 10 fields; expected 9"],
    ),
    # values
    "NaN spellings": (
        {
            "b.csv": with_cell(
                "height",
                "NaN",
                row=3,
                text=with_cell("length", "#N/A", row=2, text=with_cell("diameter", "null")),
            )
        },
        "ok",
        "",
    ),
    "decimal comma, quoted": (
        {"b.csv": with_cell("length", '"0,5"')},
        "ok",
        "column 'length' has non-numeric value '0,5' on line 2 (a decimal comma?)",
    ),
    "inf spellings": (
        {"b.csv": with_cell("length", "inf", text=with_cell("diameter", "-Infinity", row=1))},
        "ok",
        "column 'length' has non-numeric value 'inf' on line 2; treated as missing",
    ),
    "1e999 (overflows when read)": (
        {"b.csv": with_cell("height", "1e999")},
        "ok",
        "non-numeric value '1e999' on line 2 (too large for a float); treated as missing",
    ),
    "1e308 (overflows when standardised)": (
        {"b.csv": with_cell("whole_weight", "1e308", row=4)},
        "fail",
        ["b.csv: column 'whole_weight' value '1e308' on line 6 is too large for the transform"],
    ),
    "unseen category": ({"b.csv": with_cell("sex", "X")}, "ok", ""),
    "non-numeric label": (
        {"b.csv": with_cell("rings", "old")},
        "fail",
        ["b.csv: column 'rings' has non-numeric value 'old' on line 2; expected a number"],
    ),
}


@pytest.mark.e2e
@pytest.mark.parametrize("case", BATCHES, ids=str)
def test_a_bad_batch_is_handled_as_catalogued(case, fitted, tmp_path):
    files, outcome, expected = BATCHES[case]
    # Warnings are errors: e.g. pandas' "will raise in a future version" for unseen categories.
    result = apply_batch(fitted, tmp_path, files, env={"PYTHONWARNINGS": "error"})
    assert_readable(result.stderr)
    if outcome == "fail":
        assert result.returncode == 1
        line = last_line(result.stderr)
        assert line.startswith("preprocess: ")
        for fragment in expected:
            assert fragment in line
        # the reason first: the file is named relative to the data folder, not by its path
        assert not line.removeprefix("preprocess: ").startswith(str(tmp_path))
        # No output file at all (features.csv is written early, and removed again).
        assert [p for p in (tmp_path / "output").rglob("*") if p.is_file()] == []
        return
    assert result.returncode == 0, result.stderr
    if expected:
        assert expected in result.stderr
    if expected is None:  # the same records as the clean batch give the same outputs
        clean = tmp_path / "clean"
        assert apply_batch(fitted, clean, {"b.csv": CLEAN}).returncode == 0
        if case == "columns in another order":
            assert (
                outputs(tmp_path)["transform_input/batch.csv"]
                == outputs(clean)["transform_input/batch.csv"]
            )
        else:
            assert outputs(tmp_path) == outputs(clean)


# --- training data ----------------------------------------------------------------------------

TRAIN_LINES = TRAIN.read_text().splitlines()


def train_with_cell(column, value, row):
    header = TRAIN_LINES[0].split(",")
    lines = list(TRAIN_LINES)
    cells = lines[row + 1].split(",")
    cells[header.index(column)] = value
    lines[row + 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


TRAINING = {
    "1e308 (its variance overflows)": (
        train_with_cell("length", "1e308", row=10),
        ["t.csv: column 'length' value '1e308' on line 12 is too large to fit the transform"],
    ),
    "a column with no values": (
        "\n".join([TRAIN_LINES[0] + ",notes", *[line + "," for line in TRAIN_LINES[1:200]]]) + "\n",
        ["column 'notes' has no values in the train split"],
    ),
    "constant target": (
        "\n".join([TRAIN_LINES[0], *[line.rsplit(",", 1)[0] + ",7" for line in TRAIN_LINES[1:300]]])
        + "\n",
        ["column 'rings' (the target) is 7 in every one of the 299 rows"],
    ),
    "text in a numeric column": (
        train_with_cell("height", "n/a?", row=0),
        ["t.csv: column 'height' has non-numeric value 'n/a?' on line 2; expected a number"],
    ),
}


@pytest.mark.parametrize("case", TRAINING, ids=str)
def test_bad_training_data_fails_and_never_writes_a_transform(case, tmp_path):
    content, fragments = TRAINING[case]
    put(tmp_path / "input" / "data" / "t.csv", content)
    result = run("preprocess.py", "--mode", "fit", "--base-dir", tmp_path, expect_ok=False)
    assert result.returncode == 1
    assert_readable(result.stderr)
    line = last_line(result.stderr)
    for fragment in fragments:
        assert fragment in line
    assert not (tmp_path / "output" / "transform").exists()


def test_a_written_transform_is_always_finite_json(fitted):
    text = (fitted / "output" / "transform" / "transform.json").read_text()

    def refuse(constant):
        raise AssertionError(f"transform.json holds {constant}")

    json.loads(text, parse_constant=refuse)


# --- data quality: values that are not numbers are counted, violation or not ---------------


@pytest.mark.e2e
def test_non_numeric_values_within_the_threshold_reach_the_model_quality_reason(tmp_path):
    """pipelines.yaml's datatype_check_threshold is 0.1: 3 bad values in 40 are no violation,
    yet the data-quality summary names them and the model-quality reason (the e-mail) too."""
    baseline = tmp_path / "baseline"
    put(baseline / "input" / "data" / "t.csv", TRAIN)
    run("data_quality.py", "--mode", "baseline", "--base-dir", baseline)
    check = tmp_path / "check"
    batch = with_cell("length", "abc", text=with_cell("length", '"1,5"', row=1))
    put(check / "input" / "data" / "features.csv", with_cell("length", "inf", row=2, text=batch))
    for name in ("statistics.json", "constraints.json"):
        put(check / "input" / "baseline" / name, baseline / "output" / name)
    run(
        "data_quality.py", "--mode", "check", "--base-dir", check,
        "--datatype-check-threshold", "0.1", "--comparison-threshold", "1",
    )  # fmt: skip
    summary = json.loads((check / "output" / "summary.json").read_text())
    assert summary["notes"] == [
        "length: 3 of 40 values (7.50%) are not Fractional (e.g. 'abc', '1,5', 'inf'); within "
        "datatype_check_threshold 0.1, so not a violation, but imputed before scoring"
    ]
    assert summary["notes"][0] in summary["message"]

    quality = tmp_path / "quality"
    put(quality / "input" / "data_quality" / "summary.json", check / "output" / "summary.json")
    put(quality / "input" / "ground_truth" / "ground_truth.csv", "record_id,label\n")
    result = run("model_quality.py", "--base-dir", quality)
    assert "below threshold: length: 3 of 40 values (7.50%) are not Fractional" in result.stdout


@pytest.mark.e2e
def test_an_empty_label_file_skips_model_quality_with_the_reason(tmp_path):
    put(tmp_path / "input" / "ground_truth" / "ground_truth.csv", "record_id,label\n")
    result = run("model_quality.py", "--base-dir", tmp_path)
    assert "skipped: no ground truth" in result.stdout
    put(tmp_path / "input" / "ground_truth" / "ground_truth.csv", "")
    result = run("model_quality.py", "--base-dir", tmp_path, expect_ok=False)
    assert result.returncode == 1
    assert (
        "ground_truth.csv: malformed CSV (No columns to parse from file); expected record_id,"
        in (last_line(result.stderr))
    )
    assert_readable(result.stderr.splitlines()[-1])


def test_an_unexpected_error_in_any_step_is_one_line_last(tmp_path):
    """A bug, not bad input: a transform.json whose 'features' is a number."""
    put(tmp_path / "input" / "data" / "b.csv", CLEAN)
    put(
        tmp_path / "input" / "transform" / "transform.json",
        json.dumps(
            {
                "version": 1,
                "target": "rings",
                "features": 5,
                "numeric": {},
                "categorical": {},
                "output_columns": [],
            }
        ),
    )
    result = run("preprocess.py", "--mode", "apply", "--base-dir", tmp_path, expect_ok=False)
    assert result.returncode == 1
    line = last_line(result.stderr)
    assert line.startswith("preprocess: unexpected error, TypeError: ")
    assert line.endswith("; the job log has the details")
    assert "Traceback (most recent call last)" in result.stderr  # in the job log, not the reason


# --- through the local loop (`make demo --batch-data F`) -------------------------------------


def _settings(tmp_path):
    from pipeline_scripts.config import DEFAULT_SETTINGS_FILE

    settings = yaml.safe_load(DEFAULT_SETTINGS_FILE.read_text())
    settings["training"]["hyperparameters"]["num_round"] = 30
    settings["tuning"].update(max_jobs=2, max_parallel_jobs=2)
    path = tmp_path / "pipelines.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def demo(tmp_path, batches, *, out=None):
    """The loop `python -m local_runtime --batch-data <batch> ...` runs, with small training
    settings, on `batches` ({file name: content}, uploaded in that order); (summary, report
    page), after checking neither holds a stack trace."""
    from local_runtime.loop import Options, run_loop

    options = Options(
        env_file=str(DEV_ENV),
        out_dir=tmp_path / "out",
        batch_data=tuple(put(tmp_path / name, content) for name, content in batches.items()),
        settings_file=_settings(tmp_path),
    )
    summary = run_loop(options, out=out or (lambda line: None))
    return summary, written(summary, tmp_path / "out")


def written(summary, out_dir):
    """The report page in out_dir, after checking it and summary.json hold no stack trace and
    summary.json holds the executions run_loop returned."""
    summary_text = (out_dir / "summary.json").read_text()
    page = (out_dir / "report.html").read_text()
    assert json.loads(summary_text)["executions"] == json.loads(json.dumps(summary["executions"]))
    assert_readable(summary_text)
    assert_readable(page)
    return page


FIRST_ROW = ROWS[0]
# One loop run for every batch below, uploaded in this order after the training run; each test
# looks at its batch's execution. odd.csv comes last: the report shows the last batch scored.
BAD_BATCHES = {
    "truncated.csv": f"{HEADER}\n{FIRST_ROW}\nM,0.5,0.4\n",
    "missing_column.csv": HEADER.replace(",length", "") + "\n",
    "empty.csv": f"{HEADER}\n",
    "big.csv": with_cell("whole_weight", "1e308", row=4),
    "batch.txt": CLEAN,
    "batch.csv.gz": gzip.compress(CLEAN.encode()),
    "odd.csv": with_cell("length", "abc", text=with_cell("diameter", "inf", row=3)),
}


@pytest.fixture(scope="module")
def bad_batches(tmp_path_factory):
    return demo(tmp_path_factory.mktemp("bad_batches"), BAD_BATCHES)


def inference(summary, batch_name):
    """The one execution that scored `batch_name`, and its steps by name."""
    runs = [
        e
        for e in summary["executions"]
        if e["pipeline"] == "batch-inference-pipeline-dev"
        and (e["batch"] or "").endswith(f"/{batch_name}")
    ]
    assert len(runs) == 1, summary["executions"]
    return runs[0], {s["name"]: s for s in runs[0]["steps"]}


@pytest.mark.e2e
def test_every_bad_batch_leaves_the_training_run_and_the_approved_model_intact(bad_batches):
    summary, _ = bad_batches
    assert "error" not in summary
    training = [e for e in summary["executions"] if e["pipeline"] == "training-pipeline-dev"]
    assert [e["status"] for e in training] == ["Succeeded"]
    # batch.csv.gz is the drifted sample with its labels: model quality fails, which starts
    # one retraining (a version pending approval); odd.csv is still scored by version 1
    retraining = [e for e in summary["executions"] if e["pipeline"] == "training-hpo-pipeline-dev"]
    assert [e["trigger"] for e in retraining] == ["EventBridge rule model_quality_failed"]
    versions = [v["approval_status"] for v in summary["model_versions"]]
    assert versions == ["Approved", "PendingManualApproval"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    "batch_name, reason",
    [
        ("truncated.csv", "line 3 has 3 fields; expected 9"),
        ("missing_column.csv", "length"),
        ("empty.csv", "expected"),
    ],
)
def test_a_bad_batch_fails_at_preprocessing_with_the_reason_and_a_notification(
    bad_batches, batch_name, reason
):
    summary, _ = bad_batches
    execution, steps = inference(summary, batch_name)
    assert execution["status"] == "Failed"
    assert steps["PreprocessBatch"]["status"] == "Failed"
    assert reason in steps["PreprocessBatch"]["failure_reason"]
    assert batch_name in steps["PreprocessBatch"]["failure_reason"]
    assert steps["BatchTransform"]["status"] == "NotExecuted"
    mails = [
        n
        for n in summary["notifications"]
        if n["subject"].startswith("Failed: Preprocess") and batch_name in n["body"]
    ]
    assert mails and reason in mails[0]["body"]


@pytest.mark.e2e
def test_demo_with_non_numeric_and_infinite_values_writes_its_report(bad_batches):
    """Issue 11.1: one non-numeric and one infinite value used to crash the report."""
    summary, page = bad_batches
    execution, steps = inference(summary, "odd.csv")
    assert steps["PreprocessBatch"]["status"] == "Succeeded"
    assert steps["DataQualityCheck"]["status"] == "Succeeded"
    # 1 value in 40 is within pipelines.yaml's datatype_check_threshold 0.1: counted anyway
    notes = summary["data_quality_notes"]
    assert [note.split(":")[0] for note in notes] == ["length", "diameter"], notes
    assert "length: 1 of 40 values (2.50%) are not Fractional" in page


@pytest.mark.e2e
def test_demo_with_an_overflowing_value_fails_preprocessing_with_the_reason(bad_batches):
    """Issue 11.2: 1e308 used to reach xgboost as inf; now the step says which value."""
    summary, _ = bad_batches
    execution, steps = inference(summary, "big.csv")
    assert execution["status"] == "Failed"
    reason = steps["PreprocessBatch"]["failure_reason"]
    assert reason.startswith("preprocess: big.csv: column 'whole_weight' value '1e308' on line 6")
    assert steps["BatchTransform"]["status"] == "NotExecuted"
    subjects = [n["subject"] for n in summary["notifications"]]
    assert any(
        s.startswith("Failed: PreprocessBatch") and "preprocess: big.csv: column 'whole" in s
        for s in subjects
    ), subjects


@pytest.mark.e2e
def test_demo_scores_a_gzip_batch(bad_batches):
    """Issue 11.4: a .csv.gz batch starts the inference pipeline and is read."""
    summary, _ = bad_batches
    execution, steps = inference(summary, "batch.csv.gz")
    assert steps["PreprocessBatch"]["status"] == "Succeeded"
    assert steps["BatchTransform"]["status"] == "Succeeded"
    assert execution["records_scored"] == len(ROWS)


@pytest.mark.e2e
def test_demo_says_when_a_batch_name_starts_nothing(bad_batches):
    """A batch named .txt matches no rule: no pipeline starts, and the summary says why."""
    summary, page = bad_batches
    assert not [e for e in summary["executions"] if (e["batch"] or "").endswith("/batch.txt")]
    (unrouted,) = summary["unrouted_uploads"]
    assert unrouted.endswith(
        "batch.txt: no EventBridge rule matched, so no pipeline started; expected a name "
        "ending in .csv, .CSV, .csv.gz or .CSV.GZ"
    )
    assert "no EventBridge rule matched" in page


@pytest.mark.e2e
@pytest.mark.xdist_group(FAULTS_LOOP_GROUP)
def test_demo_writes_summary_and_report_when_aws_fails_unexpectedly(topic_then_bucket_gone):
    """Fault injected for real: the data bucket is deleted from the embedded S3 after the first
    version is approved and a batch scored, so the next batch's upload fails in a way no code
    anticipates (the run tests/shared_loops.py shares with tests/test_loop.py, which deletes
    the topic at the approval)."""
    summary = topic_then_bucket_gone["summary"]
    page = written(summary, topic_then_bucket_gone["out_dir"])
    assert summary["error"].startswith("the loop stopped: S3UploadFailedError: ")
    assert "NoSuchBucket" in summary["error"]
    assert summary["executions"][0]["status"] == "Succeeded"  # the training run is kept
    assert not [e for e in summary["executions"] if e["batch"] and "after.csv" in e["batch"]]
    assert "The loop stopped early" in page


def test_demo_exit_status_and_line_when_the_loop_stopped(tmp_path, capsys, monkeypatch):
    """__main__ (not the loop, stubbed here): a summary with an error exits 1 with one line."""
    import local_runtime.__main__ as entry

    def stopped(options):
        return {"executions": [], "error": "the loop stopped: ClientError: NoSuchBucket"}

    monkeypatch.setattr(entry, "run_loop", stopped)
    assert entry.main(["--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: the loop stopped: ClientError: NoSuchBucket "
        "(summary.json and report.html are written)"
    ]


def test_the_report_never_crashes_on_odd_values(tmp_path):
    """report.html from features with text, infinities and values beyond a histogram's range."""
    import pandas as pd

    from local_runtime.report import write_report

    baseline = pd.DataFrame({"length": [0.1, 0.2, 0.3], "sex": ["M", "F", "I"]})
    batch = pd.DataFrame(
        {
            "length": ["0.2", "abc", "inf", "-1e308", "1e308", None],
            "sex": ["M", 1, None, "X", "F", "I"],
        }
    )
    summary = {
        "executions": [],
        "data_quality_violations": [],
        "data_quality_notes": ["length: 2 of 6 values are not Fractional"],
        "event_deliveries": [
            {"rule": "r", "target": "notifier", "event_type": "t", "outcome": "failed: X: y"}
        ],
    }
    _, page_path = write_report(summary, tmp_path, baseline, batch)
    page = page_path.read_text()
    assert "Failed deliveries (1)" in page and "length: 2 of 6 values" in page
    assert_readable(page)
