"""S3 as a job sees it: S3Prefix downloads, output uploads, JSON reads and model archives."""

from __future__ import annotations

import collections
import gzip
import io
import shutil
import tarfile
import threading
from pathlib import Path

from botocore.exceptions import ClientError

from local_runtime.errors import StepFailed
from local_runtime.expressions import load_json_text


def split_s3_uri(uri) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise StepFailed(f"{uri!r} is not an S3 URI (expected s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


# A job's files move with one GetObject or PutObject each: boto3's download_file adds a
# HeadObject and a transfer thread pool per call (17 vs 10 ms of CPU per small object against
# the embedded API, all in this process). One PUT takes at most 5 GB
# (https://docs.aws.amazon.com/AmazonS3/latest/userguide/upload-objects.html): larger files go
# through upload_file's multipart upload.
SINGLE_PUT_LIMIT = 5 * 1024**3


def get_file(s3, bucket: str, key: str, path: Path) -> None:
    with path.open("wb") as out:
        shutil.copyfileobj(s3.get_object(Bucket=bucket, Key=key)["Body"], out, 1 << 20)


def put_file(s3, path: Path, bucket: str, key: str) -> None:
    if path.stat().st_size > SINGLE_PUT_LIMIT:
        s3.upload_file(str(path), bucket, key)
        return
    with path.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


class _SmallObjects:
    """Small objects this process has fetched, by what their listing says identifies their
    content: (bucket, key, ETag, size, LastModified). Every job downloads the whole code bundle
    (S3Prefix: a GetObject per file), the same ~20 objects job after job: in the demo, 511 of
    its 610 GetObject calls, about half of the runner's CPU. An object that is overwritten lists
    a new ETag and LastModified (S3 API reference, Object: the ETag "reflects changes only to
    the contents of an object", LastModified is its creation date:
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_Object.html), and one that is deleted is
    not listed, so a job still gets what GetObject would return now; the listing itself is
    always made."""

    MAX_SIZE = 1 << 20  # larger objects are few, and their bytes cost more than the call
    MAX_TOTAL = 64 << 20

    def __init__(self):
        self._objects: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
        self._total = 0
        self._lock = threading.Lock()  # independent steps download at the same time

    def get(self, identity: tuple) -> bytes | None:
        with self._lock:
            data = self._objects.get(identity)
            if data is not None:
                self._objects.move_to_end(identity)
            return data

    def put(self, identity: tuple, data: bytes) -> None:
        with self._lock:
            if identity in self._objects:
                return
            self._objects[identity] = data
            self._total += len(data)
            while self._total > self.MAX_TOTAL:
                self._total -= len(self._objects.popitem(last=False)[1])


_small_objects = _SmallObjects()


def _fetch(s3, bucket: str, item: dict, path: Path) -> None:
    """One listed object into `path`: small ones through _small_objects."""
    key = item["Key"]
    if item["Size"] > _SmallObjects.MAX_SIZE:
        get_file(s3, bucket, key, path)
        return
    identity = (bucket, key, item.get("ETag"), item["Size"], item.get("LastModified"))
    data = _small_objects.get(identity)
    if data is None:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        _small_objects.put(identity, data)
    path.write_bytes(data)


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
                _fetch(s3, bucket, item, path)
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
        put_file(s3, path, bucket, key)
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
