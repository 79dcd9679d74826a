"""One execution per batch, exactly once: the dispatcher Lambda, the embedded API's idempotency,
the router, the preprocess step's batch selection, and (e2e) the whole path."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import sys

import boto3
import pytest

from local_runtime.aws import embedded_aws
from local_runtime.router import EventRouter, dispatcher_environment
from pipeline_scripts.config import load_config
from pipeline_scripts.event_rules import load_rules, matching_rules
from tests.conftest import REPO_ROOT

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
S3_EVENT = json.loads((REPO_ROOT / "tests/events/s3_object_created_inference.json").read_text())
sys.path.insert(0, str(REPO_ROOT / "scripts"))  # as in the processing container
from batch_input import select_batch  # noqa: E402
from step_common import InputError  # noqa: E402


def _load_dispatcher():
    path = REPO_ROOT / "code" / "batch_dispatcher" / "batch_dispatcher.py"
    spec = importlib.util.spec_from_file_location("batch_dispatcher_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dispatcher = _load_dispatcher()


@pytest.fixture(scope="module")
def config():
    return load_config(DEV_ENV)


def _event(config, key: str, version: str | None = "v1", etag: str = "0" * 32) -> dict:
    event = copy.deepcopy(S3_EVENT)
    event["detail"]["bucket"]["name"] = config.env.bucket_name
    event["detail"]["object"].update(key=key, etag=etag)
    if version is None:
        event["detail"]["object"].pop("version-id")
    else:
        event["detail"]["object"]["version-id"] = version
    return event


def _prefix(config) -> str:
    return dispatcher_environment(config)["INFERENCE_PREFIX"]


# ------------------------------------------------------------------------ the dispatcher


def test_the_real_s3_event_becomes_a_request_for_exactly_that_object(config):
    assert matching_rules(load_rules(config), S3_EVENT)[0].target == "dispatch_batch"
    prefix = "pipeline_shared/batch-scoring/batch-scoring/data/raw/"
    request = dispatcher.start_request(S3_EVENT, "p", prefix, {"MseThreshold": "6.0"})
    parameters = {p["Name"]: p["Value"] for p in request["PipelineParameters"]}
    obj = S3_EVENT["detail"]["object"]
    assert parameters == {
        "MseThreshold": "6.0",
        "InferenceDataUrl": f"s3://{S3_EVENT['detail']['bucket']['name']}/{obj['key']}",
        "BatchId": "2025-06-03-batch-0001",
        "BatchVersionId": obj["version-id"],
        "BatchETag": obj["etag"],
    }
    # botocore: ClientRequestToken is an IdempotencyToken of 32 to 128 characters.
    assert 32 <= len(request["ClientRequestToken"]) <= 128
    assert request["PipelineExecutionDisplayName"].startswith("2025-06-03-batch-0001-")


def test_the_token_is_the_object_version(config):
    prefix = _prefix(config)
    key = f"{prefix}day/b1.CSV.gz"

    def token(event):
        return dispatcher.start_request(event, "p", prefix, {})["ClientRequestToken"]

    first = token(_event(config, key, "v1"))
    assert token(_event(config, key, "v1")) == first  # retried or duplicated event
    assert token(_event(config, key, "v2")) != first  # a new version is a new batch
    assert token(_event(config, f"{prefix}day/b2.csv", "v1")) != first
    # Unversioned bucket: the ETag tells the contents apart.
    unversioned = token(_event(config, key, None, etag="a" * 32))
    assert unversioned != token(_event(config, key, None, etag="b" * 32))
    assert dispatcher.batch_id(key, prefix) == "day-b1"


@pytest.mark.parametrize("key", ["elsewhere/b1.csv", "{prefix}b1.txt"])
def test_an_object_that_is_not_a_batch_is_refused_naming_it(config, key):
    key = key.format(prefix=_prefix(config))
    with pytest.raises(dispatcher.BatchEventError, match=f"s3://{config.env.bucket_name}/{key}"):
        dispatcher.start_request(_event(config, key), "p", _prefix(config), {})


# -------------------------------------------------------------- exactly once, in the router


@pytest.fixture
def embedded(config):
    with embedded_aws(config.env.region):
        sagemaker = boto3.client("sagemaker")
        sagemaker.create_pipeline(
            PipelineName=config.env.pipeline_inf,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn=config.env.role_arn,
        )
        yield sagemaker


def test_the_same_event_twice_starts_one_execution(config, embedded):
    router = EventRouter(config)
    key = f"{_prefix(config)}b1.csv"
    router(_event(config, key, "v1"))
    router(_event(config, key, "v1"))  # EventBridge delivers at least once
    router(_event(config, key, "v2"))  # the object overwritten: a new batch version
    starts = list(router.pending_starts)
    assert [s.parameters["BatchVersionId"] for s in starts] == ["v1", "v2"]
    assert {s.parameters["InferenceDataUrl"] for s in starts} == {
        f"s3://{config.env.bucket_name}/{key}"
    }
    executions = embedded.list_pipeline_executions(PipelineName=config.env.pipeline_inf)
    arns = {e["PipelineExecutionArn"] for e in executions["PipelineExecutionSummaries"]}
    assert arns == {s.execution_arn for s in starts}
    outcomes = [d.outcome for d in router.deliveries if d.target == "dispatch_batch"]
    assert outcomes[1] == f"duplicate of {starts[0].execution_arn}: no new execution"


def test_a_repeated_token_returns_the_first_execution(config, embedded):
    request = {"PipelineName": config.env.pipeline_inf, "ClientRequestToken": "t" * 32}
    first = embedded.start_pipeline_execution(**request)["PipelineExecutionArn"]
    assert embedded.start_pipeline_execution(**request)["PipelineExecutionArn"] == first
    other = embedded.start_pipeline_execution(**{**request, "ClientRequestToken": "u" * 32})
    assert other["PipelineExecutionArn"] != first


# --------------------------------------------------------------- the preprocess step's input


def test_only_the_batch_file_is_read(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    content = b"a,b\n1,2\n"
    for name in ["b1.csv", "b1.csv.gz", "b1.csv2.csv", "other.csv"]:
        (folder / name).write_bytes(content if name == "b1.csv" else b"x,y\n")
    etag = hashlib.md5(content).hexdigest()
    chosen = select_batch(folder, "s3://bucket/in/b1.csv", etag)
    assert [p.name for p in chosen.iterdir()] == ["b1.csv"]
    assert (chosen / "b1.csv").read_bytes() == content
    assert select_batch(folder, "s3://bucket/in/", "") == folder  # a prefix run reads all
    # A multipart ETag depends on the part size: not checked.
    assert select_batch(folder, "s3://bucket/in/b1.csv", "abc-2") != folder


def test_a_missing_or_overwritten_batch_fails_naming_the_key(tmp_path):
    (tmp_path / "b1.csv.bak").write_text("a\n1\n")
    with pytest.raises(InputError, match=r"s3://bucket/in/b1.csv: the batch object is missing"):
        select_batch(tmp_path, "s3://bucket/in/b1.csv", "")
    (tmp_path / "b1.csv").write_text("a\n2\n")
    with pytest.raises(InputError, match=r"s3://bucket/in/b1.csv: content MD5 \w+ differs"):
        select_batch(tmp_path, "s3://bucket/in/b1.csv", "0" * 32)
