"""local_runtime/fork_server.py: a job forked from the server runs as `python <script>` would.

Each case runs the same probe script through run_process twice, forked and as a fresh process
(LOCAL_RUNTIME_FORK_SERVER=0), and compares what the script saw and how it ended.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from local_runtime import fork_server
from local_runtime.processes import job_environment, run_process

PROBE = """
import json, os, sys, threading
seen = {
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "stdin": sys.stdin.read(),
    "env": dict(os.environ), "main": __name__, "file": __file__,
    "dont_write_bytecode": sys.dont_write_bytecode,
}
open(os.environ["SEEN"], "w").write(json.dumps(seen))
print("to stdout")
print("to stderr", file=sys.stderr)
action = sys.argv[1]
if action == "raise":
    raise ValueError("boom")
if action == "exit":
    sys.exit(int(sys.argv[2]))
if action == "message":
    sys.exit("the reason")
if action == "thread":  # a non-daemon thread is waited for, as at interpreter exit
    threading.Thread(target=lambda: open(os.environ["SEEN"] + ".thread", "w").write("x")).start()
if action == "sleep":
    import time
    time.sleep(60)
"""


def run(tmp_path, mode, *args, max_runtime=30, **variables):
    script = tmp_path / "code" / "probe.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(PROBE)
    seen = tmp_path / f"seen-{mode}.json"
    env = job_environment({"SEEN": str(seen)}, **variables)
    log = tmp_path / f"log-{mode}.txt"
    outcome = run_process(
        [sys.executable, "code/probe.py", *args],
        env=env,
        cwd=tmp_path,
        log_path=log,
        max_runtime=max_runtime,
    )
    saw = json.loads(seen.read_text()) if seen.exists() else None
    return outcome, saw, sorted(log.read_text().splitlines())


@pytest.fixture(params=["forked", "fresh"])
def mode(request, monkeypatch):
    monkeypatch.setenv("LOCAL_RUNTIME_FORK_SERVER", "1" if request.param == "forked" else "0")
    return request.param


def both(tmp_path, monkeypatch, *args, **variables):
    results = {}
    for mode in ("forked", "fresh"):
        monkeypatch.setenv("LOCAL_RUNTIME_FORK_SERVER", "1" if mode == "forked" else "0")
        results[mode] = run(tmp_path, mode, *args, **variables)
    return results


@pytest.mark.parametrize(
    "args, returncode, last_stderr",
    [
        (["ok"], 0, "to stderr"),
        (["exit", "3"], 3, "to stderr"),
        (["message"], 1, "the reason"),
        (["raise"], 1, "ValueError: boom"),
    ],
)
def test_a_forked_job_sees_and_ends_as_a_fresh_interpreter(
    tmp_path, monkeypatch, args, returncode, last_stderr
):
    results = both(tmp_path, monkeypatch, *args, SM_MODEL_DIR="/opt/ml/model")
    (forked, saw_forked, log_forked), (fresh, saw_fresh, log_fresh) = results.values()
    assert (forked.returncode, fresh.returncode) == (returncode, returncode)
    assert forked.stderr_tail[-1] == fresh.stderr_tail[-1] == last_stderr
    seen = tmp_path / "seen-fresh.json"
    saw_forked["env"]["SEEN"] = str(seen)  # the one value the two runs differ in on purpose
    assert saw_forked == saw_fresh
    assert saw_fresh["argv"] == ["code/probe.py", *args]
    assert saw_fresh["path0"] == str(tmp_path / "code")
    assert saw_fresh["env"]["SM_MODEL_DIR"] == "/opt/ml/model"
    assert log_forked == log_fresh  # the same lines (the traceback too), whatever their order


def test_non_daemon_threads_finish_before_the_job_ends(tmp_path, mode):
    outcome, _, _ = run(tmp_path, mode, "thread")
    assert outcome.returncode == 0
    assert (tmp_path / f"seen-{mode}.json.thread").read_text() == "x"


def test_a_job_past_its_max_runtime_is_killed(tmp_path, mode):
    started = time.monotonic()
    outcome, _, _ = run(tmp_path, mode, "sleep", max_runtime=1)
    assert outcome.timed_out
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "variables, forkable",
    [
        ({"SM_CHANNEL_TRAIN": "/opt/ml/input/data/train"}, True),
        ({"OMP_NUM_THREADS": "2"}, False),  # read by OpenMP when xgboost loads it (base: 1)
        ({"KMP_INIT_AT_FORK": "FALSE"}, True),  # what scikit-learn sets when xgboost imports it
        ({"KMP_INIT_AT_FORK": "TRUE"}, False),
        ({"PYTHONHASHSEED": "0"}, False),  # read by the interpreter when it starts
        ({"LANG": "C"}, False),  # differs from the server's
    ],
)
def test_only_jobs_a_fork_starts_faithfully_are_forked(variables, forkable, monkeypatch):
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # tests/conftest.py sets it
    base = job_environment(None)
    env = {**base, **variables}
    assert fork_server.forkable([sys.executable, "x.py"], env, base) is forkable
    assert not fork_server.forkable([sys.executable, "-c", "pass"], base, base)
    assert not fork_server.forkable(["/bin/echo", "x.py"], base, base)
