"""Step code shipped to S3 at a content-addressed location.

All of `scripts/` is one bundle, `<code prefix>/<sha256 of the bundle>/scripts/`: every `.py`
file, packages in subfolders included (`scripts/dq/` is the data-quality engine). Every
processing job receives the whole bundle (so scripts share `step_common.py` and `dq`) and the
training job gets the same files as `<code prefix>/<sha256>/sourcedir.tar.gz`. Rendering therefore
needs no AWS call, the same code always renders to the same URIs (byte-identical
definitions), and uploading is idempotent: a change makes a new bundle and never overwrites
what an earlier execution ran.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS_DIR = REPO_ROOT / "scripts"
TRAINING_ENTRY_POINT = "train.py"
TRAINING_SOURCE_ARCHIVE = "sourcedir.tar.gz"


@dataclass(frozen=True)
class CodeAsset:
    """One object to upload: its bytes and where the definitions expect it."""

    s3_uri: str
    body: bytes

    @property
    def bucket_and_key(self) -> tuple[str, str]:
        bucket, _, key = self.s3_uri.removeprefix("s3://").partition("/")
        return bucket, key


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
    """The content-addressed S3 location of the step code bundle under `code_prefix_uri`."""

    def __init__(self, code_prefix_uri: str, scripts_dir: Path = SCRIPTS_DIR):
        self.code_prefix_uri = code_prefix_uri.rstrip("/")
        self.scripts_dir = scripts_dir

    @cached_property
    def _files(self) -> dict[str, bytes]:
        """Every .py file under scripts/ by its POSIX path relative to it (`dq/checks.py`),
        sorted by that path: the hash and the archive do not depend on the file system. A
        processing job's S3Prefix input keeps each object's key below the prefix as its path
        below LocalPath (as the SDK's local mode does, sagemaker/core/common_utils.py
        `_download_files_under_prefix`), so `dq/` lands beside data_quality.py in
        /opt/ml/processing/input/code, the folder Python puts first on sys.path."""
        files = {}
        for path in self.scripts_dir.rglob("*.py"):
            relative = path.relative_to(self.scripts_dir)
            if not any(part.startswith((".", "__pycache__")) for part in relative.parts):
                files[relative.as_posix()] = path.read_bytes()
        return dict(sorted(files.items()))

    @cached_property
    def bundle_uri(self) -> str:
        """S3 prefix (ending in /) holding every step script; a processing job's code input."""
        digest = hashlib.sha256()
        for name, body in self._files.items():
            digest.update(f"{name}\0{hashlib.sha256(body).hexdigest()}\n".encode())
        return f"{self.code_prefix_uri}/{digest.hexdigest()}/scripts/"

    def training_source(self) -> str:
        """S3 URI of the bundle as sourcedir.tar.gz (script mode runs train.py from it)."""
        return f"{self.bundle_uri.removesuffix('scripts/')}{TRAINING_SOURCE_ARCHIVE}"

    def assets(self) -> list[CodeAsset]:
        """Every object the rendered definitions reference, in a stable order."""
        assets = [CodeAsset(f"{self.bundle_uri}{n}", b) for n, b in self._files.items()]
        archive = deterministic_tar_gz(self._files)
        return [*assets, CodeAsset(self.training_source(), archive)]
