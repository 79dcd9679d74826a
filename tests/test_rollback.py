"""`python -m pipeline_scripts rollback` against moto: the model resolver (what batch inference
calls at run time) must then return the previous Approved version, and undo must restore it."""

import io
import json
import unicodedata
from pathlib import Path

import boto3
import botocore.session
import pytest
import regex
from moto import mock_aws

from local_runtime.aws import embedded_aws
from pipeline_scripts.cli import main
from pipeline_scripts.config import load_config
from pipeline_scripts.module_files import load_module
from pipeline_scripts.rollback import RollbackError, check_reason

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = str(REPO_ROOT / "env_files" / "dev_env.tfvars")
ENV = load_config(ENV_FILE).env
GROUP = ENV.model_package_group_name
BUCKET = "rollback-test-artifacts"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"


def _load_resolver():
    """code/model_resolver/model_resolver.py loaded as Lambda loads it: a lone file."""
    path = REPO_ROOT / "code" / "model_resolver" / "model_resolver.py"
    return load_module(path, "rollback_test_model_resolver")


model_resolver = _load_resolver()


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", ENV.region)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: only --yes confirms
    with mock_aws():
        yield


def _registry(labels_and_statuses: list[tuple[str, str]]) -> list[str]:
    """Registers versions shaped like the training pipeline's, oldest first, each with an
    evaluation.json whose MSE is the label's number (v3 -> 3.0). Returns their ARNs."""
    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": ENV.region})
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = []
    for label, status in labels_and_statuses:
        base = f"s3://{BUCKET}/{label}"
        mse = float(label.removeprefix("v"))
        report = {"regression_metrics": {"mse": {"value": mse}, "rmse": {"value": mse**0.5}}}
        s3.put_object(Bucket=BUCKET, Key=f"{label}/evaluation.json", Body=json.dumps(report))
        arns.append(
            sm.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus=status,
                InferenceSpecification={
                    "Containers": [{"Image": IMAGE, "ModelDataUrl": f"{base}/model.tar.gz"}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                },
                ModelMetrics={
                    "ModelQuality": {
                        "Statistics": {
                            "ContentType": "application/json",
                            "S3Uri": f"{base}/evaluation.json",
                        }
                    }
                },
                CustomerMetadataProperties={
                    "transform_uri": f"{base}/transform.json",
                    "git_commit": "0123abcd",
                },
                DriftCheckBaselines={
                    "ModelDataQuality": {
                        kind: {"ContentType": "application/json", "S3Uri": f"{base}/{kind}.json"}
                        for kind in ("Statistics", "Constraints")
                    }
                },
            )["ModelPackageArn"]
        )
    return arns


def _resolved_version() -> int:
    """The version the next batch-inference run would use."""
    resolved = model_resolver.handler({"model_package_group_name": GROUP}, None)
    return int(resolved["model_package_version"])


def _describe(arn: str) -> dict:
    return boto3.client("sagemaker").describe_model_package(ModelPackageName=arn)


