"""Job processes: their environment, the registry of running ones, timeouts and failure reasons.

A job runs in its own process group (so a timeout kills all of it) and never outlives the
runner: prctl(PR_SET_PDEATHSIG) on Linux, a watchdog parent elsewhere, and stop_all_jobs()
when the runner is interrupted.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local_runtime import fork_server
from local_runtime.errors import StepFailed

DEFAULT_MAX_RUNTIME = 86400  # SageMaker's default StoppingCondition


# What a job inherits from this process; no AWS credentials or endpoints (jobs get their data
# from the runner, as in SageMaker). OMP_NUM_THREADS: its user's value, else 1 (below).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "TZ",
              "OMP_NUM_THREADS")  # fmt: skip


def job_environment(step_environment: dict | None, **variables: str) -> dict:
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    # Jobs share this machine's cores (the runner starts independent steps, and a tuning
    # step's training jobs, at once): OpenMP threads of jobs that wait for each other spin and
    # burn the cores the others need (bench/README.md, "make demo"). One each, unless set.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(variables)
    env.update({str(k): str(v) for k, v in (step_environment or {}).items()})
    return env


_live: set[subprocess.Popen] = set()  # job processes running now, for stop_all_jobs()
_live_lock = threading.Lock()


def stop_all_jobs() -> None:
    """Kills every job process this module started that is still running (the runner calls it
    when it is interrupted, so no job outlives it)."""
    with _live_lock:
        processes = list(_live)
    for process in processes:
        _kill(process, os.name == "posix")


# Where prctl is missing (macOS), a job runs under this watchdog, the leader of the job's process
# group: it passes the job's exit status on, and kills the whole group as soon as its parent
# (the runner) is gone, however the runner ended.
_WATCHDOG = """
import os, signal, subprocess, sys, time
parent, job = int(sys.argv[1]), subprocess.Popen(sys.argv[2:])
while job.poll() is None:
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    time.sleep(0.2)
sys.exit(job.returncode if job.returncode >= 0 else 128 - job.returncode)
"""
# LOCAL_RUNTIME_JOB_WATCHDOG=1 uses the watchdog on Linux too (the tests run both ways).
_WATCHDOG_VARIABLE = "LOCAL_RUNTIME_JOB_WATCHDOG"


def _uses_watchdog() -> bool:
    posix = os.name == "posix"
    return posix and (
        not sys.platform.startswith("linux") or os.environ.get(_WATCHDOG_VARIABLE) == "1"
    )


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn that has the kernel SIGKILL the job when the runner dies, even by SIGKILL,
    which no handler in the runner can catch (prctl(2) PR_SET_PDEATHSIG, Linux only). Jobs run
    in their own session (so a timeout can kill the whole group), which keeps the terminal's
    Ctrl-C from reaching them: this is what ties them to the runner. The signal fires when the
    thread that started the job ends; the runner's worker threads outlive their jobs."""
    if not sys.platform.startswith("linux") or _uses_watchdog():
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1  # <linux/prctl.h>

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the runner died before prctl took effect
            os._exit(137)

    return preexec


@dataclass
class ProcessOutcome:
    returncode: int
    timed_out: bool
    stderr_tail: list[str]
    max_runtime: int


def run_process(argv, *, env, cwd: Path, log_path: Path, max_runtime: int) -> ProcessOutcome:
    """Runs `argv`, copying stdout and stderr into the log as they come; kills the process
    group after `max_runtime` seconds. Never waits on a stuck pipe for more than a moment."""
    posix = os.name == "posix"
    tail: collections.deque = collections.deque(maxlen=50)
    lock = threading.Lock()
    with open(log_path, "ab") as log:
        argv = [str(a) for a in argv]
        watchdog = _uses_watchdog()
        process = None if watchdog else start_forked(argv, env, cwd)
        if watchdog:
            argv = [sys.executable, "-c", _WATCHDOG, str(os.getpid()), *argv]
        try:
            process = process or subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=posix,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        except OSError as error:
            raise StepFailed(f"cannot run {argv[0]}: {error}") from None
        with _live_lock:
            _live.add(process)

        def pump(stream, keep):
            for line in iter(stream.readline, b""):
                with lock:
                    log.write(line)
                    log.flush()
                if keep is not None:
                    keep.append(line.decode("utf-8", "replace").rstrip())

        pumps = [
            threading.Thread(target=pump, args=(process.stdout, None), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, tail), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        timed_out = False
        try:
            process.wait(timeout=max_runtime)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process, posix)
        except BaseException:  # Ctrl-C or a runner shutdown: leave no job behind
            _kill(process, posix)
            raise
        finally:
            with _live_lock:
                _live.discard(process)
        for thread in pumps:
            thread.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            stream.close()
    return ProcessOutcome(process.returncode, timed_out, list(tail), max_runtime)


def _kill(process: subprocess.Popen | fork_server.ForkedJob, posix: bool) -> None:
    try:
        if posix:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.kill()  # a forked job not yet in its own session: killpg found no group
    process.wait()


def start_forked(argv: list[str], env: dict, cwd: Path) -> fork_server.ForkedJob | None:
    """The job forked from local_runtime/fork_server.py's server (its output on pipes, as a
    subprocess's), or None when it must start as a fresh process."""
    base = job_environment(None)
    if not fork_server.forkable(argv, env, base):
        return None
    (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
    try:
        job = fork_server.spawn(
            argv, env=env, cwd=cwd, stdout=out_write, stderr=err_write, base_environment=base
        )
    finally:
        os.close(out_write)
        os.close(err_write)
    if job is None:
        os.close(out_read)
        os.close(err_read)
        return None
    job.stdout, job.stderr = os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb")
    return job


# What DescribeProcessingJob says when the container exits non-zero: the FailureReason is this
# generic text (aws/sagemaker-spark-container, test/integration/sagemaker/
# test_sagemaker_spark_errors.py asserts it); the container's own words reach the caller only
# through /opt/ml/output/message (ExitMessage).
PROCESSING_ALGORITHM_ERROR = "AlgorithmError: See job logs for more information"


def failure_reason(outcome: ProcessOutcome, failure_file: Path, generic: str | None = None) -> str:
    """The job's FailureReason: the timeout, else what the job wrote to `failure_file`, else
    `generic` (SageMaker's text for a container that exits without saying why) or, where the
    toolkit reports stderr itself, the last stderr line."""
    if outcome.timed_out:
        return (
            f"MaxRuntimeExceeded: the job ran longer than StoppingCondition.MaxRuntimeInSeconds "
            f"({outcome.max_runtime} s) and was stopped"
        )
    written = failure_file.read_text().strip() if failure_file.is_file() else ""
    if written:
        return written
    if generic:
        return generic
    lines = [line.strip() for line in outcome.stderr_tail if line.strip()]
    silent = f"the job's command exited with code {outcome.returncode}, saying nothing on stderr"
    return lines[-1] if lines else silent


def max_runtime(arguments: dict) -> int:
    return int(
        arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", DEFAULT_MAX_RUNTIME)
    )
