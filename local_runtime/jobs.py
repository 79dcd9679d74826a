"""Job steps without containers: processing, training, CreateModel and RegisterModel.

A job runs its command with this Python interpreter (the venv pins the libraries of the
project's SageMaker image) in a per-execution sandbox that stands in for the container's
/opt/ml tree:

    processing  <step dir>/processing/  is /opt/ml/processing: the inputs are downloaded to
                input/<name>/, the command runs with "/opt/ml/processing" in its entrypoint and
                arguments replaced by this directory (a documented path mapping, not a mount,
                so it works on macOS and for any user), and each output's LocalPath is uploaded
                to its S3Uri when the command succeeds.
    training    <job dir>/ is /opt/ml: code/ (sourcedir.tar.gz), input/config/*.json,
                input/data/<channel>/, model/ (tarred to <S3OutputPath>/<job>/output/model.tar.gz),
                output/data/ and output/failure, with the SM_* environment of the SageMaker
                training toolkit (script mode).

Each job's stdout and stderr go to one log file. A failed processing job's reason is
/opt/ml/output/message if the script wrote one, else SageMaker's generic "AlgorithmError: See
job logs for more information" (never the script's stderr, which AWS leaves in the logs); a
failed training job's reason is output/failure if written, else the last non-empty stderr line,
as the training toolkit reports it. StoppingCondition.MaxRuntimeInSeconds is enforced by
killing the process group.

Fields a step may carry are declared per step type (the *_FIELDS schemas). A field marked
Ignored is accepted and has no local effect (the reason is written to the step log); any other
field is an error naming the step and the field, never silently dropped.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_runtime.events import model_package_state_change
from local_runtime.expressions import is_expression, iso_time, jsonable, load_json_text
from pipeline_scripts.xgboost_image import as_logged, builtin_metric_definitions, is_xgboost_image

PROCESSING_ROOT = "/opt/ml/processing"
DEFAULT_MAX_RUNTIME = 86400  # SageMaker's default StoppingCondition


class StepFailed(Exception):
    """The step ran and failed; the message is its failure reason."""


class DefinitionError(ValueError):
    """The definition uses something the local runtime does not support, or is invalid."""


# -- field schemas --------------------------------------------------------------------------

ANY = "any"


class Ignored(str):
    """Accepted, with no local effect; the text says why."""


@dataclass(frozen=True)
class Check:
    """Accepted when `test(value)` holds; `expected` describes what passes."""

    test: Callable[[Any], bool]
    expected: str


def one_of(*values) -> Check:
    return Check(lambda v: v in values, "one of " + ", ".join(repr(v) for v in values))


def check_fields(where: str, value, schema, path: str = "") -> list[str]:
    """Raises DefinitionError for the first unsupported field (`where` names the step);
    returns the notes of the Ignored fields present. Expressions pass: their values are
    checked again once resolved."""
    if schema == ANY or is_expression(value):
        return []
    if isinstance(schema, Ignored):
        return [f"{path}: {schema}"]
    if isinstance(schema, Check):
        if not schema.test(value):
            raise DefinitionError(
                f"{where}: {path} = {value!r} is not supported by the local runtime "
                f"(expected {schema.expected})"
            )
        return []
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise DefinitionError(f"{where}: {path} must be a list")
        return [
            note
            for i, item in enumerate(value)
            for note in check_fields(where, item, schema[0], f"{path}[{i}]")
        ]
    if not isinstance(value, dict):
        raise DefinitionError(f"{where}: {path} must be an object")
    notes = []
    for key, item in value.items():
        field_path = f"{path}.{key}" if path else key
        if key not in schema:
            raise DefinitionError(
                f"{where}: field {field_path} is not supported by the local runtime "
                f"(supported here: {', '.join(sorted(schema))})"
            )
        notes += check_fields(where, item, schema[key], field_path)
    return notes


NO_IAM = Ignored("no IAM locally: jobs run as the current user")
NO_KMS = Ignored("no encryption at rest locally")
NO_TAGS = Ignored("no resource tags locally")
NO_NETWORK_CONTROL = Ignored("no network isolation, VPC or traffic encryption locally")
NO_INSTANCES = Ignored("runs on this machine, not on an instance")
NO_CONTAINER = Ignored("no container: the command runs with this Python interpreter")
ONE_INSTANCE = one_of(1)
UNDER_PROCESSING_ROOT = Check(
    lambda p: str(p).startswith(PROCESSING_ROOT), f"a path under {PROCESSING_ROOT}"
)
S3_DATA_SOURCE = {
    "S3DataType": one_of("S3Prefix"),
    "S3Uri": ANY,
    # With one instance both distributions give the instance every object.
    "S3DataDistributionType": one_of("FullyReplicated", "ShardedByS3Key"),
}
CHANNEL = {
    "ChannelName": ANY,
    "DataSource": {"S3DataSource": S3_DATA_SOURCE},
    "ContentType": ANY,
    "CompressionType": one_of("None"),
    "InputMode": one_of("File"),
    "RecordWrapperType": one_of("None"),
}
PROCESSING_FIELDS = {
    "AppSpecification": {
        "ImageUri": NO_CONTAINER,
        "ContainerEntrypoint": ANY,
        "ContainerArguments": ANY,
    },
    "Environment": ANY,
    "NetworkConfig": NO_NETWORK_CONTROL,
    "ProcessingInputs": [
        {
            "InputName": ANY,
            "AppManaged": one_of(False),
            "S3Input": {
                **S3_DATA_SOURCE,
                "LocalPath": UNDER_PROCESSING_ROOT,
                "S3InputMode": one_of("File"),
                "S3CompressionType": one_of("None"),
            },
        }
    ],
    "ProcessingOutputConfig": {
        "KmsKeyId": NO_KMS,
        "Outputs": [
            {
                "OutputName": ANY,
                "AppManaged": one_of(False),
                "S3Output": {
                    "S3Uri": ANY,
                    "LocalPath": UNDER_PROCESSING_ROOT,
                    "S3UploadMode": one_of("EndOfJob"),
                },
            }
        ],
    },
    "ProcessingResources": {
        "ClusterConfig": {
            "InstanceCount": ONE_INSTANCE,
            "InstanceType": NO_INSTANCES,
            "VolumeSizeInGB": NO_INSTANCES,
            "VolumeKmsKeyId": NO_KMS,
        }
    },
    "RoleArn": NO_IAM,
    "StoppingCondition": {"MaxRuntimeInSeconds": ANY},
    "Tags": NO_TAGS,
}
# CreateTrainingJob fields shared by a training step and a tuning step's TrainingJobDefinition.
_TRAINING_JOB_FIELDS = {
    "AlgorithmSpecification": {
        "TrainingImage": NO_CONTAINER,
        "TrainingInputMode": one_of("File"),
        "MetricDefinitions": [{"Name": ANY, "Regex": ANY}],
        "EnableSageMakerMetricsTimeSeries": Ignored("metrics are read from the log at the end"),
    },
    "InputDataConfig": [CHANNEL],
    "OutputDataConfig": {
        "S3OutputPath": ANY,
        "KmsKeyId": NO_KMS,
        "CompressionType": one_of("GZIP"),
    },
    "ResourceConfig": {
        "InstanceCount": ONE_INSTANCE,
        "InstanceType": NO_INSTANCES,
        "VolumeSizeInGB": NO_INSTANCES,
        "VolumeKmsKeyId": NO_KMS,
    },
    "RoleArn": NO_IAM,
    "StoppingCondition": {
        "MaxRuntimeInSeconds": ANY,
        "MaxWaitTimeInSeconds": Ignored("no managed spot training locally"),
    },
    "Environment": ANY,
    "EnableInterContainerTrafficEncryption": NO_NETWORK_CONTROL,
    "EnableNetworkIsolation": NO_NETWORK_CONTROL,
    "VpcConfig": NO_NETWORK_CONTROL,
    "EnableManagedSpotTraining": Ignored("no managed spot training locally"),
}
TRAINING_FIELDS = {**_TRAINING_JOB_FIELDS, "HyperParameters": ANY, "Tags": NO_TAGS}
TRAINING_DEFINITION_FIELDS = {**_TRAINING_JOB_FIELDS, "StaticHyperParameters": ANY}
# Sent to the embedded SageMaker API as they are: its request validation applies.
MODEL_FIELDS = {
    "PrimaryContainer": ANY,
    "Containers": ANY,
    "ExecutionRoleArn": ANY,
    "VpcConfig": ANY,
    "Tags": ANY,
    "EnableNetworkIsolation": Ignored("moto's CreateModel does not store it"),
}
REGISTER_MODEL_FIELDS = {
    "ModelPackageGroupName": ANY,
    "ModelPackageDescription": ANY,
    "InferenceSpecification": ANY,
    "ModelApprovalStatus": ANY,
    "MetadataProperties": ANY,
    "ModelMetrics": ANY,
    "CustomerMetadataProperties": ANY,
    "DriftCheckBaselines": ANY,
    "Domain": ANY,
    "Task": ANY,
    "SamplePayloadUrl": ANY,
    "AdditionalInferenceSpecifications": ANY,
    "CertifyForMarketplace": ANY,
    "Tags": ANY,
    "SkipModelValidation": Ignored("no model validation locally (moto does not store it)"),
}


# -- one job --------------------------------------------------------------------------------


@dataclass
class Job:
    """One step's job: resolved request, sandbox, log and the embedded AWS clients."""

    step_name: str
    job_name: str
    arguments: dict
    workdir: Path
    log_path: Path
    s3: Any
    sagemaker: Any
    arn_prefix: str  # arn:<partition>:sagemaker:<region>:<account>:

    def arn(self, resource: str, name: str | None = None) -> str:
        # SageMaker spells job names in lower case in ARNs.
        return f"{self.arn_prefix}{resource}/{(name or self.job_name).lower()}"

    def log(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"[local runtime] {line}\n")


