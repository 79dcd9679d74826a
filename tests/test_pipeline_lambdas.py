"""The pipeline Lambda functions (model resolver, training-data version) against moto."""

import hashlib
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline_scripts.module_files import load_module

REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
GROUP = "abalone-models"


def _load(name: str):
    """Import code/<name>/<name>.py the way Lambda does: a lone file, not a package."""
    return load_module(REPO_ROOT / "code" / name / f"{name}.py")


# Loaded before any AWS environment exists: the handlers must create their clients per call.
model_resolver = _load("model_resolver")
training_data_version = _load("training_data_version")


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SAGEMAKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    with mock_aws():
        yield


# --------------------------------------------------------------------------- model resolver


@pytest.fixture
def sm(aws):
    client = boto3.client("sagemaker")
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    return client


def _uris(label: str) -> dict:
    base = f"s3://mlops-artifacts/{GROUP}/{label}"
    return {
        "model_data_url": f"{base}/model.tar.gz",
        "transform_uri": f"{base}/transform/transform.json",
        "baseline_statistics_uri": f"{base}/baseline/statistics.json",
        "baseline_constraints_uri": f"{base}/baseline/constraints.json",
    }


def _register(sm, label: str, status="PendingManualApproval", group=GROUP, **overrides) -> str:
    """Register a version shaped like the training pipeline's register step makes them."""
    uris = _uris(label)
    spec = {
        "ModelPackageGroupName": group,
        "ModelApprovalStatus": status,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": uris["model_data_url"]}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "CustomerMetadataProperties": {
            "transform_uri": uris["transform_uri"],
            "training_data_version": f"s3://data/train/ objects=3 sha256={label:0>16}",
        },
        "DriftCheckBaselines": {
            "ModelDataQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": uris["baseline_statistics_uri"],
                },
                "Constraints": {
                    "ContentType": "application/json",
                    "S3Uri": uris["baseline_constraints_uri"],
                },
            }
        },
    }
    spec.update(overrides)
    return sm.create_model_package(**spec)["ModelPackageArn"]


def _set_status(sm, arn: str, status: str) -> None:
    # moto 5.2.5 replaces CustomerMetadataProperties with None when UpdateModelPackage omits
    # them (real SageMaker keeps them), so pass the version's own properties back unchanged.
    properties = sm.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties")
    extra = {"CustomerMetadataProperties": properties} if properties else {}
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status, **extra)


def _resolve(group=GROUP) -> dict:
    return model_resolver.handler({"model_package_group_name": group}, None)


def test_resolves_newest_approved_version_with_every_output(sm):
    other_group = "another-models"
    sm.create_model_package_group(ModelPackageGroupName=other_group)
    v1 = _register(sm, "v1")
    v2 = _register(sm, "v2")
    v3 = _register(sm, "v3", status="Approved")
    v4 = _register(sm, "v4")
    _register(sm, "v5")  # newest overall, never approved
    _register(sm, "other", status="Approved", group=other_group)  # newer, wrong group
    _set_status(sm, v2, "Approved")
    _set_status(sm, v4, "Rejected")
    _set_status(sm, v1, "Approved")  # approved last, but older: must not win

    result = _resolve()

    assert result == {
        "model_package_arn": v3,
        "model_package_version": "3",
        "image_uri": IMAGE,
        **_uris("v3"),
        # Registered without attributions (like versions before explanations): its train
        # split, Preprocess's output beside transform/, for ExplainBatch to sample.
        "attributions_uri": f"s3://mlops-artifacts/{GROUP}/v3/train",
        "evaluation_uri": "",
        # Nothing recorded on these hand-made versions: the verification step rejects them.
        **dict.fromkeys(model_resolver.INTEGRITY_KEYS, ""),
    }
    assert all(isinstance(value, str) for value in result.values())

    # Approving a newer version changes the answer with no rebuild: resolved at run time.
    _set_status(sm, v4, "Approved")
    assert _resolve()["model_package_arn"] == v4
    assert _resolve()["model_data_url"] == _uris("v4")["model_data_url"]
    # Revoking it falls back to the previous approved version.
    _set_status(sm, v4, "Rejected")
    assert _resolve()["model_package_version"] == "3"


