"""Step code shipped to S3 at content-addressed locations.

The pipeline definitions reference code by the SHA-256 of its bytes, so rendering needs no AWS
call, the same code always renders to the same URI (byte-identical definitions) and uploading is
idempotent: a changed script gets a new URI and never overwrites what an earlier execution ran.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "scripts"
TRAINING_ENTRY_POINT = "train.py"


@dataclass(frozen=True)
class CodeAsset:
    """One object to upload: its bytes and where the definitions expect it."""

    s3_uri: str
    body: bytes

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.s3_uri.removeprefix("s3://").partition("/")
        return bucket, key


def _content_addressed(code_prefix_uri: str, name: str, body: bytes) -> CodeAsset:
    digest = hashlib.sha256(body).hexdigest()
    return CodeAsset(f"{code_prefix_uri}/{digest}/{name}", body)


def deterministic_tar_gz(files: dict[str, bytes]) -> bytes:
    """A tar.gz whose bytes depend only on the file names and contents (no mtimes, owners)."""
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    gz_buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=gz_buffer, mode="wb", mtime=0, filename="") as gz:
        gz.write(tar_buffer.getvalue())
    return gz_buffer.getvalue()


class StepCode:
    """Content-addressed S3 locations of the step scripts under `code_prefix_uri`."""

    def __init__(self, code_prefix_uri: str, scripts_dir: Path = SCRIPTS_DIR):
        self.code_prefix_uri = code_prefix_uri.rstrip("/")
        self.scripts_dir = scripts_dir
        self._assets: dict[str, CodeAsset] = {}

    def script(self, file_name: str) -> str:
        """S3 URI of one processing script (a processing job receives a single file)."""
        if file_name not in self._assets:
            body = (self.scripts_dir / file_name).read_bytes()
            self._assets[file_name] = _content_addressed(self.code_prefix_uri, file_name, body)
        return self._assets[file_name].s3_uri

    def training_source(self) -> str:
        """S3 URI of sourcedir.tar.gz holding the training entry point (script mode)."""
        key = "sourcedir.tar.gz"
        if key not in self._assets:
            entry = (self.scripts_dir / TRAINING_ENTRY_POINT).read_bytes()
            body = deterministic_tar_gz({TRAINING_ENTRY_POINT: entry})
            self._assets[key] = _content_addressed(self.code_prefix_uri, key, body)
        return self._assets[key].s3_uri

    def assets(self) -> list[CodeAsset]:
        """Every object the rendered definitions reference, in a stable order."""
        return [self._assets[name] for name in sorted(self._assets)]
