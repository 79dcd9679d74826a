"""pipeline_scripts.module_files.load_module: the one loader of Lambda handlers and step
scripts, on small files written here; and the Lambda zips, which hold what a handler imports."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import pytest

from pipeline_scripts.lambda_package import CODE_DIR, FUNCTIONS, package
from pipeline_scripts.module_files import load_module


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_imports_the_module_beside_it_and_sys_path_is_restored(tmp_path):
    folder = tmp_path / "handler_pkg"
    _write(folder / "helper_beside_9f.py", "VALUE = 42\n")
    handler = _write(
        folder / "handler_9f.py", "import helper_beside_9f\n\nVALUE = helper_beside_9f.VALUE\n"
    )
    path_before = list(sys.path)
    module = load_module(handler, "handler_under_test_9f")
    assert module.VALUE == 42
    assert sys.path == path_before
    assert sys.modules["handler_under_test_9f"] is module


def test_each_load_is_a_fresh_module_and_a_dataclass_can_be_built(tmp_path):
    script = _write(
        tmp_path / "card_9f.py",
        "from dataclasses import dataclass\n\n\n"
        "@dataclass\nclass Doc:\n    text: str\n\n\nCOUNT = []\n",
    )
    first, second = load_module(script, "card_a_9f"), load_module(script, "card_b_9f")
    assert first is not second
    first.COUNT.append(1)
    assert second.COUNT == []
    assert dataclasses.is_dataclass(first.Doc("x"))
    assert load_module(script).__name__ == "card_9f"  # default name: the file's stem


def test_without_beside_the_folder_is_not_searched(tmp_path):
    _write(tmp_path / "lonely_helper_9f.py", "VALUE = 1\n")
    script = _write(tmp_path / "lonely_9f.py", "import lonely_helper_9f\n")
    with pytest.raises(ModuleNotFoundError, match="lonely_helper_9f"):
        load_module(script, "lonely_under_test_9f", beside=False)
    assert "lonely_under_test_9f" not in sys.modules  # a failed load leaves nothing behind


def test_a_handler_in_a_checkout_imports_code_common_and_sys_path_is_restored():
    path_before = list(sys.path)
    settings = load_module(CODE_DIR / "notifier" / "settings.py", "notifier_settings_9f")
    assert json.loads((CODE_DIR.parent / "contract.json").read_text()) == settings.CONTRACT
    assert sys.path == path_before


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_zip_imports_with_only_its_own_folder_on_sys_path(function, tmp_path):
    """As Lambda runs it: the unpacked zip is the only project folder Python searches (a fresh
    interpreter, so no module of the checkout is already imported), and every handler module
    in it (a file that defines handler) imports, reading the shared names from the
    contract.json inside."""
    with zipfile.ZipFile(package(CODE_DIR / function, tmp_path / "f.zip")) as archive:
        archive.extractall(tmp_path / "unpacked")
    files = sorted((tmp_path / "unpacked").glob("*.py"))
    modules = [p.stem for p in files if "\ndef handler(" in p.read_text()]
    assert modules
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "import lambda_contract\n"
        "print(lambda_contract._contract_file())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path / "unpacked", capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": "", "AWS_DEFAULT_REGION": "us-east-1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str((tmp_path / "unpacked" / "contract.json").resolve())
