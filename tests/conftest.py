"""Shared test fixtures: repository paths and the data sets tests run on."""

import collections
import gc
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

# One OpenMP thread per process (xgboost), in the tests and in the jobs they run (the runtime
# passes OMP_NUM_THREADS on): pytest-xdist's workers and the jobs they start share 2 cores, and
# OpenMP threads that wait for each other spin, which costs more CPU than they save. Set before
# xgboost is imported: OpenMP reads it when it loads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Collection only imports: no collection until pytest_runtestloop's settle_heap()
# (local_runtime/heap.py).
gc.disable()

from pipeline_scripts.service_models import share_service_models  # noqa: E402

# What the packages no longer set at import (tests/test_import_side_effects.py): the tests' AWS
# is moto, where any region does for a client that names none, and tests that build steps
# without render() must not have the SDK validate roles with IAM.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
# Each test's boto3 sessions (moto, preflight, the SDK) parse the service models once per worker.
share_service_models()

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read-only reference material beside the repository; a fork does not have it.
SHARED_DIR = REPO_ROOT.parent / "shared"
SAMPLE_TRAIN_CSV = REPO_ROOT / "data" / "train" / "abalone_synthetic_train.csv"
SCRIPTS = REPO_ROOT / "scripts"


@pytest.fixture(autouse=True)
def _restore_environment():
    """Each test starts from the environment the one before it started from: what a test (or
    code it runs, e.g. run_loop's notifier variables) sets in os.environ does not leak."""
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module", autouse=True)
def _fresh_aws_per_module():
    """Each module starts with empty moto state and no boto3 default session. moto keeps its
    backends per process, shared by mock_aws and every moto server it starts (mock_aws empties
    them when it starts; a ThreadedMotoServer does not), and the default session caches the
    credentials it first found: without this, a module's results depend on the modules run
    before it (test_preflight after test_runner did)."""
    yield
    if "boto3" in sys.modules:
        sys.modules["boto3"].DEFAULT_SESSION = None
    if "moto" in sys.modules:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items):
    """`make test` runs the suite with pytest-xdist --dist loadgroup: a module's tests stay
    together on one worker (its module-scoped fixtures, e.g. a whole loop run, are built once),
    unless a test names a group of its own (e.g. one terraform apply per environment)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


# Groups that mostly wait: tests/test_terraform_apply.py, whose three applies run side by side
# in one worker and mostly wait on the AWS provider's own fixed waits (about 100 s, ~0.5 core in
# all). make test runs xdist with --no-loadscope-reorder, so groups start in this order, one per
# free worker: the waiting one first, so that its worker waits while the others compute, then
# the others, the costliest first (those with the most e2e tests, then the most tests), so that
# the run does not end on one worker still busy with a long loop run.
WAITING_GROUPS = ("tests.test_terraform_apply",)


@pytest.hookimpl(tryfirst=True)  # after every reordering (e.g. --reverse), before xdist sends it
def pytest_collection_finish(session):
    def group(item) -> str:
        marker = item.get_closest_marker("xdist_group")
        return str(marker.args[0]) if marker and marker.args else item.nodeid

    sizes = collections.Counter(group(item) for item in session.items)
    slow = collections.Counter(group(i) for i in session.items if i.get_closest_marker("e2e"))
    session.items.sort(
        key=lambda item: (
            not group(item).startswith(WAITING_GROUPS),
            -slow[group(item)],
            -sizes[group(item)],
        )
    )


@pytest.hookimpl(tryfirst=True)  # in each xdist worker too, before it runs its tests
def pytest_runtestloop(session):
    """Collection has imported the SDK, moto and the rest: collections skip them from here on
    (local_runtime/heap.py)."""
    from local_runtime.heap import settle_heap

    settle_heap()


# Loop runs shared by tests of several modules (tests/shared_loops.py): a session fixture is
# built once per worker, and its tests share this xdist_group, so once in all.
SHARED_LOOP_GROUP = "loop-champion-batches"


@pytest.fixture(scope="session")
def champion_then_batches(tmp_path_factory):
    from tests.shared_loops import champion_then_batches as run

    return run(tmp_path_factory.mktemp("champion_then_batches"))


# The two faults injected into one loop run: the topic, then the bucket, deleted.
FAULTS_LOOP_GROUP = "loop-topic-then-bucket-gone"


@pytest.fixture(scope="session")
def topic_then_bucket_gone(tmp_path_factory):
    from tests.shared_loops import topic_then_bucket_gone as run

    return run(tmp_path_factory.mktemp("topic_then_bucket_gone"))


def shared_path(relative: str) -> Path:
    """Path under ../shared/, skipping the calling test cleanly when it is absent."""
    path = SHARED_DIR / relative
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/ is not part of a fork)")
    return path


def missing_tool(reason: str):
    """Skip on a user's machine; in CI (CI=true, set by GitLab and .ci/run) a missing tool
    fails the job instead of silently skipping the tests that need it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: these tests must run in CI)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def terraform_bin() -> str:
    """Path of the terraform binary (see missing_tool when it is not installed)."""
    path = shutil.which("terraform")
    if path is None:
        missing_tool("terraform is not installed")
    return path


@pytest.fixture
def abalone_csv() -> Path:
    """Real UCI abalone when ../shared/ is present, else the project's generated sample."""
    real = SHARED_DIR / "data" / "abalone.csv"
    return real if real.exists() else SAMPLE_TRAIN_CSV


def all_steps(definition: dict):
    """A pipeline definition's steps, top level and nested in condition branches."""
    pending = list(definition["Steps"])
    while pending:
        step = pending.pop(0)
        yield step
        if step["Type"] == "Condition":
            pending += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])


def run_step_script(script, *args, env=None, expect_ok=True):
    """Run scripts/<script> with the test's Python as the local runtime runs a job (forked from
    local_runtime/fork_server.py's server when a fork starts it as a fresh interpreter would);
    fail with its stderr if it fails."""
    argv = [sys.executable, str(SCRIPTS / script), *map(str, args)]
    environment = {**os.environ, **(env or {})}
    result = _forked(argv, environment) or subprocess.run(
        argv, capture_output=True, text=True, env=environment, timeout=120
    )
    if expect_ok and result.returncode != 0:
        pytest.fail(f"{script} exited {result.returncode}:\n{result.stderr}")
    return result


def _forked(argv, env) -> subprocess.CompletedProcess | None:
    from local_runtime.processes import start_forked

    job = start_forked(argv, env, Path.cwd())
    if job is None:
        return None
    outputs = {}

    def read(name, stream):
        with stream:
            outputs[name] = stream.read().decode("utf-8", "replace")

    readers = [
        threading.Thread(target=read, args=p) for p in (("out", job.stdout), ("err", job.stderr))
    ]
    for reader in readers:
        reader.start()
    try:
        job.wait(120)
    except subprocess.TimeoutExpired:
        job.kill()
        raise
    for reader in readers:
        reader.join()
    return subprocess.CompletedProcess(argv, job.returncode, outputs["out"], outputs["err"])


def put(path, source):
    """Write text or bytes, or copy a file, to path (creating folders)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, Path):
        shutil.copy(source, path)
    elif isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source)
    return path