def test_resolves_the_recorded_attributions_and_evaluation(sm):
    attributions = f"s3://mlops-artifacts/{GROUP}/v1/ExplainModel/explanations/attributions.json"
    evaluation = f"s3://mlops-artifacts/{GROUP}/v1/EvaluateModel/evaluation/evaluation.json"
    _register(
        sm,
        "v1",
        status="Approved",
        CustomerMetadataProperties={
            "transform_uri": _uris("v1")["transform_uri"],
            "attributions_uri": attributions,
        },
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation}}
        },
    )
    result = _resolve()
    assert result["attributions_uri"] == attributions
    assert result["evaluation_uri"] == evaluation


def _champion(group=GROUP) -> dict:
    return model_resolver.handler(
        {"action": "champion", "model_package_group_name": group,
         "fallback_model_data_url": "s3://b/own/model.tar.gz",
         "fallback_transform_uri": "s3://b/own/transform.json"},
        None,
    )  # fmt: skip


def test_the_champions_attributions_go_to_the_model_card_when_it_has_them(sm):
    own = {"champion_attributions_uri": "s3://b/own/transform.json", "champion_attributions": "no"}
    pick = ("champion_version", "champion_attributions_uri", "champion_attributions")

    def found():
        return {key: _champion()[key] for key in pick}

    assert found() == {"champion_version": "none", **own}  # no group yet
    # Registered before explanations: the champion, without attributions (flagged "no").
    _register(sm, "v1", status="Approved")
    assert found() == {"champion_version": "1", **own}
    _register(
        sm,
        "v2",
        status="Approved",
        CustomerMetadataProperties={"transform_uri": _uris("v2")["transform_uri"],
                                    "attributions_uri": "s3://b/v2/attributions.json"},
    )  # fmt: skip
    assert found() == {
        "champion_version": "2",
        "champion_attributions_uri": "s3://b/v2/attributions.json",
        "champion_attributions": "yes",
    }


def test_a_transform_elsewhere_gives_its_folder_where_explain_finds_no_baseline(sm):
    _register(
        sm,
        "v1",
        status="Approved",
        CustomerMetadataProperties={"transform_uri": "s3://b/custom/spec.json"},
    )
    assert _resolve()["attributions_uri"] == "s3://b/custom"


def test_no_approved_version_says_how_many_exist_and_how_to_approve(sm):
    for label in ("v1", "v2"):
        _register(sm, label)
    _set_status(sm, _register(sm, "v3"), "Rejected")

    with pytest.raises(model_resolver.ModelResolutionError) as caught:
        _resolve()

    message = str(caught.value)
    assert f"'{GROUP}'" in message
    assert "has 3 model version(s) but none is Approved" in message
    assert "model registry" in message
    assert "aws sagemaker update-model-package" in message
    assert "--model-approval-status Approved" in message


def test_no_approved_version_counts_every_page(sm):
    # More versions than one ListModelPackages page (100) so the count must paginate.
    for number in range(101):
        _register(sm, f"v{number}")
    with pytest.raises(model_resolver.ModelResolutionError, match=r"has 101 model version\(s\)"):
        _resolve()


def test_empty_group_says_to_run_training(sm):
    with pytest.raises(model_resolver.ModelResolutionError) as caught:
        _resolve()
    assert f"Model package group '{GROUP}' has no model versions" in str(caught.value)
    assert "training pipeline" in str(caught.value)


def test_missing_group_is_named(sm):
    with pytest.raises(model_resolver.ModelResolutionError) as caught:
        _resolve("no-such-group")
    message = str(caught.value)
    assert "Model package group 'no-such-group' does not exist" in message
    assert "model_package_group_name" in message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (
            {"CustomerMetadataProperties": {"training_data_version": "s3://data/train/"}},
            "CustomerMetadataProperties.transform_uri",
        ),
        ({"DriftCheckBaselines": {}}, "DriftCheckBaselines.ModelDataQuality.Statistics.S3Uri"),
        (
            {
                "InferenceSpecification": {
                    "Containers": [{"Image": IMAGE}],
                    "SupportedContentTypes": ["text/csv"],
                    "SupportedResponseMIMETypes": ["text/csv"],
                }
            },
            "InferenceSpecification.Containers[0].ModelDataUrl",
        ),
    ],
)
def test_approved_version_missing_a_field_names_field_and_version(sm, overrides, field):
    _register(sm, "v1", status="Approved")
    incomplete = _register(sm, "v2", status="Approved", **overrides)

    with pytest.raises(model_resolver.ModelResolutionError) as caught:
        _resolve()

    message = str(caught.value)
    assert f"Approved model version {incomplete} in group '{GROUP}' has no {field}" in message


