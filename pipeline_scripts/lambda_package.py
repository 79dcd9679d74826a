"""Deterministic zip packages of the Lambda functions in code/, for lambda.tf.

Same code -> same bytes and sha256 on every machine: entries sorted, a fixed timestamp and
file mode, no compression (deflate output depends on the zlib build), and only the source
files (no __pycache__). Terraform reads the zips with filebase64sha256(), so a checkout alone
never redeploys a function.

Standard library only, so the Terraform CI image runs it with a bare python3:
    python3 pipeline_scripts/lambda_package.py [output_dir]
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = REPO_ROOT / "code"
# The modules every function imports (lambda_contract.py: the reading of contract.json): each
# zip carries them at its root, beside the handler; module_files.py puts this folder on
# sys.path while it loads a handler from a checkout, so both find the same file.
COMMON_DIR = CODE_DIR / "common"
# Every other folder under code/ is one package, build/lambda/<folder>.zip: lambda.tf's
# local.functions name it as code_dir (tests check that each code_dir has a package).
FUNCTIONS = tuple(
    sorted(
        p.name
        for p in CODE_DIR.iterdir()
        if p.is_dir() and p.name not in ("__pycache__", COMMON_DIR.name)
    )
)
OUTPUT_DIR = REPO_ROOT / "build" / "lambda"
# The shared names (pipeline step names, metadata keys, ...): each zip carries a copy at its
# root, beside the handler, where the function reads it. A file rather than environment
# variables: Lambda caps a function's variables at 4 KB, and the notifier's already hold the
# team's custom messages ("Lambda quotas", AWS Lambda Developer Guide).
CONTRACT_FILE = REPO_ROOT / "contract.json"

# The earliest time a zip entry can carry (DOS time starts in 1980).
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--: Lambda needs it readable by its runtime user


def source_files(directory: Path) -> list[Path]:
    """The files of a function's code, sorted by their path in the zip."""
    files = [
        p
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    ]
    return sorted(files, key=lambda p: p.relative_to(directory).as_posix())


def package(directory: Path, output: Path) -> Path:
    """Write directory's source files, code/common's and contract.json to output as a
    deterministic zip; return output."""
    files = source_files(directory)
    if not files:
        raise SystemExit(f"{directory}: no files to package")
    entries = {path.relative_to(directory).as_posix(): path for path in files}
    for shared in [*source_files(COMMON_DIR), CONTRACT_FILE]:
        if shared.name in entries:
            raise SystemExit(f"{directory}: {shared.name} is added by the packager; remove it")
        entries[shared.name] = shared
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in sorted(entries.items()):
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = FILE_MODE << 16
            info.create_system = 3  # Unix, so the mode above is what Lambda reads
            archive.writestr(info, path.read_bytes())
    return output


def package_all(output_dir: Path = OUTPUT_DIR) -> list[Path]:
    return [package(CODE_DIR / name, output_dir / f"{name}.zip") for name in FUNCTIONS]


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT_DIR
    for zip_path in package_all(target):
        print(zip_path)
