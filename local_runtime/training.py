"""Training jobs as the SageMaker training toolkit runs them (script mode), without a container.

<job dir>/ is /opt/ml: code/ (sourcedir.tar.gz), input/config/*.json, input/data/<channel>/,
model/ (tarred to <S3OutputPath>/<job>/output/model.tar.gz), output/data/ and output/failure,
with the SM_* environment of the SageMaker training toolkit. A failed training job's reason is
output/failure if written, else the last non-empty stderr line, as the training toolkit
reports it. A training step and every trial of a tuning step (tuning.py) run through train().
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from local_runtime.clock import iso_time, now
from local_runtime.errors import DefinitionError, StepFailed
from local_runtime.jobs import (
    NO_CONTAINER,
    NO_IAM,
    NO_INSTANCES,
    NO_KMS,
    NO_NETWORK_CONTROL,
    NO_TAGS,
    ONE_INSTANCE,
    S3_DATA_SOURCE,
    Job,
    StepResult,
)
from local_runtime.processes import failure_reason, job_environment, max_runtime, run_process
from local_runtime.s3 import (
    download_input,
    extract_tar,
    get_file,
    put_file,
    split_s3_uri,
    tar_gz,
)
from local_runtime.schema import ANY, Ignored, one_of
from pipeline_scripts.xgboost_image import as_logged, builtin_metric_definitions, is_xgboost_image

CHANNEL = {
    "ChannelName": ANY,
    "DataSource": {"S3DataSource": S3_DATA_SOURCE},
    "ContentType": ANY,
    "CompressionType": one_of("None"),
    "InputMode": one_of("File"),
    "RecordWrapperType": one_of("None"),
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


@dataclass(frozen=True)
class _ScriptMode:
    """What the toolkit reads from the hyperparameters: the program, its source and the
    script's own hyperparameters (decoded)."""

    raw: dict[str, str]  # hyperparameters.json
    program: str  # sagemaker_program
    submit: str  # sagemaker_submit_directory
    user: dict


@dataclass(frozen=True)
class _OptMl:
    """The job's /opt/ml tree, in `root`."""

    root: Path

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name


def train(job: Job, request: dict, name: str, workdir: Path, log_path: Path, cpus: int) -> dict:
    """Runs one training job (CreateTrainingJob `request`) in `workdir`, which stands for
    /opt/ml, on `cpus` cores (its instance's); returns its DescribeTrainingJob-shaped
    properties. Raises StepFailed."""
    created = now()
    script = _script_mode(job, request)
    opt_ml = _OptMl(workdir)
    for folder in (opt_ml.code, opt_ml.config, opt_ml.model, opt_ml.output_data):
        folder.mkdir(parents=True, exist_ok=True)
    channels = request.get("InputDataConfig", [])
    _download_channels(job, channels, opt_ml)
    module_dir = _install_script(job, script, opt_ml)
    _write_input_config(script, channels, opt_ml)
    variables = _toolkit_environment(name, script, channels, opt_ml, module_dir, cpus)
    started = now()
    _run_script(request, script, opt_ml, variables, log_path)
    ended = now()
    metrics = job_metrics(
        request.get("AlgorithmSpecification", {}),
        log_path.read_text(encoding="utf-8", errors="replace"),
    )
    output_path = f"{request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{name}/output"
    _upload_artifacts(job, opt_ml, output_path)
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


def _script_mode(job: Job, request: dict) -> _ScriptMode:
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
    user = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    return _ScriptMode(raw, program, submit, user)


def _download_channels(job: Job, channels: list[dict], opt_ml: _OptMl) -> None:
    for channel in channels:
        source = channel["DataSource"]["S3DataSource"]["S3Uri"]
        target = opt_ml.channel(channel["ChannelName"])
        download_input(job.s3, source, target, f"channel '{channel['ChannelName']}'")


def _install_script(job: Job, script: _ScriptMode, opt_ml: _OptMl) -> str:
    """The submitted source in code/; returns the module directory (SM_MODULE_DIR)."""
    module_dir = _install_code(job, script.submit, opt_ml.root, opt_ml.code)
    if not (opt_ml.code / script.program).is_file():
        raise StepFailed(f"sagemaker_program '{script.program}' is not in {script.submit}")
    return module_dir


