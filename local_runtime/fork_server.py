"""Job processes forked from a Python that has already imported the images' libraries.

Starting a job's Python and importing numpy, pyarrow, pandas and xgboost (which imports
scikit-learn and SciPy) costs up to 1.5 s of CPU (bench/README.md, "Test suite time"): most
of a small job's time.
A fork server imports them once; each job is a fork of one that runs its script as
`python <script> <args>` would (a fresh __main__, sys.argv and sys.path[0] as the interpreter
sets them, exit status as the interpreter gives it), in a session of its own, with
its own environment, working folder and output pipes. A job dies with the server
(prctl PR_SET_PDEATHSIG), and the server with the runner's thread that started it, which lives
as long as the server does.

Only a job that a fork starts exactly as a fresh interpreter would runs here (forkable()):
`python <file>.py ...` on Linux, with no environment variable that the interpreter or a
preloaded library reads when it starts (PYTHON*, OMP_*, OPENBLAS_*, ...) unless it has the
server's value. Jobs differ in two such variables, each of which gets servers of its own,
started with the job's value (at most _MAX_SERVERS servers; past that, fresh processes):
OMP_NUM_THREADS as a plain positive integer (processes.py: one OpenMP thread per job;
training.py: a training job's share of the cores), and PYTHONWARNINGS as one plain action
(e.g. "error"), which the interpreter applies before any import. Setting OMP_NUM_THREADS in a
fork instead cannot be exact: libgomp parses it once, when it loads, into its global
nthreads-var ICV (gcc libgomp/env.c, initialize_env), which no API writes: omp_set_num_threads
gives the calling thread a copy of its own (libgomp/libgomp.h gomp_icv(true), libgomp/team.c
gomp_new_icv), so any other thread the job starts would see the server's value
(tests/test_fork_server.py shows it). Any other job, and every job with
LOCAL_RUNTIME_FORK_SERVER=0, starts a fresh process. This file runs as the server too
(`python fork_server.py <socket fd>`), so it imports nothing from the project.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

PRELOADED = ("numpy", "pyarrow", "pyarrow.csv", "pyarrow.compute", "pandas", "xgboost")
# Read when an interpreter or a preloaded library starts, so a fork would not honour them.
_READ_AT_START = re.compile(
    r"^(PYTHON|OMP_|KMP_|GOMP_|OPENBLAS_|GOTO_|MKL_|ARROW_|LD_|MALLOC_|LC_|LANG$|TZ$)"
)
# Set by a preloaded library when it is imported (scikit-learn's __init__.py:
# os.environ.setdefault(...), imported by xgboost), so the server runs with these values: a job
# environment holding them (a test process that imported xgboost) starts the same.
_SET_BY_PRELOADED = {"KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE"}
# What the interpreter's own flags give, set in the fork instead (runner.job_environment sets
# both for every job).
_APPLIED_IN_FORK = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
_SWITCH = "LOCAL_RUNTIME_FORK_SERVER"
# The start-time variables a job may differ from the runner's base in: the job forks from a
# server started with its values, so the interpreter and every library read them there as in a
# fresh interpreter. Only the plain values below keep the servers few; anything else starts a
# fresh process. OMP_NUM_THREADS: a positive integer, the values the runtime sets
# (processes.job_environment, training._toolkit_environment), not a list per nesting level
# ("2,1"). PYTHONWARNINGS: one action for every warning ("error": the tests run step scripts
# so), not a list of filters.
_OWN_SERVER = {
    "OMP_NUM_THREADS": re.compile(r"^[1-9][0-9]*$"),
    "PYTHONWARNINGS": re.compile(r"^(default|error|ignore|always|module|once)$"),
}
# Each server holds the preloaded libraries (~200 MB); a runner needs one per OpenMP thread
# count its jobs use (1 by default, a tuning trial's share, all cores for a training step),
# and per PYTHONWARNINGS value.
_MAX_SERVERS = 4
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_MESSAGE = 1 << 20


# -- the runner's side ------------------------------------------------------------------------


class ForkedJob:
    """A job the server forked; what run_process uses of subprocess.Popen."""

    def __init__(self):
        self.pid = 0
        self.returncode: int | None = None
        self.stdout = self.stderr = None
        self._started, self._done = threading.Event(), threading.Event()

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("forked job", timeout)
        return self.returncode

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class _Server:
    def __init__(self, environment: dict):
        self.environment = environment
        self.lock = threading.Lock()
        self.jobs: dict[int, ForkedJob] = {}
        self.channel: socket.socket | None = None
        self.alive = threading.Event()
        self.next_id = 0
        ready = threading.Event()
        # The thread that starts the server is the one prctl ties it to: it lives as long as
        # the server, reading what the server says.
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        runner = os.getpid()

        def die_with_runner_thread() -> None:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != runner:
                os._exit(137)

        try:
            subprocess.Popen(
                [sys.executable, __file__, str(theirs.fileno())],
                env=self.environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
                preexec_fn=die_with_runner_thread,
            )
        except OSError:
            ready.set()
            return
        finally:
            theirs.close()
        self.channel = ours
        self.alive.set()
        ready.set()
        while message := ours.recv(_MESSAGE):
            news = json.loads(message)
            with self.lock:
                job = self.jobs[news["id"]]
            if "pid" in news:
                job.pid = news["pid"]
                job._started.set()
            else:
                job.returncode = news["returncode"]
                with self.lock:
                    del self.jobs[news["id"]]
                job._done.set()
        self.alive.clear()  # the server is gone: its jobs died with it (PR_SET_PDEATHSIG)
        with self.lock:
            orphans, self.jobs = list(self.jobs.values()), {}
        for job in orphans:
            job.returncode = job.returncode if job.returncode is not None else -signal.SIGKILL
            job._started.set()
            job._done.set()

    def spawn(self, argv: list[str], env: dict, cwd: str, stdout: int, stderr: int) -> ForkedJob:
        job = ForkedJob()
        with self.lock:
            self.next_id += 1
            self.jobs[self.next_id] = job
            request = {"id": self.next_id, "argv": argv, "env": env, "cwd": cwd}
            socket.send_fds(self.channel, [json.dumps(request).encode()], [stdout, stderr])
        job._started.wait()
        if job.returncode is not None and not job.pid:
            raise OSError("the fork server stopped")
        return job


_servers: dict[tuple, _Server] = {}  # by the environment each was started with
_servers_lock = threading.Lock()


def server_environment(env: dict, base_environment: dict) -> dict:
    """The environment of the server a job forks from: the runner's base, with the job's
    values of _OWN_SERVER's variables where they are plain."""
    own = {name: env[name] for name, plain in _OWN_SERVER.items() if plain.match(env.get(name, ""))}
    return {**base_environment, **own}


