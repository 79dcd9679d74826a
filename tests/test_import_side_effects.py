"""Importing pipeline_scripts or local_runtime leaves os.environ as it was (issue 12), with no
region configured anywhere, and rendering then works offline without any SDK setting in the
environment. Run in a fresh interpreter: this process has imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROBE = r"""
import importlib, json, os, pkgutil

import sklearn  # sets two OpenMP variables at import (sklearn/__init__.py): not ours to test

before = dict(os.environ)


def changed():
    return sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))


import local_runtime, pipeline_scripts

modules = [
    f"{package.__name__}.{module.name}"
    for package in (pipeline_scripts, local_runtime)
    for module in pkgutil.iter_modules(package.__path__)
    if module.name != "__main__"  # runs the command line
]
for name in modules:
    importlib.import_module(name)
after_import = changed()

from pipeline_scripts.config import load_config
from pipeline_scripts.render import render

rendered = render(load_config("env_files/dev_env.tfvars"))
print(json.dumps({"modules": modules, "after_import": after_import, "after_render": changed(),
                  "pipelines": len(rendered.pipelines)}))
"""


@pytest.mark.e2e  # imports the SageMaker SDK and renders: ~10 s
def test_importing_the_packages_and_rendering_leave_the_environment_unchanged(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k != "SAGEMAKER_VALIDATE_ROLE"
    }
    # No region anywhere: not in the environment, not in a config file.
    env.update(
        AWS_CONFIG_FILE=str(tmp_path / "no-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"pipeline_scripts.pipelines", "local_runtime.runner"} <= set(report["modules"])
    assert report["after_import"] == []
    assert report["after_render"] == []
    assert report["pipelines"] == 3