@pytest.mark.parametrize(
    "event",
    [{}, {"model_package_group_name": ""}, {"model_package_group_name": 3}, None, "abalone"],
)
def test_bad_event_names_the_field(aws, event):
    with pytest.raises(model_resolver.ModelResolutionError, match="'model_package_group_name'"):
        model_resolver.handler(event, None)


def test_client_follows_the_callers_region(sm, monkeypatch):
    _register(sm, "v1", status="Approved")
    assert _resolve()["model_package_version"] == "1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the group lives in eu-west-1
    with pytest.raises(model_resolver.ModelResolutionError, match="does not exist"):
        _resolve()


# ---------------------------------------------------------------------- training data version


@pytest.fixture
def s3(aws):
    return boto3.client("s3")


def _bucket(s3, name: str, versioned: bool) -> str:
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _version(uri: str) -> str:
    return training_data_version.handler({"s3_uri": uri}, None)["data_version"]


def _prefix_hash(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def test_object_in_versioned_bucket_gives_current_version_id(s3):
    bucket = _bucket(s3, "training-versioned", versioned=True)
    s3.put_object(Bucket=bucket, Key="abalone/train.csv", Body=b"old")
    current = s3.put_object(Bucket=bucket, Key="abalone/train.csv", Body=b"new")["VersionId"]

    assert _version(f"s3://{bucket}/abalone/train.csv") == (
        f"s3://{bucket}/abalone/train.csv@{current}"
    )


def test_object_in_unversioned_bucket_gives_etag(s3):
    bucket = _bucket(s3, "training-plain", versioned=False)
    body = b"sex,length\nM,0.455\n"
    s3.put_object(Bucket=bucket, Key="abalone/train.csv", Body=body)

    assert _version(f"s3://{bucket}/abalone/train.csv") == (
        f"s3://{bucket}/abalone/train.csv@etag:{hashlib.md5(body).hexdigest()}"
    )


def test_prefix_hash_covers_every_object_and_follows_changes(s3):
    bucket = _bucket(s3, "training-prefix", versioned=False)
    bodies = {f"abalone/part-{number:04d}.csv": f"rows {number}".encode() for number in range(7)}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_object(Bucket=bucket, Key="abalone2/other.csv", Body=b"not under the prefix")
    s3.put_object(Bucket=bucket, Key="abalone", Body=b"a sibling object, not the prefix")

    def expected(items: dict) -> str:
        lines = [f"{key}\tetag:{hashlib.md5(body).hexdigest()}" for key, body in items.items()]
        return f"s3://{bucket}/abalone/ objects={len(items)} sha256={_prefix_hash(lines)}"

    first = _version(f"s3://{bucket}/abalone/")
    assert first == expected(bodies)
    assert _version(f"s3://{bucket}/abalone/") == first  # stable while nothing changes

    bodies["abalone/part-0003.csv"] = b"rows 3, corrected"
    s3.put_object(Bucket=bucket, Key="abalone/part-0003.csv", Body=bodies["abalone/part-0003.csv"])
    changed = _version(f"s3://{bucket}/abalone/")
    assert changed == expected(bodies)
    assert changed != first


def test_prefix_without_trailing_slash_is_the_same_prefix(s3):
    bucket = _bucket(s3, "training-slash", versioned=False)
    s3.put_object(Bucket=bucket, Key="abalone/train.csv", Body=b"x")
    s3.put_object(Bucket=bucket, Key="abalone-old/train.csv", Body=b"y")
    assert _version(f"s3://{bucket}/abalone") == _version(f"s3://{bucket}/abalone/")
    assert " objects=1 " in _version(f"s3://{bucket}/abalone")


def test_prefix_in_versioned_bucket_uses_current_versions(s3):
    bucket = _bucket(s3, "training-prefix-versioned", versioned=True)
    a = s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"same")["VersionId"]
    b = s3.put_object(Bucket=bucket, Key="data/b.csv", Body=b"b")["VersionId"]
    s3.put_object(Bucket=bucket, Key="data/gone.csv", Body=b"deleted below")
    s3.delete_object(Bucket=bucket, Key="data/gone.csv")  # delete marker: not current data

    first = _version(f"s3://{bucket}/data/")
    lines = [f"data/a.csv\t{a}", f"data/b.csv\t{b}"]
    assert first == f"s3://{bucket}/data/ objects=2 sha256={_prefix_hash(lines)}"

    # Rewriting identical bytes is a new version: lineage follows the version, not the etag.
    a2 = s3.put_object(Bucket=bucket, Key="data/a.csv", Body=b"same")["VersionId"]
    lines = [f"data/a.csv\t{a2}", f"data/b.csv\t{b}"]
    assert _version(f"s3://{bucket}/data/") == (
        f"s3://{bucket}/data/ objects=2 sha256={_prefix_hash(lines)}"
    )


