"""pipeline_scripts/assets.py: the step code bundle ships scripts/ with its packages (dq/),
deterministically, and a processing job laid out from it runs data_quality.py."""

import io
import os
import shutil
import subprocess
import sys
import tarfile

import boto3
import pytest
from moto import mock_aws

from local_runtime import s3 as local_s3
from pipeline_scripts.assets import StepCode
from tests.conftest import SCRIPTS, put

PREFIX = "s3://bucket/code"


def _archive_names(code: StepCode) -> list:
    archive = code.assets()[-1]
    assert archive.s3_uri == code.training_source()
    with tarfile.open(fileobj=io.BytesIO(archive.body)) as tar:
        return tar.getnames()


def test_bundle_ships_the_package_by_relative_path_in_a_stable_order():
    code = StepCode(PREFIX)
    names = [asset.s3_uri.removeprefix(code.bundle_uri) for asset in code.assets()[:-1]]
    expected = sorted(
        path.relative_to(SCRIPTS).as_posix()
        for path in SCRIPTS.rglob("*.py")
        if "__pycache__" not in path.parts
    )
    assert names == expected
    assert {"data_quality.py", "step_common.py", "dq/__init__.py", "dq/sketches.py"} <= set(names)
    # The training archive holds the same files at the same relative paths.
    assert _archive_names(code) == expected


def test_a_change_inside_the_package_makes_a_new_bundle(tmp_path):
    copy = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = StepCode(PREFIX, copy)
    assert before.bundle_uri == StepCode(PREFIX, SCRIPTS).bundle_uri  # content, not location
    assert before.assets()[-1].body == StepCode(PREFIX, SCRIPTS).assets()[-1].body
    checks = copy / "dq" / "checks.py"
    checks.write_text(checks.read_text() + "\n# changed\n")
    after = StepCode(PREFIX, copy)
    assert after.bundle_uri != before.bundle_uri
    assert after.assets()[-1].body != before.assets()[-1].body
    # Caches and hidden folders are not code.
    put(copy / "dq" / "__pycache__" / "stray.py", "x = 1\n")
    put(copy / ".ipynb_checkpoints" / "note.py", "x = 1\n")
    assert StepCode(PREFIX, copy).bundle_uri == after.bundle_uri


def test_a_processing_job_laid_out_from_the_bundle_runs_data_quality(tmp_path):
    """The local runtime's S3Prefix download of the bundle gives the container layout
    (<root>/input/code/data_quality.py with dq/ beside it); run from elsewhere, with no
    PYTHONPATH, the script finds its package and writes to <root>/output."""
    code = StepCode(PREFIX)
    root = tmp_path / "processing"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bucket")
        for asset in code.assets():
            bucket, key = asset.bucket_and_key
            s3.put_object(Bucket=bucket, Key=key, Body=asset.body)
        downloaded = local_s3.download(s3, code.bundle_uri, root / "input" / "code")
        assert downloaded == len(code.assets()) - 1
    assert (root / "input" / "code" / "dq" / "checks.py").is_file()
    put(root / "input" / "data" / "batch.csv", "a,b\n1,x\n2,y\n3,x\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(root / "input" / "code" / "data_quality.py"), "--mode", "baseline"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (root / "output" / "statistics.json").is_file()
    assert (root / "output" / "constraints.json").is_file()


@pytest.mark.parametrize("script", ["data_quality.py", "training_data_comparison.py"])
def test_scripts_importing_the_package_start_from_a_copy_of_the_bundle(script, tmp_path):
    """--help imports everything: a missing module in the bundle fails here, not in a job."""
    code = tmp_path / "input" / "code"
    for asset in StepCode(PREFIX).assets()[:-1]:
        put(code / asset.s3_uri.removeprefix(StepCode(PREFIX).bundle_uri), asset.body)
    result = subprocess.run(
        [sys.executable, str(code / script), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
