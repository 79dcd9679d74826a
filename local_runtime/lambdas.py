"""Pipeline Lambda steps, run in-process, with the function's deployed configuration.

Which code runs, and for how long at most:
- a function deployed in the embedded Lambda API (CreateFunction on the moto server of this
  process): its zip, its Handler and its Timeout;
- else one of the project's helpers: the deployment names them
  `<model_package_group_name>-<function>` (pipeline_scripts.lambda_steps.lambda_function_arn;
  Terraform creates them with those names), so the suffix says which code under code/ runs, and
  its Timeout is the one lambda.tf deploys (read from lambda.tf, as Terraform reads it).
Handlers are loaded from their files, as the Lambda runtime loads them, and called with the
step's resolved Arguments as the event; their boto3 clients reach the embedded AWS API through
AWS_ENDPOINT_URL. A Lambda step has no timeout of its own (the published pipeline definition
schema's LambdaStep has no such property; SDK v3's LambdaStep takes none), so the function's
timeout is the limit: an invocation past it fails the step with Lambda's own
"Task timed out after N.NN seconds" (the handler's thread cannot be killed: it is abandoned, as
Lambda freezes the sandbox); an event over Lambda's 6 MB request limit fails before the call.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import hcl2

from pipeline_scripts.contract import LAMBDA_SUFFIXES
from pipeline_scripts.module_files import load_module

REPO_DIR = Path(__file__).resolve().parents[1]
CODE_DIR = REPO_DIR / "code"
LAMBDA_TF = REPO_DIR / "lambda.tf"

# Function-name suffix -> (file under code/, handler function, its key in lambda.tf's
# local.functions).
FUNCTIONS = {
    LAMBDA_SUFFIXES[key]: (file, "handler", key)
    for key, file in {
        "model_resolver": "model_resolver/model_resolver.py",
        "data_version": "training_data_version/training_data_version.py",
        # Not pipeline steps: EventBridge targets (router.py calls them).
        "batch_dispatcher": "batch_dispatcher/batch_dispatcher.py",
        "retrain_gate": "batch_dispatcher/retrain_gate.py",
    }.items()
}
# Lambda's limit for a synchronous invocation's request, and its error (quoted in
# pelmers/streetwarp-web#14): "Request must be smaller than 6291456 bytes for the
# InvokeFunction operation".
REQUEST_LIMIT = 6_291_456
# "Configure Lambda function timeout" (AWS Lambda developer guide): 3 s unless configured.
DEFAULT_TIMEOUT = 3

_loaded: dict[Path, Callable] = {}
_loading = threading.Lock()


class LambdaError(Exception):
    """No handler for the function, or it returned something a Lambda step cannot use."""


def function_name(function_arn: str) -> str:
    """`name` of arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]."""
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[2] != "lambda" or parts[5] != "function":
        raise LambdaError(f"FunctionArn {function_arn!r} is not a Lambda function ARN")
    return parts[6]


@dataclass(frozen=True)
class Function:
    handler: Callable
    timeout: float  # seconds


@functools.cache
def terraform_timeouts(path: Path = LAMBDA_TF) -> dict[str, float]:
    """local.functions.<key>.timeout of lambda.tf, by key. An entry may be a reference to a
    local of another .tf file of the module (dispatcher.tf's functions are)."""
    module_locals: dict = {}
    for tf_file in sorted(path.parent.glob("*.tf")):
        with open(tf_file, encoding="utf-8") as handle:
            for block in hcl2.load(handle).get("locals", []):
                module_locals.update(block)
    timeouts = {}
    for key, spec in module_locals["functions"].items():
        if isinstance(spec, str):  # "${local.<name>}"
            spec = module_locals[spec.removeprefix("${local.").removesuffix("}")]
        timeouts[key] = float(spec.get("timeout", DEFAULT_TIMEOUT))
    return timeouts


def _load(path: Path, handler: str) -> Callable:
    with _loading:
        if path not in _loaded:
            module = load_module(path, f"local_lambda_{path.stem}_{len(_loaded)}")
            _loaded[path] = getattr(module, handler)
    return _loaded[path]


def _deployed(function_arn: str) -> Function | None:
    """The function as created in the embedded Lambda API of this process, if it was."""
    try:
        from moto.awslambda.models import lambda_backends
    except ImportError:
        return None
    parts = function_arn.split(":")
    try:
        function = lambda_backends[parts[4]][parts[3]].get_function(parts[6])
    except Exception:  # not deployed there (moto raises its own not-found errors)
        return None
    folder = (
        Path(tempfile.gettempdir())
        / "local-runtime-lambda"
        / function.code_sha_256.replace("/", "_")
    )
    if not folder.is_dir():
        with zipfile.ZipFile(io.BytesIO(function.code_bytes)) as archive:
            archive.extractall(folder)
    module, _, name = function.handler.rpartition(".")
    return Function(_load(folder / f"{module.replace('.', '/')}.py", name), function.timeout)


def function_for(function_arn: str) -> Function:
    name = function_name(function_arn)
    deployed = _deployed(function_arn)
    if deployed is not None:
        return deployed
    suffix = next(
        (s for s in sorted(FUNCTIONS, key=len, reverse=True) if name.endswith(f"-{s}")), None
    )
    if suffix is None:
        known = ", ".join(f"'<model_package_group_name>-{s}'" for s in FUNCTIONS)
        raise LambdaError(
            f"no local handler for Lambda function '{name}' ({function_arn}); the local "
            f"runtime runs functions named {known} (see local_runtime/lambdas.py) and "
            "functions created in the embedded Lambda API"
        )
    relative, handler, key = FUNCTIONS[suffix]
    timeout = terraform_timeouts().get(key, DEFAULT_TIMEOUT)
    return Function(_load(CODE_DIR / relative, handler), timeout)


class _Context:
    """The parts of the Lambda context object handlers commonly read."""

    def __init__(self, function_arn: str, timeout: float):
        self._deadline = datetime.now(UTC).timestamp() + timeout
        self.invoked_function_arn = function_arn
        self.function_name = function_name(function_arn)
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - datetime.now(UTC).timestamp()) * 1000))