@dataclass
class StepResult:
    """What a step leaves behind: Describe*-shaped properties for later steps, a summary of
    its outputs, its final metrics, event metadata and any events it caused."""

    properties: dict
    outputs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


def now() -> datetime:
    return datetime.now(UTC)


# -- S3 -------------------------------------------------------------------------------------


def split_s3_uri(uri) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise StepFailed(f"{uri!r} is not an S3 URI (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def download(s3, uri: str, target: Path) -> int:
    """S3Prefix semantics: every object whose key starts with the URI's key, saved under
    `target` by its key relative to that prefix (an exact object keeps its file name).
    Returns how many objects there were."""
    bucket, prefix = split_s3_uri(uri)
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue  # a "folder" marker
                relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                path = (target / relative).resolve()
                if not path.is_relative_to(target.resolve()):
                    raise StepFailed(f"s3://{bucket}/{key}: key leaves the input folder")
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, key, str(path))
                count += 1
    except ClientError as error:
        raise StepFailed(f"ClientError: cannot read {uri}: {error}") from None
    return count


def download_input(s3, uri: str, target: Path, what: str) -> None:
    if download(s3, uri, target) == 0:
        # SageMaker refuses to start a job whose input prefix holds nothing.
        raise StepFailed(
            f'ClientError: No S3 objects found under S3 URL "{uri}" given in {what}. Please '
            "ensure that the bucket exists and that objects exist under that S3 prefix."
        )