def _write_input_config(script: _ScriptMode, channels: list[dict], opt_ml: _OptMl) -> None:
    """input/config/*.json as SageMaker writes them for the toolkit."""
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
        ("hyperparameters.json", script.raw),
        ("inputdataconfig.json", input_config),
        ("resourceconfig.json", resources),
    ):
        (opt_ml.config / file_name).write_text(json.dumps(document, indent=2))


def _toolkit_environment(
    name: str, script: _ScriptMode, channels: list[dict], opt_ml: _OptMl, module_dir: str, cpus: int
) -> dict[str, str]:
    """The SM_* variables the training toolkit gives a script-mode program."""
    names = sorted(c["ChannelName"] for c in channels)
    return {
        "TRAINING_JOB_NAME": name,
        "SM_MODEL_DIR": str(opt_ml.model),
        "SM_OUTPUT_DATA_DIR": str(opt_ml.output_data),
        "SM_OUTPUT_DIR": str(opt_ml.root / "output"),
        "SM_INPUT_DIR": str(opt_ml.root / "input"),
        "SM_INPUT_CONFIG_DIR": str(opt_ml.config),
        "SM_CHANNELS": _env_value(names),
        "SM_HPS": _env_value(script.user),
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": _env_value(["algo-1"]),
        "SM_NUM_CPUS": str(cpus),
        # Jobs sharing this machine get a share each, as each would have its own instance;
        # OpenMP (xgboost) would otherwise start a thread per core in every job.
        "OMP_NUM_THREADS": str(cpus),
        "SM_NUM_GPUS": "0",
        "SM_MODULE_DIR": module_dir,
        "SM_USER_ENTRY_POINT": script.program,
        **{f"SM_CHANNEL_{n.upper()}": str(opt_ml.channel(n)) for n in names},
        **{f"SM_HP_{k.upper()}": _env_value(v) for k, v in script.user.items()},
    }


def _run_script(
    request: dict, script: _ScriptMode, opt_ml: _OptMl, variables: dict, log_path: Path
) -> None:
    """Runs the program as the toolkit does: `python <program> --<hyperparameter> <value>...`
    in code/. Raises StepFailed with the job's failure reason."""
    command = [sys.executable, script.program]
    for key in sorted(script.user):
        command += [f"--{key}" if len(key) > 1 else f"-{key}", _flag_value(script.user[key])]
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"[local runtime] /opt/ml is {opt_ml.root}; running {' '.join(command)}\n")
    outcome = run_process(
        command,
        env=job_environment(request.get("Environment"), **variables),
        cwd=opt_ml.code,
        log_path=log_path,
        max_runtime=max_runtime(request),
    )
    if outcome.returncode != 0 or outcome.timed_out:
        # Script mode: the training toolkit catches the script's failure and writes its
        # ExecuteUserScriptError, stderr included, to /opt/ml/output/failure
        # (aws/sagemaker-training-toolkit src/sagemaker_training/trainer.py), so a training
        # job's reason is its stderr when the script itself wrote nothing.
        raise StepFailed(failure_reason(outcome, opt_ml.root / "output" / "failure"))


def _upload_artifacts(job: Job, opt_ml: _OptMl, output_path: str) -> None:
    """model/ as <output_path>/model.tar.gz and, when the job wrote any, output/data/ as
    output.tar.gz."""
    model_archive = opt_ml.root / "model.tar.gz"
    tar_gz(opt_ml.model, model_archive)
    bucket, key = split_s3_uri(f"{output_path}/model.tar.gz")
    put_file(job.s3, model_archive, bucket, key)
    if any(opt_ml.output_data.iterdir()):
        tar_gz(opt_ml.output_data, opt_ml.root / "output.tar.gz")
        bucket, key = split_s3_uri(f"{output_path}/output.tar.gz")
        put_file(job.s3, opt_ml.root / "output.tar.gz", bucket, key)


def _install_code(job: Job, submit: str, workdir: Path, code: Path) -> str:
    """The training toolkit's download_and_extract (aws/sagemaker-training-toolkit
    src/sagemaker_training/files.py): sagemaker_submit_directory is an S3 tar.gz, or a local
    folder or tar file, e.g. in a code input channel (a path under /opt/ml, mapped to `workdir`).
    Returns the module directory as the job sees it (SM_MODULE_DIR)."""
    if submit.startswith("s3://"):
        archive = workdir / "sourcedir.tar.gz"
        bucket, key = split_s3_uri(submit)
        try:
            get_file(job.s3, bucket, key, archive)
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
