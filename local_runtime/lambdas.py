"""Pipeline Lambda steps, run in-process: a FunctionArn is mapped to its handler in code/.

The deployment names the helper functions `<model_package_group_name>-<function>`
(pipeline_scripts.steps.lambda_function_arn; Terraform creates them with those names), so the
suffix of the function name says which code it runs. Handlers are loaded from their files, as
the Lambda runtime loads them, and called with the step's resolved Arguments as the event; their
boto3 clients reach the embedded AWS API through AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parents[1] / "code"

# Function-name suffix -> (file under code/, handler function).
FUNCTIONS = {
    "model-resolver": ("model_resolver/model_resolver.py", "handler"),
    "data-version": ("training_data_version/training_data_version.py", "handler"),
    # Not a pipeline step: the EventBridge target of S3 batch uploads (router.py calls it).
    "batch-dispatcher": ("batch_dispatcher/batch_dispatcher.py", "handler"),
    "retrain-gate": ("batch_dispatcher/retrain_gate.py", "handler"),
}

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


def handler_for(function_arn: str) -> Callable:
    name = function_name(function_arn)
    suffix = next(
        (s for s in sorted(FUNCTIONS, key=len, reverse=True) if name.endswith(f"-{s}")), None
    )
    if suffix is None:
        known = ", ".join(f"'<model_package_group_name>-{s}'" for s in FUNCTIONS)
        raise LambdaError(
            f"no local handler for Lambda function '{name}' ({function_arn}); the local "
            f"runtime runs functions named {known} (see local_runtime/lambdas.py)"
        )
    relative, handler = FUNCTIONS[suffix]
    path = CODE_DIR / relative
    with _loading:
        if path not in _loaded:
            module_name = f"local_lambda_{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _loaded[path] = getattr(module, handler)
    return _loaded[path]


class _Context:
    """The parts of the Lambda context object handlers commonly read."""

    def __init__(self, function_arn: str):
        self.invoked_function_arn = function_arn
        self.function_name = function_name(function_arn)
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


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
    """Calls the handler; its exceptions propagate (the step fails with their message)."""
    handler = handler_for(function_arn)
    with _logs_to(log_path):
        result = handler(event, _Context(function_arn))
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
