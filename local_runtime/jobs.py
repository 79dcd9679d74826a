"""Job steps without containers: what every job step shares (the Job, its StepResult and the
notes on fields with no local effect), processing, CreateModel and RegisterModel. Training and
tuning are in training.py and tuning.py, transform in transform.py.

A job runs its command with this Python interpreter (the venv pins the libraries of the
project's SageMaker image) in a per-execution sandbox that stands in for the container's
/opt/ml tree. For processing, <step dir>/processing/ is /opt/ml/processing: the inputs are
downloaded to input/<name>/, the command runs with "/opt/ml/processing" in its entrypoint and
arguments replaced by this directory (a documented path mapping, not a mount, so it works on
macOS and for any user), and each output's LocalPath is uploaded to its S3Uri when the command
succeeds.

Each job's stdout and stderr go to one log file. A failed processing job's reason is
/opt/ml/output/message if the script wrote one, else SageMaker's generic "AlgorithmError: See
job logs for more information" (never the script's stderr, which AWS leaves in the logs).
StoppingCondition.MaxRuntimeInSeconds is enforced by killing the process group (processes.py);
inputs and outputs move through s3.py.

Fields a step may carry are declared per step type (the *_FIELDS schemas, in schema.py's
mini-language). A field marked Ignored is accepted and has no local effect (the reason is
written to the step log); any other field is an error naming the step and the field, never
silently dropped.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_runtime.clock import iso_time, now
from local_runtime.errors import DefinitionError, StepFailed
from local_runtime.events import model_package_state_change
from local_runtime.expressions import jsonable
from local_runtime.processes import (
    PROCESSING_ALGORITHM_ERROR,
    failure_reason,
    job_environment,
    max_runtime,
    run_process,
)
from local_runtime.s3 import download_input, upload_dir
from local_runtime.schema import ANY, Check, Ignored, one_of

PROCESSING_ROOT = "/opt/ml/processing"


# -- field schemas --------------------------------------------------------------------------

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
