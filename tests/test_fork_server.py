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
import gc, json, os, sys, threading
seen = {
    "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0], "stdin": sys.stdin.read(),
    "env": dict(os.environ), "main": __name__, "file": __file__,
    "dont_write_bytecode": sys.dont_write_bytecode,
    "gc": [gc.isenabled(), gc.get_threshold()],
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


def run(tmp_path, mode, *args, max_runtime=30, probe=PROBE, **variables):
    script = tmp_path / "code" / "probe.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(probe)
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


def both(tmp_path, monkeypatch, *args, probe=PROBE, **variables):
    results = {}
    for mode in ("forked", "fresh"):
        monkeypatch.setenv("LOCAL_RUNTIME_FORK_SERVER", "1" if mode == "forked" else "0")
        results[mode] = run(tmp_path, mode, *args, probe=probe, **variables)
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
        # read by OpenMP, OpenBLAS and Arrow when they load (base: 1): forks from a server
        # started with it; only a plain positive integer
        ({"OMP_NUM_THREADS": "2"}, True),
        ({"OMP_NUM_THREADS": "1"}, True),
        ({"OMP_NUM_THREADS": "2,1"}, False),
        ({"OMP_NUM_THREADS": "abc"}, False),
        ({"OMP_NUM_THREADS": "0"}, False),
        ({"OMP_NUM_THREADS": "02"}, False),
        ({"OMP_NUM_THREADS": "2", "OMP_THREAD_LIMIT": "1"}, False),
        ({"OMP_THREAD_LIMIT": "1"}, False),
        ({"OMP_DYNAMIC": "true"}, False),
        ({"OPENBLAS_NUM_THREADS": "2"}, False),
        ({"KMP_INIT_AT_FORK": "FALSE"}, True),  # what scikit-learn sets when xgboost imports it
        ({"KMP_INIT_AT_FORK": "TRUE"}, False),
        ({"PYTHONHASHSEED": "0"}, False),  # read by the interpreter when it starts
        # read by the interpreter too: one plain action forks from a server started with it
        ({"PYTHONWARNINGS": "error"}, True),
        ({"PYTHONWARNINGS": "error", "OMP_NUM_THREADS": "2"}, True),
        ({"PYTHONWARNINGS": "error::FutureWarning"}, False),
        ({"PYTHONWARNINGS": "error,ignore"}, False),
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
    without = {k: v for k, v in base.items() if k != "OMP_NUM_THREADS"}
    assert not fork_server.forkable([sys.executable, "x.py"], without, base)


# What the preloaded libraries took from OMP_NUM_THREADS when they loaded, as the job sees it.
LIBRARIES_PROBE = """
import json, os, sys, threading
import numpy, pyarrow, xgboost  # xgboost imports scikit-learn, SciPy (OpenBLAS), libgomp
from threadpoolctl import threadpool_info

def threads():  # per library: OpenBLAS's thread count, OpenMP's omp_get_max_threads()
    return sorted((i["internal_api"], i["filepath"], i["num_threads"]) for i in threadpool_info())

in_a_thread = []  # libgomp's global setting, not a copy the main thread may hold
worker = threading.Thread(target=lambda: in_a_thread.append(threads()))
worker.start()
worker.join()
parent = open(f"/proc/{os.getppid()}/environ", "rb").read().split(b"\\0")
seen = {
    "threads": threads(), "threads_in_a_thread": in_a_thread[0],
    "arrow_cpu_count": pyarrow.cpu_count(), "xgboost_config": xgboost.config.get_config(),
    "env": os.environ.get("OMP_NUM_THREADS"),
    "forked": "fork_server.py" in open("/proc/self/cmdline").read(),
    "parent_omp": [v.decode() for v in parent if v.startswith(b"OMP_NUM_THREADS=")],
}
open(os.environ["SEEN"], "w").write(json.dumps(seen))
"""


@pytest.mark.e2e  # a fresh interpreter and a second server: ~3.5 CPU-s
def test_a_job_with_its_own_omp_num_threads_forks_from_a_server_started_with_it(
    tmp_path, monkeypatch
):
    """OMP_NUM_THREADS=2 where the runner's base is 1 (tests/conftest.py): libgomp, both
    OpenBLAS copies (numpy's, SciPy's) and Arrow's CPU pool hold 2, in the job's main thread and
    in a thread it starts, as in a fresh interpreter."""
    assert job_environment(None)["OMP_NUM_THREADS"] == "1"
    results = both(tmp_path, monkeypatch, probe=LIBRARIES_PROBE, OMP_NUM_THREADS="2")
    (forked, saw_forked, _), (fresh, saw_fresh, _) = results.values()
    assert (forked.returncode, fresh.returncode) == (0, 0), (forked, fresh)
    assert (saw_forked.pop("forked"), saw_fresh.pop("forked")) == (True, False)
    # forked from a server of its own, started with the job's value (the runner's is 1); the
    # fresh job's parent is this process, whose /proc environ is what it was started with
    assert saw_forked.pop("parent_omp") == ["OMP_NUM_THREADS=2"]
    saw_fresh.pop("parent_omp")
    assert saw_forked == saw_fresh
    apis = {api for api, _, _ in saw_fresh["threads"]}
    assert apis == {"openblas", "openmp"}, saw_fresh["threads"]
    assert len(saw_fresh["threads"]) == 3  # both OpenBLAS copies, one libgomp
    assert {n for _, _, n in saw_fresh["threads"]} == {2}
    assert saw_fresh["threads_in_a_thread"] == saw_fresh["threads"]
    assert saw_fresh["arrow_cpu_count"] == 2
    assert saw_fresh["env"] == "2"


# What the interpreter made of PYTHONWARNINGS, with the preloaded libraries (which add filters
# of their own) imported under it in the server's order.
WARNINGS_PROBE = """
import json, os, sys, warnings
import numpy, pyarrow, pyarrow.csv, pyarrow.compute, pandas, xgboost
seen = {
    "warnoptions": sys.warnoptions,
    "filters": [[str(part) for part in f] for f in warnings.filters],
}
with open("/proc/self/cmdline") as cmdline:
    seen["forked"] = "fork_server.py" in cmdline.read()
with open(os.environ["SEEN"], "w") as out:  # closed: an unclosed file warns too
    out.write(json.dumps(seen))
warnings.warn("from the job", FutureWarning)
"""


@pytest.mark.e2e  # a fresh interpreter and a second server: ~3.5 CPU-s
def test_a_job_with_pythonwarnings_forks_from_a_server_started_with_it(tmp_path, monkeypatch):
    """PYTHONWARNINGS=error (tests/test_bad_inputs.py runs step scripts so): the job gets the
    filters a fresh interpreter sets up from it, and its warning fails it the same way."""
    assert fork_server.PRELOADED == (
        "numpy", "pyarrow", "pyarrow.csv", "pyarrow.compute", "pandas", "xgboost"
    )  # fmt: skip
    results = both(tmp_path, monkeypatch, probe=WARNINGS_PROBE, PYTHONWARNINGS="error")
    (forked, saw_forked, log_forked), (fresh, saw_fresh, log_fresh) = results.values()
    assert (saw_forked.pop("forked"), saw_fresh.pop("forked")) == (True, False)
    assert saw_forked == saw_fresh
    assert saw_fresh["warnoptions"] == ["error"]
    assert (forked.returncode, fresh.returncode) == (1, 1)
    assert forked.stderr_tail[-1] == fresh.stderr_tail[-1] == "FutureWarning: from the job"
    assert log_forked == log_fresh