def _rollback(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["rollback", "--env-file", ENV_FILE, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _statuses(arns: list[str]) -> list[str]:
    return [_describe(arn)["ModelApprovalStatus"] for arn in arns]


@pytest.mark.e2e
def test_rollback_rejects_the_version_in_use_and_the_resolver_returns_the_previous(aws, capsys):
    # Version 4 is newer but pending, version 3 rejected: neither is in use, so the rollback
    # is from 5 to 2, whatever the version numbers in between.
    arns = _registry(
        [
            ("v1", "Approved"),
            ("v2", "Approved"),
            ("v3", "Rejected"),
            ("v4", "PendingManualApproval"),
            ("v5", "Approved"),
        ]
    )
    assert _resolved_version() == 5

    code, out, err = _rollback(capsys, "--reason", "MSE 9.1 on batch 2026-12-01", "--yes")

    assert (code, err) == (0, "")
    assert _resolved_version() == 2
    assert _statuses(arns) == [
        "Approved",
        "Approved",
        "Rejected",
        "PendingManualApproval",
        "Rejected",
    ]
    rejected = _describe(arns[4])
    reason = "MSE 9.1 on batch 2026-12-01"
    assert rejected["ApprovalDescription"] == f"Rolled back to version 2: {reason}"
    properties = rejected["CustomerMetadataProperties"]
    assert properties["rollback_reason"] == reason
    assert properties["rollback_to"] == arns[1]
    assert properties["rollback_at"].endswith("+00:00")
    # The version's own metadata (the resolver needs transform_uri) is kept.
    assert properties["transform_uri"] == f"s3://{BUCKET}/v5/transform.json"
    # What changed, with the metrics read from each version's evaluation.json.
    assert "now:   version 5 (created " in out and "mse 5, rmse 2.236)" in out
    assert "after: version 2 (created " in out and "mse 2, rmse 1.414)" in out
    assert "changed: version 5: Approved -> Rejected (MSE 9.1 on batch 2026-12-01)" in out
    assert "next batch-inference run uses: version 2 (the newest Approved" in out


def test_undo_re_approves_the_rolled_back_version_from_what_was_recorded(aws, capsys):
    arns = _registry([("v1", "Approved"), ("v2", "Approved")])
    assert _rollback(capsys, "--reason", "bad batch", "--yes")[0] == 0
    assert _resolved_version() == 1

    # A separate invocation (new process in real use): undo finds the version from the registry.
    code, out, err = _rollback(capsys, "--undo", "--reason", "false alarm", "--yes")

    assert (code, err) == (0, "")
    assert _resolved_version() == 2
    restored = _describe(arns[1])
    assert restored["ModelApprovalStatus"] == "Approved"
    assert restored["ApprovalDescription"] == "Rollback undone: false alarm"
    properties = restored["CustomerMetadataProperties"]
    assert properties["rollback_undo_reason"] == "false alarm"
    assert properties["rollback_undone_at"] > properties["rollback_at"]
    assert properties["rollback_reason"] == "bad batch"  # the history stays on the version
    assert "changed: version 2: Rejected -> Approved (false alarm)" in out
    # Nothing left to undo.
    code, _, err = _rollback(capsys, "--undo", "--yes")
    assert code == 1
    assert err.startswith(f"error: {ENV_FILE}: model package group '{GROUP}' has no rollback")


@pytest.mark.e2e
def test_second_rollback_needs_further_and_undo_unwinds_in_order(aws, capsys):
    arns = _registry([("v1", "Approved"), ("v2", "Approved"), ("v3", "Approved")])
    assert _rollback(capsys, "--yes")[0] == 0
    assert _resolved_version() == 2
    assert _describe(arns[2])["CustomerMetadataProperties"]["rollback_reason"] == "no reason given"

    # Running the same command again (a retry, a double click) must not walk further back.
    code, out, err = _rollback(capsys, "--yes")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "version 2 is already in use because version 3 was rolled back at" in err
    assert "pass --further to also reject version 2 and use version 1" in err
    assert _resolved_version() == 2

    assert _rollback(capsys, "--further", "--yes")[0] == 0
    assert _resolved_version() == 1
    assert _statuses(arns) == ["Approved", "Rejected", "Rejected"]

    # Undo unwinds the most recent rollback first.
    assert _rollback(capsys, "--undo", "--yes")[0] == 0
    assert _resolved_version() == 2
    assert _rollback(capsys, "--undo", "--yes")[0] == 0
    assert _resolved_version() == 3
    assert _statuses(arns) == ["Approved", "Approved", "Approved"]


def test_a_newly_approved_version_can_be_rolled_back_after_a_rollback(aws, capsys):
    arns = _registry([("v1", "Approved"), ("v2", "Approved"), ("v3", "PendingManualApproval")])
    assert _rollback(capsys, "--yes")[0] == 0  # 2 -> 1
    boto3.client("sagemaker").update_model_package(
        ModelPackageArn=arns[2],
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=_describe(arns[2])["CustomerMetadataProperties"],
    )
    assert _resolved_version() == 3
    # Version 3 is not the result of a rollback, so no --further is needed: 3 -> 1.
    assert _rollback(capsys, "--yes")[0] == 0
    assert _resolved_version() == 1


@pytest.mark.e2e
def test_undo_says_when_a_newer_approved_version_stays_in_use(aws, capsys):
    arns = _registry([("v1", "Approved"), ("v2", "Approved"), ("v3", "PendingManualApproval")])
    assert _rollback(capsys, "--yes")[0] == 0  # 2 -> 1
    boto3.client("sagemaker").update_model_package(
        ModelPackageArn=arns[2],
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=_describe(arns[2])["CustomerMetadataProperties"],
    )
    code, out, _ = _rollback(capsys, "--undo", "--yes")
    assert code == 0
    assert "changed: version 2: Rejected -> Approved" in out
    assert "next batch-inference run uses: version 3 (the newest Approved" in out
    assert _resolved_version() == 3


@pytest.mark.e2e
def test_unreadable_metrics_do_not_stop_a_rollback(aws, capsys):
    _registry([("v1", "Approved"), ("v2", "Approved")])
    boto3.client("s3").delete_object(Bucket=BUCKET, Key="v2/evaluation.json")
    code, out, _ = _rollback(capsys, "--yes")
    assert code == 0
    assert "now:   version 2 (created " in out
    assert f"metrics unreadable: NoSuchKey on s3://{BUCKET}/v2/evaluation.json)" in out
    assert _resolved_version() == 1


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ([], "has no Approved version"),
        ([("v1", "Approved"), ("v2", "Rejected")], "has only one Approved version"),
    ],
)
def test_refuses_when_there_is_nothing_to_roll_back_to(aws, capsys, versions, expected):
    arns = _registry(versions)
    code, out, err = _rollback(capsys, "--yes")
    assert (code, out) == (1, "")
    assert err == (
        f"error: {ENV_FILE}: model package group '{GROUP}' {expected}: nothing to roll back "
        "to (approve an earlier version in the model registry first)\n"
    )
    assert _statuses(arns) == [status for _, status in versions]


