"""Which files of the inference input are the batch, and is it the content the event announced.

The batch-inference pipeline passes the batch object's URI (`--batch-uri`, from the dispatcher
Lambda) and the ETag of the S3 event (`--batch-etag`). A processing job's S3Prefix input of an
exact key also downloads every object whose key merely starts with it (batch.csv.bak,
batch.csv.gz), and it reads whatever version is current when the job starts: a processing input
cannot name an S3 version (ProcessingS3Input has S3Uri, no VersionId: botocore sagemaker model),
and the job runs with network isolation, so it cannot fetch a version itself. Hence the job
keeps only the file named by the key and, for single-part uploads (ETag = MD5 of the content;
Amazon S3 API reference, "Object" data type, ETag), checks the content it received.
"""

import hashlib
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from step_common import InputError

BATCH_SUFFIX = re.compile(r"\.csv(\.gz)?$", re.IGNORECASE)


def names_one_object(uri):
    """Whether the URI is one batch object (not a prefix of several)."""
    return bool(uri) and not uri.endswith("/") and bool(BATCH_SUFFIX.search(uri))


@contextmanager
def select_batch(folder, uri="", etag=""):
    """The folder to read: `folder` itself for a prefix run, else a temporary folder holding
    only the batch object's file (removed on leaving the block). A missing file or different
    content fails naming the key."""
    folder = Path(folder)
    if not names_one_object(uri):
        yield folder
        return
    path = folder / uri.rsplit("/", 1)[-1]
    if not path.is_file():
        raise InputError(
            f"{uri}: the batch object is missing (deleted or renamed after its upload event); "
            f"expected it as {path}"
        )
    expected = etag.strip('"')
    # A multipart ETag ("<md5 of part md5s>-<parts>") depends on the part size: not checkable.
    if expected and "-" not in expected:
        actual = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        if actual != expected:
            raise InputError(
                f"{uri}: content MD5 {actual} differs from the upload event's ETag {expected}; "
                f"the object was overwritten after the event (its new version has its own run)"
            )
    chosen = Path(tempfile.mkdtemp(prefix="batch-"))
    try:
        (chosen / path.name).symlink_to(path.resolve())
        yield chosen
    finally:
        shutil.rmtree(chosen)