@pytest.mark.parametrize("key", ["empty/", "empty", "empty/missing.csv"])
def test_no_objects_is_an_error_naming_the_uri(s3, key):
    bucket = _bucket(s3, "training-empty", versioned=True)
    s3.put_object(Bucket=bucket, Key="elsewhere/train.csv", Body=b"x")
    uri = f"s3://{bucket}/{key}"
    with pytest.raises(training_data_version.DataVersionError) as caught:
        _version(uri)
    assert f"no training data at {uri}" in str(caught.value)


def test_missing_bucket_is_an_error_naming_it(s3):
    with pytest.raises(training_data_version.DataVersionError, match="s3://no-such-bucket/data/"):
        _version("s3://no-such-bucket/data/")


@pytest.mark.parametrize(
    "event",
    [
        {"s3_uri": "training-data/abalone/"},
        {"s3_uri": "https://training-data.s3.amazonaws.com/abalone/"},
        {"s3_uri": "s3://"},
        {"s3_uri": "s3:///abalone/"},
        {"s3_uri": "s3://my bucket/abalone/"},
        {"s3_uri": None},
        {},
        None,
    ],
)
def test_malformed_uri_is_a_clear_error(aws, event):
    with pytest.raises(training_data_version.DataVersionError, match="'s3_uri'"):
        training_data_version.handler(event, None)


def test_long_uris_are_cut_to_the_metadata_limit(s3):
    bucket = _bucket(s3, "training-long-keys", versioned=True)
    folder = "/".join(f"level-{number:02d}-with-a-long-descriptive-name" for number in range(20))
    key = f"{folder}/train.csv"
    version_id = s3.put_object(Bucket=bucket, Key=key, Body=b"x")["VersionId"]

    single = _version(f"s3://{bucket}/{key}")
    assert len(single) == 256
    assert single.startswith(f"s3://{bucket}/level-00")
    assert "..." in single
    digest = hashlib.sha256(f"s3://{bucket}/{key}\t{version_id}".encode()).hexdigest()[:16]
    assert single.endswith(f"/train.csv@{version_id} sha256={digest}")  # identity is never cut

    prefix = _version(f"s3://{bucket}/{folder}/")
    assert len(prefix) == 256
    assert re.fullmatch(
        rf"s3://{bucket}/level-00.*\.\.\..*-name/ objects=1 sha256=[0-9a-f]{{16}}", prefix
    )

    top = folder.split("/")[0]
    digest = _prefix_hash([f"{key}\t{version_id}"])
    assert _version(f"s3://{bucket}/{top}") == (  # short enough: nothing is cut
        f"s3://{bucket}/{top}/ objects=1 sha256={digest}"
    )


# Every form the value takes; each must be a valid CreateModelPackage metadata value.
_ODD_KEY = "runs/2026 (final), v2!/train#1.csv"  # parentheses, comma, "!" and "#": invalid
_LONG_FOLDER = "/".join(f"level-{number:02d}-with-a-long-descriptive-name" for number in range(20))


