"""Lambda: fingerprint the training data a model is trained on (lineage).

Called by the training pipelines' Lambda step; the result is stored on the registered model
version (CustomerMetadataProperties) so anyone can tell which data produced it.

event:   {"s3_uri": "s3://bucket/key-or-prefix"}
returns: {"data_version": str}, a valid CustomerMetadataProperties value (see VALUE_CHARS):
         object  -> "s3://b/k@<VersionId>", or "s3://b/k@etag:<etag>" when the bucket is unversioned
         prefix  -> "s3://b/prefix/ objects=N sha256=<16 hex>", the hash taken over the sorted
                    lines "key<TAB><VersionId or etag:<etag>>" of the current objects under it
         A URI too long for the value, or with characters the value may not hold, is shown
         shortened ("...") with those characters as "_"; an object then gets
         " sha256=<16 hex>" of its exact key and label, so the value still identifies it.
IAM:     s3:GetObject, s3:GetObjectVersion (head), s3:ListBucketVersions (prefix listing)

Integrity of a model's artifacts (issue 10 point 6), the one place their sha256 is taken:

event:   {"action": "record_integrity", "model_uri": str, "transform_uri": str}
returns: {"model_sha256", "model_version_id", "transform_sha256", "transform_version_id"}:
         the current objects' sha256 (64 hex) and S3 VersionId ("null" when unversioned),
         recorded on the registered version by the training pipelines.
event:   {"action": "verify_integrity", "model_uri", "transform_uri", and the four recorded
         values above, as the model resolver returns them from the approved version}
returns: {"model_uri", "transform_uri"} unchanged once the current objects match; any
         difference (or nothing recorded) fails naming the object, field and both values.
IAM:     s3:GetObject, s3:GetObjectVersion on the model artifacts prefix too

The labelled batches retraining learns from (issue 10 point 4):

event:   {"action": "labelled_batches", "labels_uri": "s3://b/<p>/labels/",
          "predictions_uri": "s3://b/<p>/predictions/", "snapshot_uri": "s3://b/<p>/x/",
          "days": int (0: none), "kms_key": key ARN for the copies (optional)}
returns: {"snapshot_uri", "manifest_uri", "labelled_batches": "batches=N sha256=<16 hex>"}
         Every current <batch id>.labels.csv directly under labels_uri whose version arrived
         within `days`, with the batch it labels: the object version the scoring run read, as
         its batch_report.json under <predictions_uri><batch id>/report/ records it. Both
         exact versions are copied (server side) to <snapshot_uri><sha256>/ (labels/<id>/,
         batches/<id>/), with manifest.json listing each one's URI, version id, ETag and
         sha256. The folder is named by the hash of what it holds, so the same labelled set is
         the same folder (the step cache's key) and a different set is another.
IAM:     s3:ListBucketVersions (labels prefix), s3:GetObject, s3:GetObjectVersion (labels,
         the batch reports, the inference prefix), s3:PutObject (snapshot prefix)

The output names of every action are contract.json lambda_outputs.data_version (integrity_outputs
for record_integrity): the pipeline steps declare and read the same names.
"""

import hashlib
import json
import logging
import unicodedata
from datetime import UTC, datetime, timedelta

import boto3
from botocore.exceptions import ClientError
from lambda_contract import CONTRACT  # code/common/: the shared names

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)


# Each action's output names (contract.json lambda_outputs): the pipeline steps read them.
# verify_integrity and record_integrity take the artifacts' URIs under VERIFY's names.
OUTPUTS = CONTRACT["lambda_outputs"]["data_version"]
VERSION, VERIFY, LABELLED = (
    OUTPUTS[action] for action in ("data_version", "verify_integrity", "labelled_batches")
)

# Where the result is recorded: CreateModelPackage's CustomerMetadataProperties. botocore's
# SageMaker service model, shape CustomerMetadataValue: length 1..256, pattern
# ^([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)$ (letters, separators, numbers and these characters).
MAX_LENGTH = 256
VALUE_CHARS = "_.:/=+-@"


class DataVersionError(ValueError):
    """The URI is malformed, holds no objects, or cannot be read; the message names it."""


def _log(message: str, **fields) -> None:
    logger.info(json.dumps({"message": message, **fields}))