def upload_dir(s3, source: Path, uri: str) -> int:
    bucket, prefix = split_s3_uri(uri)
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else []
    for path in files:
        key = "/".join(filter(None, [prefix.rstrip("/"), path.relative_to(source).as_posix()]))
        s3.upload_file(str(path), bucket, key)
    return len(files)


def read_json(s3, uri: str):
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise StepFailed(f"cannot read {uri}: {error}") from None
    return load_json_text(body.decode("utf-8"), uri)


def extract_tar(archive: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            # The "data" filter (Python >= 3.11.4) refuses members leaving `target`.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(target, **safe)
    except (tarfile.TarError, OSError) as error:
        raise StepFailed(f"{archive.name}: not a readable tar archive: {error}") from None


def tar_gz(source: Path, archive: Path) -> None:
    """model.tar.gz as SageMaker writes it: the folder's contents at the archive root."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=path.relative_to(source).as_posix(), recursive=False)
    archive.write_bytes(gzip.compress(buffer.getvalue()))


# -- processes ------------------------------------------------------------------------------

# What a job inherits from this process; no AWS credentials or endpoints (jobs get their data
# from the runner, as in SageMaker).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "TZ")


def job_environment(step_environment: dict | None, **variables: str) -> dict:
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(variables)
    env.update({str(k): str(v) for k, v in (step_environment or {}).items()})
    return env


_live: set[subprocess.Popen] = set()  # job processes running now, for stop_all_jobs()
_live_lock = threading.Lock()


def stop_all_jobs() -> None:
    """Kills every job process this module started that is still running (the runner calls it
    when it is interrupted, so no job outlives it)."""
    with _live_lock:
        processes = list(_live)
    for process in processes:
        _kill(process, os.name == "posix")


# Where prctl is missing (macOS), a job runs under this watchdog, the leader of the job's process
# group: it passes the job's exit status on, and kills the whole group as soon as its parent
# (the runner) is gone, however the runner ended.
_WATCHDOG = """
import os, signal, subprocess, sys, time
parent, job = int(sys.argv[1]), subprocess.Popen(sys.argv[2:])
while job.poll() is None:
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    time.sleep(0.2)
sys.exit(job.returncode if job.returncode >= 0 else 128 - job.returncode)
"""
# LOCAL_RUNTIME_JOB_WATCHDOG=1 uses the watchdog on Linux too (the tests run both ways).
_WATCHDOG_VARIABLE = "LOCAL_RUNTIME_JOB_WATCHDOG"


def _uses_watchdog() -> bool:
    posix = os.name == "posix"
    return posix and (
        not sys.platform.startswith("linux") or os.environ.get(_WATCHDOG_VARIABLE) == "1"
    )


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the job when the runner dies, even by SIGKILL,
    which no handler in the runner can catch (prctl(2) PR_SET_PDEATHSIG, Linux only). Jobs run
    in their own session (so a timeout can kill the whole group), which keeps the terminal's
    Ctrl-C from reaching them: this is what ties them to the runner. The signal fires when the
    thread that started the job ends; the runner's worker threads outlive their jobs."""
    if not sys.platform.startswith("linux") or _uses_watchdog():
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1  # <linux/prctl.h>

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(137)

    return preexec


@dataclass
class ProcessOutcome:
    returncode: int
    timed_out: bool
    stderr_tail: list[str]
    max_runtime: int


def run_process(argv, *, env, cwd: Path, log_path: Path, max_runtime: int) -> ProcessOutcome:
    """Runs `argv`, copying stdout and stderr into the log as they come; kills the process
    group after `max_runtime` seconds. Never waits on a stuck pipe for more than a moment."""
    posix = os.name == "posix"
    tail: collections.deque = collections.deque(maxlen=50)
    lock = threading.Lock()
    with open(log_path, "ab") as log:
        argv = [str(a) for a in argv]
        if _uses_watchdog():
            argv = [sys.executable, "-c", _WATCHDOG, str(os.getpid()), *argv]
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=posix,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        except OSError as error:
            raise StepFailed(f"cannot run {argv[0]}: {error}") from None
        with _live_lock:
            _live.add(process)

        def pump(stream, keep):
            for line in iter(stream.readline, b""):
                with lock:
                    log.write(line)
                    log.flush()
                if keep is not None:
                    keep.append(line.decode("utf-8", "replace").rstrip())

        pumps = [
            threading.Thread(target=pump, args=(process.stdout, None), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, tail), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        timed_out = False
        try:
            process.wait(timeout=max_runtime)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process, posix)
        except BaseException:  # Ctrl-C or a runner shutdown: leave no job behind
            _kill(process, posix)
            raise
        finally:
            with _live_lock:
                _live.discard(process)
        for thread in pumps:
            thread.join(timeout=5)
    return ProcessOutcome(process.returncode, timed_out, list(tail), max_runtime)


def _kill(process: subprocess.Popen, posix: bool) -> None:
    try:
        if posix:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


# What DescribeProcessingJob says when the container exits non-zero: the FailureReason is this
# generic text (aws/sagemaker-spark-container, test/integration/sagemaker/
# test_sagemaker_spark_errors.py asserts it); the container's own words reach the caller only
# through /opt/ml/output/message (ExitMessage).
PROCESSING_ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"


def failure_reason(outcome: ProcessOutcome, failure_file: Path, generic: str | None = None) -> str:
    """The job's FailureReason: the timeout, else what the job wrote to `failure_file`, else
    `generic` (SageMaker's text for a container that exits without saying why) or, where the
    toolkit reports stderr itself, the last stderr line."""
    if outcome.timed_out:
        return (
            f"MaxRuntimeExceeded: the job ran longer than StoppingCondition.MaxRuntimeInSeconds "
            f"({outcome.max_runtime} s) and was stopped"
        )
    written = failure_file.read_text().strip() if failure_file.is_file() else ""
    if written:
        return written
    if generic:
        return generic
    lines = [line.strip() for line in outcome.stderr_tail if line.strip()]
    silent = f"the job's command exited with code {outcome.returncode}, saying nothing on stderr"
    return lines[-1] if lines else silent


def max_runtime(arguments: dict) -> int:
    return int(
        arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
    )


def _python(command: str) -> str:
    """The image's Python is this interpreter (the venv pins the image's libraries)."""
    return sys.executable if command in ("python", "python3") else command


# -- processing -----------------------------------------------------------------------------


def run_processing(job: Job) -> StepResult:
    args = job.arguments
    app = args.get("AppSpecification", {})
    if not app.get("ContainerEntrypoint"):
        raise DefinitionError(
            f"step '{job.step_name}': AppSpecification.ContainerEntrypoint is required locally "
            "(an image's built-in entrypoint cannot run without the image)"
        )
    root = job.workdir / "processing"
    root.mkdir(parents=True, exist_ok=True)

    def local(container_path: str) -> Path:
        return root / container_path[len(PROCESSING_ROOT) :].lstrip("/")

    started = now()
    for item in args.get("ProcessingInputs", []):
        source = item["S3Input"]
        what = f"processing input '{item['InputName']}'"
        download_input(job.s3, source["S3Uri"], local(source["LocalPath"]), what)
    outputs = args.get("ProcessingOutputConfig", {}).get("Outputs", [])
    for item in outputs:
        local(item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)

    command = [a.replace(PROCESSING_ROOT, str(root)) for a in map(str, app["ContainerEntrypoint"])]
    command += [
        a.replace(PROCESSING_ROOT, str(root)) for a in map(str, app.get("ContainerArguments", []))
    ]
    command[0] = _python(command[0])
    job.log(f"{PROCESSING_ROOT} is {root}; running {' '.join(command)}")
    outcome = run_process(
        command,
        env=job_environment(args.get("Environment")),
        cwd=root,
        log_path=job.log_path,
        max_runtime=max_runtime(args),
    )
    exit_message = job.workdir / "output" / "message"  # /opt/ml/output/message
    if outcome.returncode != 0 or outcome.timed_out:
        raise StepFailed(failure_reason(outcome, exit_message, PROCESSING_ALGORITHM_ERROR))
    uploaded = {}
    for item in outputs:
        target = item["S3Output"]["S3Uri"]
        count = upload_dir(job.s3, local(item["S3Output"]["LocalPath"]), target)
        job.log(f"output '{item['OutputName']}': {count} file(s) -> {target}")
        uploaded[item["OutputName"]] = target
    properties = {
        **args,
        "ProcessingJobName": job.job_name,
        "ProcessingJobArn": job.arn("processing-job"),
        "ProcessingJobStatus": "Completed",
        "ExitMessage": exit_message.read_text()[:1024] if exit_message.is_file() else "",
        "ProcessingStartTime": iso_time(started),
        "ProcessingEndTime": iso_time(now()),
    }
    return StepResult(properties=properties, outputs=uploaded)


# -- training (SageMaker training toolkit, script mode) ---------------------------------------


def decode_hyperparameter(text: str):
    """The training toolkit's rule: JSON if it parses, else the text itself."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


# The training toolkit's spelling of hyperparameters (sagemaker_training.mapping): flags are
# `--name value` (`-n value` for one-letter names), a mapping is `k=v,...`; environment values
# are strings as they are, anything else compact JSON with sorted keys.


def _flag_value(value) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)


def _env_value(value) -> str:
    if isinstance(value, str):
        return value
    return "" if value is None else json.dumps(value, sort_keys=True, separators=(",", ":"))


def job_metrics(algorithm: dict, log_text: str) -> dict[str, float]:
    """The metrics SageMaker would record: the XGBoost image's built-in ones, read from the
    log as SageMaker records it (tabs as #011), else the request's MetricDefinitions."""
    if is_xgboost_image(algorithm.get("TrainingImage", "")):
        return scrape_metrics(as_logged(log_text), builtin_metric_definitions())
    return scrape_metrics(log_text, algorithm.get("MetricDefinitions", []))


def metric_names(algorithm: dict) -> set[str]:
    """Names of the metrics a training job with this AlgorithmSpecification reports."""
    if is_xgboost_image(algorithm.get("TrainingImage", "")):
        return {d["Name"] for d in builtin_metric_definitions()}
    return {d["Name"] for d in algorithm.get("MetricDefinitions", [])}


def scrape_metrics(log_text: str, definitions: list[dict]) -> dict[str, float]:
    """Final value of each metric: the last match of its regex's first group in the log."""
    metrics = {}
    for definition in definitions:
        for match in re.finditer(definition["Regex"], log_text):
            try:
                metrics[definition["Name"]] = float(match.group(1))
            except (IndexError, TypeError, ValueError):
                continue
    return metrics


def train(job: Job, request: dict, name: str, workdir: Path, log_path: Path, cpus: int) -> dict:
    """Runs one training job (CreateTrainingJob `request`) in `workdir`, which stands for
    /opt/ml, on `cpus` cores (its instance's); returns its DescribeTrainingJob-shaped
    properties. Raises StepFailed."""
    created = now()
    raw = {str(k): str(v) for k, v in request.get("HyperParameters", {}).items()}
    decoded = {k: decode_hyperparameter(v) for k, v in raw.items()}
    program, submit = decoded.get("sagemaker_program"), decoded.get("sagemaker_submit_directory")
    if not program or not submit:
        raise DefinitionError(
            f"step '{job.step_name}': HyperParameters.sagemaker_program and "
            "sagemaker_submit_directory are required locally (script mode: the framework "
            "toolkit runs the program from the submitted source); built-in algorithms and "
            "ContainerEntrypoint training are not supported"
        )
    code, config = workdir / "code", workdir / "input" / "config"
    model_dir, output_data = workdir / "model", workdir / "output" / "data"
    for folder in (code, config, model_dir, output_data):
        folder.mkdir(parents=True, exist_ok=True)

    channels = request.get("InputDataConfig", [])
    for channel in channels:
        source = channel["DataSource"]["S3DataSource"]["S3Uri"]
        target = workdir / "input" / "data" / channel["ChannelName"]
        download_input(job.s3, source, target, f"channel '{channel['ChannelName']}'")
    module_dir = _install_code(job, submit, workdir, code)
    if not (code / program).is_file():
        raise StepFailed(f"sagemaker_program '{program}' is not in {submit}")

    names = sorted(c["ChannelName"] for c in channels)
    input_config = {
        c["ChannelName"]: {
            "ContentType": c.get("ContentType", ""),
            "TrainingInputMode": c.get("InputMode", "File"),
            "S3DistributionType": c["DataSource"]["S3DataSource"].get(
                "S3DataDistributionType", "FullyReplicated"
            ),
            "RecordWrapperType": c.get("RecordWrapperType", "None"),
        }
        for c in channels
    }
    resources = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}
    for file_name, document in (
        ("hyperparameters.json", raw),
        ("inputdataconfig.json", input_config),
        ("resourceconfig.json", resources),
    ):
        (config / file_name).write_text(json.dumps(document, indent=2))

    user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    variables = {
        "TRAINING_JOB_NAME": name,
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_data),
        "SM_OUTPUT_DIR": str(workdir / "output"),
        "SM_INPUT_DIR": str(workdir / "input"),
        "SM_INPUT_CONFIG_DIR": str(config),
        "SM_CHANNELS": _env_value(names),
        "SM_HPS": _env_value(user),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": _env_value(["algo-1"]),
        "SM_NUM_CPUS": str(cpus),
        # Jobs sharing this machine get a share each, as each would have its own instance;
        # OpenMP (xgboost) would otherwise start a thread per core in every job.
        "OMP_NUM_THREADS": str(cpus),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_DIR": module_dir,
        "SM_USER_ENTRY_POINT": program,
        **{f"SM_CHANNEL_{n.upper()}": str(workdir / "input" / "data" / n) for n in names},
        **{f"SM_HP_{k.upper()}": _env_value(v) for k, v in user.items()},
    }
    command = [sys.executable, program]
    for key in sorted(user):
        command += [f"--{key}" if len(key) > 1 else f"-{key}", _flag_value(user[key])]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"[local runtime] /opt/ml is {workdir}; running {' '.join(command)}\n")
    started = now()
    outcome = run_process(
        command,
        env=job_environment(request.get("Environment"), **variables),
        cwd=code,
        log_path=log_path,
        max_runtime=max_runtime(request),
    )
    if outcome.returncode != 0 or outcome.timed_out:
        # Script mode: the training toolkit catches the script's failure and writes its
        # ExecuteUserScriptError, stderr included, to /opt/ml/output/failure
        # (aws/sagemaker-training-toolkit src/sagemaker_training/trainer.py), so a training
        # job's reason is its stderr when the script itself wrote nothing.
        raise StepFailed(failure_reason(outcome, workdir / "output" / "failure"))
    ended = now()

    metrics = job_metrics(
        request.get("AlgorithmSpecification", {}),
        log_path.read_text(encoding="utf-8", errors="replace"),
    )
    output_path = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output"
    model_archive = workdir / "model.tar.gz"
    tar_gz(model_dir, model_archive)
    bucket, key = split_s3_uri(f"{output_path}/model.tar.gz")
    job.s3.upload_file(str(model_archive), bucket, key)
    if any(output_data.iterdir()):
        tar_gz(output_data, workdir / "output.tar.gz")
        bucket, key = split_s3_uri(f"{output_path}/output.tar.gz")
        job.s3.upload_file(str(workdir / "output.tar.gz"), bucket, key)
    return {
        **request,
        "TrainingJobName": name,
        "TrainingJobArn": job.arn("training-job", name),
        "ModelArtifacts": {"S3ModelArtifacts": f"{output_path}/model.tar.gz"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "CreationTime": iso_time(created),
        "TrainingStartTime": iso_time(started),
        "TrainingEndTime": iso_time(ended),
        "FinalMetricDataList": [
            {"MetricName": metric, "Value": value, "Timestamp": iso_time(ended)}
            for metric, value in metrics.items()
        ],
    }


def _install_code(job: Job, submit: str, workdir: Path, code: Path) -> str:
    """The training toolkit's download_and_extract (aws/sagemaker-training-toolkit
    src/sagemaker_training/files.py): sagemaker_submit_directory is an S3 tar.gz, or a local
    folder or tar file, e.g. in a code input channel (a path under /opt/ml, mapped to `workdir`).
    Returns the module directory as the job sees it (SM_MODULE_DIR)."""
    if submit.startswith("s3://"):
        archive = workdir / "sourcedir.tar.gz"
        bucket, key = split_s3_uri(submit)
        try:
            job.s3.download_file(bucket, key, str(archive))
        except ClientError as error:
            raise StepFailed(
                f"ClientError: cannot download sagemaker_submit_directory {submit}: {error}"
            ) from None
        extract_tar(archive, code)
        return submit
    if not submit.startswith("/opt/ml/"):
        raise DefinitionError(
            f"step '{job.step_name}': HyperParameters.sagemaker_submit_directory {submit!r}: "
            "expected an s3:// URI or a path under /opt/ml (e.g. a code input channel)"
        )
    local = workdir / submit[len("/opt/ml/") :]
    if local.is_dir():
        shutil.copytree(local, code, dirs_exist_ok=True)
    elif local.is_file():
        extract_tar(local, code)
    else:
        raise StepFailed(f"sagemaker_submit_directory {submit} does not exist in the job")
    return str(local)


def run_training(job: Job) -> StepResult:
    workdir, cpus = job.workdir / "training", os.cpu_count() or 1
    properties = train(job, job.arguments, job.job_name, workdir, job.log_path, cpus)
    metrics = {m["MetricName"]: m["Value"] for m in properties["FinalMetricDataList"]}
    artifacts = properties["ModelArtifacts"]["S3ModelArtifacts"]
    return StepResult(properties=properties, outputs={"model": artifacts}, metrics=metrics)


# -- the embedded SageMaker API -------------------------------------------------------------


def create_model(job: Job) -> StepResult:
    job.sagemaker.create_model(ModelName=job.job_name, **job.arguments)
    model = jsonable(job.sagemaker.describe_model(ModelName=job.job_name))
    job.log(f"created model {job.job_name}")
    return StepResult(properties=model, outputs={"model_name": job.job_name})


_group_lock = threading.Lock()


def register_model(job: Job) -> StepResult:
    """CreateModelPackage with the step's request. Like SageMaker's RegisterModel step, it
    creates the model package group when it does not exist yet."""
    group = job.arguments.get("ModelPackageGroupName")
    with _group_lock:
        try:
            job.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            job.sagemaker.create_model_package_group(
                ModelPackageGroupName=group,
                ModelPackageGroupDescription="Created by a pipeline's RegisterModel step",
            )
            job.log(f"created model package group {group}")
    arn = job.sagemaker.create_model_package(**job.arguments)["ModelPackageArn"]
    package = job.sagemaker.describe_model_package(ModelPackageName=arn)
    job.log(f"registered {arn} ({package.get('ModelApprovalStatus')})")
    return StepResult(
        properties=jsonable(package),
        outputs={"model_package_arn": arn, "version": package.get("ModelPackageVersion")},
        metadata={"registerModel": {"arn": arn}},
        events=[model_package_state_change(package)],
    )
