"""Batch transform steps: SageMaker's batch transform around the SageMaker XGBoost serving
container in algorithm mode, for text/csv.

The model comes from DescribeModel on the embedded API: its container's ModelDataUrl tar.gz is
unpacked and every file in it loaded as an xgboost model (the container serves their mean; one
`xgboost-model` in practice). For every object under TransformInput's S3Uri (S3Prefix):

1. SplitType Line: each non-empty line is a record.
2. DataProcessing.InputFilter selects the record's CSV fields sent to the model.
3. Requests: BatchStrategy MultiRecord packs consecutive filtered records, one per line, into
   requests of at most MaxPayloadInMB; SingleRecord sends one record per request. A record
   larger than the limit fails the job.
4. The container parses the request as CSV (empty field = missing), predicts, and answers one
   prediction per line (its SAGEMAKER_BATCH behaviour).
5. JoinSource Input appends the prediction's fields to the record's fields; OutputFilter
   selects from the result.
6. AssembleWith Line: output records, each ended by a newline, go to
   <S3OutputPath>/<object key relative to the input prefix>.out.

JSONPath filters: the subset SageMaker documents for CSV records: $ (all), $[a:b] (a slice,
either end optional), $[i,j,...] (indices); negative indices count from the end.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

import numpy as np

from local_runtime.clock import iso_time, now
from local_runtime.errors import DefinitionError, StepFailed
from local_runtime.jobs import NO_INSTANCES, NO_KMS, NO_TAGS, Job, StepResult
from local_runtime.s3 import download, extract_tar, split_s3_uri
from local_runtime.schema import ANY, Check, one_of

if TYPE_CHECKING:
    import xgboost as xgb

_SLICE = re.compile(r"^\$\[\s*(-?\d+)?\s*:\s*(-?\d+)?\s*\]$")
_INDICES = re.compile(r"^\$\[\s*-?\d+\s*(,\s*-?\d+\s*)*\]$")


def supported_filter(path) -> bool:
    return isinstance(path, str) and bool(path == "$" or _SLICE.match(path) or _INDICES.match(path))


JSON_PATH = Check(supported_filter, "$, $[a:b] or $[i,j,...]")
TRANSFORM_FIELDS = {
    "ModelName": ANY,
    "BatchStrategy": one_of("MultiRecord", "SingleRecord"),
    "MaxPayloadInMB": Check(lambda v: isinstance(v, int) and 0 < v <= 100, "1..100"),
    "MaxConcurrentTransforms": ANY,  # requests are sent one at a time; the output is the same
    "Environment": Check(lambda v: not v, "no environment (algorithm-mode serving)"),
    "DataProcessing": {
        "InputFilter": JSON_PATH,
        "OutputFilter": JSON_PATH,
        "JoinSource": one_of("Input", "None"),
    },
    "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": one_of("S3Prefix"), "S3Uri": ANY}},
        "ContentType": one_of("text/csv"),
        "SplitType": one_of("Line"),
        "CompressionType": one_of("None"),
    },
    "TransformOutput": {
        "S3OutputPath": ANY,
        "Accept": one_of("text/csv"),
        "AssembleWith": one_of("Line"),
        "KmsKeyId": NO_KMS,
    },
    "TransformResources": {
        "InstanceCount": ANY,
        "InstanceType": NO_INSTANCES,
        "VolumeKmsKeyId": NO_KMS,
    },
    "Tags": NO_TAGS,
}
MEGABYTE = 1024 * 1024
DEFAULT_MAX_PAYLOAD_MB = 6  # CreateTransformJob's default


def select(fields: list[str], path: str) -> list[str]:
    """The fields a supported JSONPath selects from one CSV record."""
    if path == "$":
        return fields
    if match := _SLICE.match(path):
        start, stop = (int(g) if g is not None else None for g in match.groups())
        return fields[start:stop]
    selected = []
    for text in path[2:-1].split(","):
        index = int(text)
        if not -len(fields) <= index < len(fields):
            raise StepFailed(
                f"filter {path}: the record has no field {index} ({len(fields)} fields)"
            )
        selected.append(fields[index])
    return selected


def _fields(line: str) -> list[str]:
    return next(csv.reader([line]))


def _line(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    return buffer.getvalue()


def load_models(model_dir) -> list[xgb.Booster]:
    """Every file of the model archive, as the container's get_loaded_booster does (without its
    pickle fallback: the project saves xgboost's own format)."""
    # Imported here: ~1 s of CPU (it imports scikit-learn and SciPy) that a runner process whose
    # pipelines transform nothing, and every importer of the runner, would pay.
    import xgboost as xgb

    models = []
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        try:
            booster = xgb.Booster(model_file=str(path))
        except xgb.core.XGBoostError as error:
            raise StepFailed(f"Model at {path.name} cannot be loaded: {error}") from None
        booster.set_param("nthread", 1)
        models.append(booster)
    if not models:
        raise StepFailed("the model archive holds no model file")
    return models