def _parse(uri, field="s3_uri") -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise DataVersionError(
            f"event field '{field}' must be an S3 URI like 's3://bucket/prefix/'; got {uri!r}"
        )
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or any(ch.isspace() for ch in bucket):
        raise DataVersionError(
            f"event field '{field}' {uri!r} is not a valid S3 URI: expected 's3://<bucket>/<key>' "
            "with a non-empty bucket name without whitespace"
        )
    return bucket, key


def _label(version_id, etag: str) -> str:
    # Unversioned buckets (and objects written while versioning was suspended) report "null".
    if version_id and version_id != "null":
        return version_id
    return "etag:" + etag.strip('"')


def _allowed(ch: str) -> bool:
    # \p{L}, \p{Z}, \p{N}: the Unicode general categories L*, Z* and N*.
    return unicodedata.category(ch)[0] in "LZN" or ch in VALUE_CHARS


def _clean(text: str) -> str:
    return "".join(ch if _allowed(ch) else "_" for ch in text)


def _sha16(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _fit(uri: str, suffix: str) -> str:
    """uri + suffix as a valid metadata value: characters the value may not hold become "_"
    and the middle of the URI (bucket and file name stay) is cut to fit."""
    uri, suffix = _clean(uri), _clean(suffix)
    room = MAX_LENGTH - len(suffix)
    if len(uri) > room:
        keep = room - len("...")
        uri = uri[: keep // 2] + "..." + uri[len(uri) - (keep - keep // 2) :]
    return uri + suffix


def _object_version(uri: str, label: str) -> str:
    """ "uri@label", or, when that is not a valid value as it is, the fitted form plus the hash
    of the exact URI and label (cleaning and cutting could make two objects look alike)."""
    exact = f"{uri}@{label}"
    if len(exact) <= MAX_LENGTH and all(_allowed(ch) for ch in exact):
        return exact
    digest = _sha16(uri + "\t" + label)
    return _fit(uri, f"@{label[:64]} sha256={digest}")


def _head(s3, bucket: str, key: str):
    """HeadObject response, or None when no current object has this exact key."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise DataVersionError(f"cannot read s3://{bucket}/{key}: {error}") from error


def _current_objects(s3, bucket: str, prefix: str) -> list[str]:
    """Sorted "key<TAB>label" lines for the current (latest, not deleted) objects."""
    lines = []
    try:
        # ListObjectVersions works on unversioned buckets too (VersionId "null"), so one call
        # path covers both; deleted keys have a delete marker as latest and drop out here.
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for version in page.get("Versions", []):
                if version["IsLatest"]:
                    lines.append(
                        f"{version['Key']}\t{_label(version['VersionId'], version['ETag'])}"
                    )
    except ClientError as error:
        raise DataVersionError(f"cannot list s3://{bucket}/{prefix}: {error}") from error
    return sorted(lines)


ARTIFACTS = ("model", "transform")  # VERIFY's roles; integrity_outputs start with them


def _digest(s3, uri: str, field: str) -> dict:
    """sha256 and VersionId of the current object at uri, read in chunks (model.tar.gz may
    be larger than the Lambda's memory)."""
    bucket, key = _parse(uri, field)
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as error:
        raise DataVersionError(f"cannot read {uri}: {error}") from error
    digest = hashlib.sha256()
    for chunk in response["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    # GetObject reports VersionId only for a versioned bucket; "null" as S3 itself names an
    # unversioned object's version (Amazon S3 user guide, "Working with objects in a
    # versioning-suspended bucket"), a valid metadata value.
    return {"sha256": digest.hexdigest(), "version_id": response.get("VersionId") or "null"}


def record_integrity(event) -> dict:
    s3 = boto3.client("s3")
    result = {}
    for name in ARTIFACTS:
        current = _digest(s3, event.get(VERIFY[name]), VERIFY[name])
        result[f"{name}_sha256"] = current["sha256"]
        result[f"{name}_version_id"] = current["version_id"]
    _log("recorded artifact integrity", **result)
    return result


def verify_integrity(event) -> dict:
    s3 = boto3.client("s3")
    for name in ARTIFACTS:
        uri = event.get(VERIFY[name])
        current = _digest(s3, uri, VERIFY[name])
        for field in ("sha256", "version_id"):
            recorded = event.get(f"{name}_{field}") or ""
            if recorded != current[field]:
                raise DataVersionError(
                    f"integrity check failed for {uri}: {name}_{field} recorded on the approved "
                    f"model version is {recorded or 'missing'!r} but the object now has "
                    f"{current[field]!r}; the artifact changed after registration (re-register "
                    "it with the training pipeline and approve that version)"
                )
    _log("verified artifact integrity", model_uri=event[VERIFY["model"]])
    return {VERIFY[name]: event[VERIFY[name]] for name in ARTIFACTS}


# -- labelled batches for retraining (issue 10 point 4) -------------------------------------

LABELS_SUFFIX = ".labels.csv"  # code/batch_dispatcher LABELS_SUFFIX
# PreprocessBatch's report of the batch it scored (pipeline_scripts/retraining.py
# BATCH_REPORT_FOLDER): <predictions of the batch>/report/batch_report.json.
BATCH_REPORT = "report/batch_report.json"


def _prefix(event, field) -> tuple[str, str]:
    bucket, key = _parse(event.get(field), field)
    if key and not key.endswith("/"):
        raise DataVersionError(
            f"event field '{field}' {event[field]!r}: expected a prefix ending in '/'"
        )
    return bucket, key


def _source(uri: str, version_id: str, etag: str) -> dict:
    """CopySource (and its precondition) naming exactly this version of uri: the version id,
    or on an unversioned bucket ("null"/"") the ETag (CopySourceIfMatch, CopyObject API)."""
    bucket, key = _parse(uri)
    if version_id and version_id != "null":
        return {"CopySource": {"Bucket": bucket, "Key": key, "VersionId": version_id}}
    return {"CopySource": {"Bucket": bucket, "Key": key}, "CopySourceIfMatch": etag}


def _sha256_of(s3, uri: str, version_id: str) -> str:
    bucket, key = _parse(uri)
    extra = {"VersionId": version_id} if version_id and version_id != "null" else {}
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key, **extra)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _batch_of(s3, labels_uri: str, bucket: str, report_key: str) -> dict:
    """The batch version a labels file labels, from the scoring run's batch_report.json."""
    try:
        report = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
    except ClientError as error:
        raise DataVersionError(
            f"{labels_uri}: no batch report at s3://{bucket}/{report_key} "
            f"({error.response['Error']['Code']}); "
            "expected the batch to have been scored by the batch-inference pipeline (upload the "
            "batch, or delete the labels file so retraining does not wait for it)"
        ) from error
    if not str(report.get("batch_uri", "")).startswith("s3://"):
        raise DataVersionError(
            f"{labels_uri}: s3://{bucket}/{report_key} names no 'batch_uri'; expected the report "
            "of a run over one batch object (started by the batch dispatcher)"
        )
    return {"uri": report["batch_uri"], "version_id": report.get("batch_version") or "null",
            "etag": str(report.get("batch_etag", "")).strip('"')}  # fmt: skip


def _labels_in_window(s3, bucket: str, prefix: str, days: int) -> list[dict]:
    since = datetime.now(UTC) - timedelta(days=days)
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            name = version["Key"][len(prefix) :]
            if (not version["IsLatest"] or "/" in name or not name.endswith(LABELS_SUFFIX)
                    or version["LastModified"] < since):  # fmt: skip
                continue
            found.append({"batch_id": name[: -len(LABELS_SUFFIX)],
                          "uri": f"s3://{bucket}/{version['Key']}",
                          "version_id": version["VersionId"] or "null",
                          "etag": version["ETag"].strip('"')})  # fmt: skip
    return sorted(found, key=lambda labels: labels["batch_id"])


def labelled_batches(event) -> dict:
    labels_bucket, labels_prefix = _prefix(event, "labels_uri")
    _, predictions_prefix = _prefix(event, "predictions_uri")
    snapshot_bucket, snapshot_prefix = _prefix(event, "snapshot_uri")
    days = event.get("days")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise DataVersionError(f"event field 'days' is {days!r}; expected a whole number >= 0")
    s3 = boto3.client("s3")
    entries = []
    if days:
        for labels in _labels_in_window(s3, labels_bucket, labels_prefix, days):
            batch_id = labels.pop("batch_id")
            report_key = f"{predictions_prefix}{batch_id}/{BATCH_REPORT}"
            batch = _batch_of(s3, labels["uri"], labels_bucket, report_key)
            entries.append({"batch_id": batch_id, "labels": labels, "batch": batch})
    # Named by what it holds: the exact versions of every labels file and batch.
    digest = _sha16("\n".join(
        f"{e[part]['uri']}\t{e[part]['version_id']}\t{e[part]['etag']}"
        for e in entries for part in ("labels", "batch")
    ))  # fmt: skip
    folder = f"{snapshot_prefix}{digest}/"
    # SSE-KMS with the project key, as the jobs write their outputs (CopyObject and PutObject
    # take SSEKMSKeyId as key ID, key ARN or alias: Amazon S3 API reference, CopyObject,
    # x-amz-server-side-encryption-aws-kms-key-id).
    encryption = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": event["kms_key"]} if event.get(
        "kms_key") else {}  # fmt: skip
    for entry in entries:
        batch_id = entry["batch_id"]
        for part, key in (
            ("labels", f"{folder}labels/{batch_id}/{batch_id}{LABELS_SUFFIX}"),
            ("batch", f"{folder}batches/{batch_id}/{entry['batch']['uri'].rsplit('/', 1)[-1]}"),
        ):
            item = entry[part]
            try:
                source = _source(item["uri"], item["version_id"], item["etag"])
                s3.copy_object(Bucket=snapshot_bucket, Key=key, **encryption, **source)
                # Of the copy, which is what training reads.
                item["sha256"] = _sha256_of(s3, f"s3://{snapshot_bucket}/{key}", "")
            except ClientError as error:
                raise DataVersionError(
                    f"cannot copy {item['uri']} version {item['version_id']} (ETag "
                    f"{item['etag'] or '-'}) for labelled batch {batch_id}: {error}; expected "
                    "that exact version to still exist (it was deleted or overwritten)"
                ) from error
            item["snapshot_uri"] = f"s3://{snapshot_bucket}/{key}"
    summary = f"batches={len(entries)} sha256={digest}"
    manifest = {"labelled_batches": entries, "summary": summary, "window_days": days}
    s3.put_object(Bucket=snapshot_bucket, Key=f"{folder}manifest.json", **encryption,
                  Body=json.dumps(manifest, indent=1, sort_keys=True).encode())  # fmt: skip
    _log(
        "snapshot of labelled batches", summary=summary, snapshot=f"s3://{snapshot_bucket}/{folder}"
    )
    return {
        LABELLED["snapshot"]: f"s3://{snapshot_bucket}/{folder}",
        LABELLED["manifest"]: f"s3://{snapshot_bucket}/{folder}manifest.json",
        LABELLED["summary"]: summary,
    }


def handler(event, context):
    action = event.get("action") if isinstance(event, dict) else None
    if action == "record_integrity":
        return record_integrity(event)
    if action == "verify_integrity":
        return verify_integrity(event)
    if action == "labelled_batches":
        return labelled_batches(event)
    if action is not None:
        raise DataVersionError(
            f"event field 'action' is {action!r}; expected none (data version), "
            "'record_integrity', 'verify_integrity' or 'labelled_batches'"
        )
    uri = event.get("s3_uri") if isinstance(event, dict) else None
    bucket, key = _parse(uri)
    s3 = boto3.client("s3")

    head = _head(s3, bucket, key) if key and not key.endswith("/") else None
    if head is not None:
        data_version = _object_version(
            f"s3://{bucket}/{key}", _label(head.get("VersionId"), head["ETag"])
        )
        _log("versioned training data object", s3_uri=uri, data_version=data_version)
        return {VERSION["version"]: data_version}

    # Not an object: a prefix. The trailing "/" stops "data" from also matching "data2/...".
    prefix = key if not key or key.endswith("/") else key + "/"
    lines = _current_objects(s3, bucket, prefix)
    if not lines:
        raise DataVersionError(
            f"no training data at {uri}: it is not an object and no objects exist under "
            f"s3://{bucket}/{prefix}. Upload the training data there or fix the pipeline's "
            "training data parameter."
        )
    # The hash covers every exact key, so a cleaned or cut prefix still identifies the data.
    digest = _sha16("\n".join(lines))
    data_version = _fit(f"s3://{bucket}/{prefix}", f" objects={len(lines)} sha256={digest}")
    _log(
        "versioned training data prefix", s3_uri=uri, objects=len(lines), data_version=data_version
    )
    return {VERSION["version"]: data_version}