@pytest.mark.parametrize("versioned", [True, False], ids=["versioned", "unversioned"])
@pytest.mark.parametrize(
    ("keys", "uri_key"),
    [
        (["abalone/train.csv"], "abalone/train.csv"),  # one object
        (["abalone/train.csv"], "abalone/"),  # a prefix holding one object
        ([f"abalone/part-{n}.csv" for n in range(3)], "abalone"),  # many objects
        ([f"{_LONG_FOLDER}/train.csv"], f"{_LONG_FOLDER}/train.csv"),  # long key
        ([f"{_LONG_FOLDER}/train.csv"], f"{_LONG_FOLDER}/"),  # long prefix
        ([_ODD_KEY], _ODD_KEY),  # characters the value may not hold
        ([_ODD_KEY], "runs/2026 (final), v2!/"),
    ],
    ids=["object", "prefix", "many", "long-key", "long-prefix", "odd-key", "odd-prefix"],
)
def test_data_version_is_valid_customer_metadata_on_every_path(s3, versioned, keys, uri_key):
    """CreateModelPackage rejects a value that breaks CustomerMetadataValue's length or pattern
    (e.g. the old "s3://b/p/ (1 objects, sha256:...)"): check with botocore's own shape."""
    from pipeline_scripts.api_model import constraint_errors, member_shape

    bucket = _bucket(s3, f"metadata-{'v' if versioned else 'u'}", versioned=versioned)
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    value = _version(f"s3://{bucket}/{uri_key}")

    shape = member_shape("CreateModelPackage", "CustomerMetadataProperties")
    assert (
        constraint_errors({"training_data_version": value}, shape, "customerMetadataProperties")
        == []
    )
    assert value.startswith(f"s3://{bucket}/")