def predict(models: list[xgb.Booster], payload: list[str]) -> list[str]:
    """The container's /invocations for text/csv in a batch job: one prediction per line."""
    import xgboost as xgb

    try:
        rows = [["nan" if value == "" else value for value in line.split(",")] for line in payload]
        matrix = xgb.DMatrix(np.array(rows).astype(float))
    except ValueError as error:
        raise StepFailed(
            f"Loading csv data failed with Exception, please ensure data is in csv format: {error}"
        ) from None
    predictions = np.mean([m.predict(matrix, validate_features=False) for m in models], axis=0)
    return [str(value) for value in predictions.tolist()]


def requests(records: list[str], strategy: str, limit: int, where: str):
    """Consecutive records grouped into request payloads of at most `limit` bytes."""
    batch, size = [], 0
    for number, record in enumerate(records, 1):
        length = len(record.encode("utf-8")) + 1  # and its newline
        if length > limit:
            raise StepFailed(
                f"{where}: record {number} is {length} bytes, more than MaxPayloadInMB "
                f"({limit // MEGABYTE} MB)"
            )
        if batch and (strategy == "SingleRecord" or size + length > limit):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += length
    if batch:
        yield batch


def _model_container(job: Job, model_name: str) -> dict:
    model = job.sagemaker.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or next(iter(model.get("Containers") or []), None)
    where = f"step '{job.step_name}': model {model_name}"
    if not container or "sagemaker-xgboost" not in container.get("Image", ""):
        raise DefinitionError(
            f"{where}: the local runtime serves models of the SageMaker XGBoost image only "
            f"(image {container.get('Image') if container else None!r})"
        )
    if (container.get("Environment") or {}).get("SAGEMAKER_PROGRAM"):
        raise DefinitionError(
            f"{where}: serving with a user script (SAGEMAKER_PROGRAM) is not supported"
        )
    return container


def run_transform(job: Job) -> StepResult:
    args = job.arguments
    started = now()
    source = args["TransformInput"]
    if source.get("SplitType") != "Line":
        raise DefinitionError(
            f"step '{job.step_name}': TransformInput.SplitType must be Line locally"
        )
    processing = args.get("DataProcessing", {})
    input_filter = processing.get("InputFilter", "$")
    output_filter = processing.get("OutputFilter", "$")
    join = processing.get("JoinSource", "None") == "Input"
    strategy = args.get("BatchStrategy", "MultiRecord")
    limit = int(args.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)) * MEGABYTE

    container = _model_container(job, args["ModelName"])
    work = job.workdir / "transform"
    archive_dir = work / "model_archive"
    if download(job.s3, container["ModelDataUrl"], archive_dir) != 1:
        raise StepFailed(f"ModelDataUrl {container['ModelDataUrl']} is not one model.tar.gz")
    extract_tar(next(archive_dir.iterdir()), work / "model")
    models = load_models(work / "model")

    input_uri = source["DataSource"]["S3DataSource"]["S3Uri"]
    inputs = work / "input"
    if download(job.s3, input_uri, inputs) == 0:
        raise StepFailed(f'ClientError: No S3 objects found under S3 URL "{input_uri}"')
    output_uri = args["TransformOutput"]["S3OutputPath"].rstrip("/")
    bucket, prefix = split_s3_uri(output_uri)
    total = 0
    for path in sorted(p for p in inputs.rglob("*") if p.is_file()):
        relative = path.relative_to(inputs).as_posix()
        records = [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n")]
        records = [r for r in records if r.strip()]
        output_lines = []
        for batch in requests(
            [_line(select(_fields(r), input_filter)) for r in records], strategy, limit, relative
        ):
            start = len(output_lines)
            try:
                answers = predict(models, batch)
            except StepFailed as error:
                raise StepFailed(
                    f"{relative}, records {start + 1}-{start + len(batch)}: {error}"
                ) from None
            for record, answer in zip(records[start : start + len(batch)], answers, strict=True):
                joined = _fields(record) + _fields(answer) if join else _fields(answer)
                output_lines.append(_line(select(joined, output_filter)))
        key = "/".join(filter(None, [prefix, f"{relative}.out"]))
        job.s3.put_object(
            Bucket=bucket, Key=key, Body="".join(f"{line}\n" for line in output_lines).encode()
        )
        job.log(f"{relative}: {len(records)} record(s) -> s3://{bucket}/{key}")
        total += len(records)
    properties = {
        **args,
        "TransformJobName": job.job_name,
        "TransformJobArn": job.arn("transform-job"),
        "TransformJobStatus": "Completed",
        "CreationTime": iso_time(started),
        "TransformStartTime": iso_time(started),
        "TransformEndTime": iso_time(now()),
    }
    return StepResult(
        properties=properties,
        outputs={"predictions": output_uri, "records": total},
    )