@contextmanager
def _logs_to(path: Path | None) -> Iterator[None]:
    """Log records of this thread (the handler's logging, Lambda's CloudWatch log) go to `path`."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def invoke(function_arn: str, event: dict, log_path: Path | None = None) -> dict:
    """Calls the handler within the function's timeout; its exceptions propagate (the step
    fails with their message)."""
    size = len(json.dumps(event).encode("utf-8"))
    if size > REQUEST_LIMIT:
        raise LambdaError(
            f"RequestEntityTooLargeException: Request must be smaller than {REQUEST_LIMIT} "
            "bytes for the InvokeFunction operation"
        )
    function = function_for(function_arn)
    context = _Context(function_arn, function.timeout)
    outcome: dict = {}

    def call() -> None:
        with _logs_to(log_path):
            try:
                outcome["result"] = function.handler(event, context)
            except BaseException as error:  # re-raised in the step's thread
                outcome["error"] = error

    started = datetime.now(UTC)
    worker = threading.Thread(target=call, daemon=True, name=f"lambda-{context.function_name}")
    worker.start()
    worker.join(function.timeout)
    if worker.is_alive():
        # Lambda's errorMessage for an invocation stopped at its timeout.
        moment = started.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        raise LambdaError(
            f"{moment} {context.aws_request_id} Task timed out after {function.timeout:.2f} seconds"
        )
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    try:
        # Lambda returns the handler's result as JSON; a step sees what survives that.
        result = json.loads(json.dumps(result))
    except (TypeError, ValueError) as error:
        raise LambdaError(
            f"{function_name(function_arn)} returned non-JSON data: {error}"
        ) from None
    if not isinstance(result, dict):
        raise LambdaError(
            f"{function_name(function_arn)} returned {type(result).__name__}; a Lambda step "
            "needs a JSON object whose keys are its OutputParameters"
        )
    return result


_OUTPUT_TYPES = {"String": (str,), "Integer": (int,), "Float": (int, float), "Boolean": (bool,)}


def output_parameters(function_arn: str, declared: list[dict], result: dict) -> dict:
    """The declared OutputParameters taken from the handler's result, checked for type."""
    outputs = {}
    for spec in declared:
        name, kind = spec["OutputName"], spec.get("OutputType", "String")
        if name not in result:
            raise LambdaError(
                f"{function_name(function_arn)} returned no '{name}' (a declared output); "
                f"it returned keys {sorted(result)}"
            )
        value = result[name]
        wrong_bool = isinstance(value, bool) and kind != "Boolean"
        if wrong_bool or not isinstance(value, _OUTPUT_TYPES[kind]):
            raise LambdaError(
                f"{function_name(function_arn)} returned {name}={value!r}; the step declares "
                f"it as {kind}"
            )
        outputs[name] = value
    return outputs