def test_cleaned_object_keys_stay_distinct(s3):
    """Two keys that clean to the same text still get different values (the exact key's hash)."""
    bucket = _bucket(s3, "metadata-distinct", versioned=False)
    for key in ("data/a(1).csv", "data/a_1_.csv", "data/a[1].csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"same bytes")
    values = {_version(f"s3://{bucket}/{key}") for key in ("data/a(1).csv", "data/a[1].csv")}
    assert len(values) == 2
    assert _version(f"s3://{bucket}/data/a_1_.csv") not in values


def test_old_prefix_format_is_what_aws_rejects():
    """The validator gives the service's message for the value the Lambda used to return."""
    from pipeline_scripts.api_model import constraint_errors, member_shape, validation_message

    shape = member_shape("CreateModelPackage", "CustomerMetadataProperties")
    errors = constraint_errors({"v": "s3://b/p/ (1 objects, sha256:f239)"}, shape, "x")
    assert validation_message(errors) == (
        "1 validation error detected: Value 's3://b/p/ (1 objects, "
        "sha256:f239)' at 'x.v' failed to satisfy constraint: Member must satisfy regular "
        f"expression pattern: {shape.value.metadata['pattern']}"
    )


# --------------------------------------------------------------------------- duplicate check


def _compare(data_version="s3://data/train/ objects=3 sha256=0123456789abcdef", code="c0de"):
    return model_resolver.handler(
        {
            "action": "compare_fingerprint",
            "model_package_group_name": GROUP,
            "data_version": data_version,
            "code_and_settings": code,
        },
        None,
    )


def test_unchanged_data_code_and_settings_are_not_registered_again(sm):
    """The cached run's model has the newest version's fingerprint: is_new False, saying why."""
    first = _compare()
    assert first["is_new"] is True and "no version yet" in first["message"]
    expected = hashlib.sha256(
        b"s3://data/train/ objects=3 sha256=0123456789abcdef\nc0de"
    ).hexdigest()
    assert first["model_fingerprint"] == expected
    arn = _register(
        sm, "v1", CustomerMetadataProperties={"model_fingerprint": first["model_fingerprint"]}
    )

    again = _compare()
    assert again == {
        "model_fingerprint": first["model_fingerprint"],
        "is_new": False,
        "message": f"not registered: the newest version 1 of group '{GROUP}' ({arn}) has the "
        "same training data, code and hyperparameters",
    }
    # New data or new code/settings: a different model, registered.
    assert _compare(data_version="s3://data/train/ objects=4 sha256=fedcba9876543210")["is_new"]
    assert _compare(code="c0de2")["is_new"]


def test_only_the_newest_version_counts(sm):
    old = _compare()["model_fingerprint"]
    _register(sm, "v1", CustomerMetadataProperties={"model_fingerprint": old})
    _register(sm, "v2", CustomerMetadataProperties={"model_fingerprint": "other"})
    result = _compare()
    assert result["is_new"] is True
    assert "differs from the newest version 2" in result["message"]


def test_compare_without_the_group_registers(aws):
    """RegisterModel creates the group: a missing group means nothing to duplicate."""
    assert _compare()["is_new"] is True


def test_compare_outputs_are_valid_metadata_and_step_outputs(sm):
    from pipeline_scripts.api_model import constraint_errors, member_shape

    result = _compare()
    shape = member_shape("CreateModelPackage", "CustomerMetadataProperties")
    assert constraint_errors({"model_fingerprint": result["model_fingerprint"]}, shape, "m") == []
    assert isinstance(result["is_new"], bool)  # the step declares it Boolean


def test_unknown_action_is_a_clear_error(aws):
    with pytest.raises(model_resolver.ModelResolutionError, match="'action' is 'delete'"):
        model_resolver.handler({"action": "delete", "model_package_group_name": GROUP}, None)


def _notifier():
    path = REPO_ROOT / "code" / "notifier" / "notifier.py"
    return load_module(path, "notifier_for_duplicates")


@pytest.mark.parametrize("outcome", ["False", "True"])
def test_the_email_says_when_no_new_version_was_registered(outcome):
    """The novelty condition's step event (outcome False) sends an e-mail saying why nothing
    was registered, with the default NOTIFY_STATUSES (which send only Failed steps)."""
    import json

    from pipeline_scripts import pipeline_parts

    notifier = _notifier()
    assert notifier.NOT_REGISTERED_STEP == pipeline_parts.NOVELTY_STEP
    event = json.loads(
        (REPO_ROOT / "tests" / "events" / "pipeline_step_succeeded_register_model.json").read_text()
    )
    event["detail"].update(
        stepName=pipeline_parts.NOVELTY_STEP,
        stepType="Condition",
        metadata={"condition": {"outcome": outcome}},
    )
    notification = notifier.build_notification(event, notifier.load_config(None, None))
    if outcome == "True":  # registered: nothing to say beyond RegisterModel's own events
        assert notification.publish is False
        return
    assert notification.publish is True
    assert notification.subject.startswith(f"Succeeded: {pipeline_parts.NOVELTY_STEP} in ")
    assert "No new model version was registered" in notification.body


# --------------------------------------------------------------------------- the contract


def _every_action(sm, s3) -> dict:
    """(function, action) -> what the real handler returns for it, each action called once
    the way its pipeline step calls it, with a champion to find."""
    bucket = _bucket(s3, "artifacts", versioned=True)
    uris = {"model_uri": f"s3://{bucket}/model.tar.gz", "transform_uri": f"s3://{bucket}/t.json"}
    for uri in uris.values():
        s3.put_object(Bucket=bucket, Key=uri.rsplit("/", 1)[1], Body=b"artifact")
    record = training_data_version.handler({"action": "record_integrity", **uris}, None)
    _register(sm, "v1", status="Approved")
    group = {"model_package_group_name": GROUP}
    prefixes = {f"{p}_uri": f"s3://{bucket}/{p}/" for p in ("labels", "predictions", "snapshot")}
    return {
        ("model_resolver", "resolve"): _resolve(),
        ("model_resolver", "compare_fingerprint"): _compare(),
        ("model_resolver", "previous_training_data"): model_resolver.handler(
            {"action": "previous_training_data", **group, "fallback_uri": "s3://b/none/"}, None
        ),
        ("model_resolver", "champion"): _champion(),
        ("data_version", "data_version"): training_data_version.handler(
            {"s3_uri": uris["model_uri"]}, None
        ),
        ("data_version", "record_integrity"): record,
        ("data_version", "verify_integrity"): training_data_version.handler(
            {"action": "verify_integrity", **uris, **record}, None
        ),
        ("data_version", "labelled_batches"): training_data_version.handler(
            {"action": "labelled_batches", **prefixes, "days": 0}, None
        ),
    }


def test_every_action_returns_exactly_the_outputs_the_contract_gives_it(sm, s3):
    """The pipeline steps declare (and read) the names of contract.json lambda_outputs
    (tests/test_contract.py checks the rendered steps against it): the handlers must return
    exactly those, so a renamed key fails here, not in an execution in AWS."""
    from pipeline_scripts.contract import INTEGRITY_OUTPUTS, LAMBDA_OUTPUTS

    expected = {
        (function, action): sorted(outputs.values())
        for function, actions in LAMBDA_OUTPUTS.items()
        for action, outputs in actions.items()
    }
    # integrity_outputs: what record_integrity returns, and resolve after its own (contract.json).
    expected[("data_version", "record_integrity")] = sorted(INTEGRITY_OUTPUTS)
    expected[("model_resolver", "resolve")] = sorted(
        [*LAMBDA_OUTPUTS["model_resolver"]["resolve"].values(), *INTEGRITY_OUTPUTS]
    )
    returned = {key: sorted(result) for key, result in _every_action(sm, s3).items()}
    assert returned == expected