@pytest.mark.e2e
def test_refuses_when_the_group_does_not_exist(aws, capsys):
    code, out, err = _rollback(capsys, "--yes")
    assert (code, out) == (1, "")
    assert err.startswith(f"error: {ENV_FILE}: model package group '{GROUP}' does not exist (")
    assert err.endswith("); nothing to roll back\n") and err.count("\n") == 1


def test_nothing_changes_without_confirmation(aws, capsys, monkeypatch):
    arns = _registry([("v1", "Approved"), ("v2", "Approved")])
    code, out, err = _rollback(capsys)  # stdin is empty: no terminal, no --yes
    assert code == 1
    assert "now:   version 2" in out
    assert err == (
        f"error: {ENV_FILE}: not confirmed; nothing changed (pass --yes to skip the prompt)\n"
    )
    assert _statuses(arns) == ["Approved", "Approved"]

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert _rollback(capsys)[0] == 0
    assert _resolved_version() == 1


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("rows, and more", "--reason: character(s) ',' not allowed"),
        ("it's <bad>", "--reason: character(s) \"'\" '<' '>' not allowed"),
        ("x" * 257, "--reason: expected 1 to 256 characters, got 257"),
        ("", "--reason: expected 1 to 256 characters, got 0"),
    ],
)
def test_reason_must_be_a_valid_sagemaker_metadata_value(reason, expected):
    with pytest.raises(RollbackError) as error:
        check_reason(reason)
    assert str(error.value).startswith(expected)


def test_reason_check_agrees_with_the_botocore_pattern():
    """check_reason accepts exactly the characters SageMaker's own pattern accepts."""
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker")
        .shape_for("CustomerMetadataValue")
    )
    # botocore writes the length into the pattern ("...${1,256}"); the length is checked apart.
    pattern = regex.compile(shape.metadata["pattern"].split("$")[0] + "$")
    for code_point in [*range(0x20, 0x3100), 0xFF10, 0x1D7CE, 0x20000]:
        char = chr(code_point)
        if unicodedata.category(char) == "Cn":
            # Unassigned in this Python's Unicode database (14.0 on 3.11) but maybe a letter
            # in a newer one: check_reason refuses those, on the safe side.
            continue
        try:
            check_reason(f"a{char}b")
            accepted = True
        except RollbackError:
            accepted = False
        assert accepted == bool(pattern.fullmatch(f"a{char}b")), f"U+{code_point:04X} {char!r}"


@pytest.mark.e2e
def test_rollback_through_the_local_runtime_embedded_aws(capsys, monkeypatch):
    """The CLI reaches whatever AWS_ENDPOINT_URL says, as with upsert: the local runtime."""
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with embedded_aws(ENV.region):
        arns = _registry([("v1", "Approved"), ("v2", "Approved")])
        code, out, _ = _rollback(capsys, "--reason", "local check", "--yes")
        assert code == 0
        assert _resolved_version() == 1
        assert _describe(arns[1])["CustomerMetadataProperties"]["rollback_reason"] == "local check"
        assert _rollback(capsys, "--undo", "--yes")[0] == 0
        assert _resolved_version() == 2


def test_an_invalid_reason_is_refused_before_any_change(aws, capsys):
    arns = _registry([("v1", "Approved"), ("v2", "Approved")])
    code, out, err = _rollback(capsys, "--reason", "drift, again", "--yes")
    assert (code, out) == (1, "")
    assert err.startswith("error: --reason: character(s) ',' not allowed (SageMaker metadata")
    assert _statuses(arns) == ["Approved", "Approved"]