def forkable(argv: list[str], env: dict, base_environment: dict) -> bool:
    """Whether a fork of the job's server (server_environment()) starts this job exactly as a
    fresh interpreter would."""
    if not sys.platform.startswith("linux") or os.environ.get(_SWITCH) == "0":
        return False
    if len(argv) < 2 or argv[0] != sys.executable or not argv[1].endswith(".py"):
        return False
    server = server_environment(env, base_environment)
    for key, value in env.items():
        if key in server or key in _APPLIED_IN_FORK:
            if key in server and server[key] != value:
                return False
        elif _READ_AT_START.match(key) and _SET_BY_PRELOADED.get(key) != value:
            return False
    return all(key in env for key in server)


def spawn(argv, *, env: dict, cwd, stdout: int, stderr: int, base_environment: dict):
    """A ForkedJob running `argv` (forkable() is true for it), or None when its server cannot
    run (the caller then starts a fresh process)."""
    environment = server_environment(env, base_environment)
    key = tuple(sorted(environment.items()))
    with _servers_lock:
        server = _servers.get(key)
        if server is None and len(_servers) >= _MAX_SERVERS:
            return None
        if server is None or not server.alive.is_set():
            server = _servers[key] = _Server(environment)
    if not server.alive.is_set():
        return None
    try:
        return server.spawn([str(a) for a in argv], env, str(cwd), stdout, stderr)
    except OSError:
        return None


# -- the server's side ------------------------------------------------------------------------


def _serve(channel: socket.socket) -> None:
    # Imported without the cyclic garbage collector, which would walk the growing heap again
    # and again (~15 % of the imports' CPU here), then frozen: a job's collections skip what
    # every job shares, and its forked pages stay shared (the gc module docs, gc.freeze). Jobs
    # collect as a fresh interpreter does: enabled, default thresholds.
    gc.disable()
    for name in PRELOADED:  # as many as the image has; a job imports the rest itself
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    gc.freeze()
    gc.enable()
    server = os.getpid()
    jobs: dict[int, int] = {}  # pid -> request id
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(channel, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is channel:
                message, fds, _, _ = socket.recv_fds(channel, _MESSAGE, 2)
                if not message:
                    return  # the runner is gone; the jobs die with this process
                request = json.loads(message)
                pid = os.fork()
                if pid == 0:
                    os.close(wake_read)
                    os.close(wake_write)
                    _run_job(request, fds, channel, server)
                for fd in fds:
                    os.close(fd)
                jobs[pid] = request["id"]
                channel.send(json.dumps({"id": request["id"], "pid": pid}).encode())
            else:
                os.read(wake_read, 512)
        while jobs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = os.waitstatus_to_exitcode(status)
            channel.send(json.dumps({"id": jobs.pop(pid), "returncode": code}).encode())


def _run_job(request: dict, fds: list[int], channel: socket.socket, server: int) -> None:
    """In the fork: becomes `python <script> <args>` in the request's folder and environment,
    then exits with the status the interpreter would give."""
    code = 70
    try:
        channel.close()
        os.setsid()
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != server:
            os._exit(137)
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as the interpreter sets it
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as the interpreter sets it
        stdin = os.open(os.devnull, os.O_RDONLY)
        for fd, target in ((stdin, 0), (fds[0], 1), (fds[1], 2)):
            os.dup2(fd, target)
            os.close(fd)
        env, argv = request["env"], request["argv"]
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(env)
        script = os.path.abspath(argv[1])
        sys.argv = argv[1:]
        sys.path[0] = os.path.dirname(script)
        unbuffered = bool(env.get("PYTHONUNBUFFERED"))
        sys.stdout = io.TextIOWrapper(
            io.FileIO(1, "w", closefd=False), line_buffering=True, write_through=unbuffered
        )
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), errors="backslashreplace", write_through=True
        )
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        if "numpy" in sys.modules:  # a fresh interpreter seeds numpy's global generator anew
            sys.modules["numpy"].random.seed()
        code = _run_script(script)
    finally:
        os._exit(code)


def _run_script(script: str) -> int:
    import atexit
    import builtins
    import importlib.machinery
    import tokenize
    import traceback
    import types

    code = 0
    try:
        # What the interpreter's run of a file sets up: a fresh __main__ with these attributes
        # (runpy.run_path would set sys.argv[0] to the absolute path).
        main = types.ModuleType("__main__")
        main.__dict__.update(
            __file__=script,
            __cached__=None,
            __builtins__=builtins,
            __loader__=importlib.machinery.SourceFileLoader("__main__", script),
        )
        sys.modules["__main__"] = main
        with tokenize.open(script) as source:
            compiled = compile(source.read(), script, "exec")
        exec(compiled, main.__dict__)
    except SystemExit as exit:  # what the interpreter does with sys.exit(...)
        if exit.code is None:
            code = 0
        elif isinstance(exit.code, int):
            code = exit.code
        else:
            print(exit.code, file=sys.stderr)
            code = 1
    except BaseException as error:
        trace = error.__traceback__  # from the script's first frame, as the interpreter shows it
        while trace and trace.tb_frame.f_code.co_filename != script:
            trace = trace.tb_next
        traceback.print_exception(type(error), error, trace or error.__traceback__)
        code = 1
    try:
        threading._shutdown()  # as at interpreter exit: wait for non-daemon threads
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    return code & 0xFF


if __name__ == "__main__":
    _serve(socket.socket(fileno=int(sys.argv[1])))
