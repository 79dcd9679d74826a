"""The Docker-free pipeline runner: executes a pipeline definition exactly as the upsert stored it.

    runner = PipelineRunner(Path("build/local"), on_event=print)
    execution = runner.start("training-pipeline-dev", {"MseThreshold": 5.0})
    execution.status, execution.step("TrainModel").metrics, execution.to_dict()

start() reads the definition with DescribePipeline and registers the execution with
StartPipelineExecution on the endpoint in AWS_ENDPOINT_URL (the embedded AWS API);
run_definition() runs a definition given as JSON. Both run the execution to its end and return
its record.

Scheduling: a step runs when every step it depends on (DependsOn, and every step whose
properties or property files it reads) has succeeded; independent steps run at the same time,
at most `max_workers` at once. A step in a ConditionStep's IfSteps/ElseSteps runs only when the
condition chose that branch; the others are NotExecuted, as is every step depending on a step
that failed or was not executed. After a failure no new step starts (running ones finish) and
the execution fails: with the ErrorMessage of a FailStep, or naming the failed steps.

Every step's record: status (Starting, Executing, Succeeded, Failed, NotExecuted), times, failure
reason, log file, Describe*-shaped properties, outputs, metrics and event metadata; files live
in <root>/<pipeline>/<execution id>/<step>/, a new folder per execution. `on_event` receives
each execution and step status change as the EventBridge event SageMaker emits (events.py),
plus a model package state change when a model is registered; it is called from the runner's
threads, one event at a time and in order, so it should return quickly; an exception in it is
logged and changes nothing in the execution, as with EventBridge. NotExecuted is this record's
name for steps SageMaker never starts; they emit no event.

Step caching (CacheConfig) is emulated for processing, training and tuning steps by AWS's
cache keys (cache.py); requests are validated against the SageMaker API model once resolved
(pipeline_scripts/api_model.py), with the service rules the model does not express
(pipeline_scripts/xgboost_image.py).
Not emulated, and accepted with a note in the step's log: RetryPolicies (the throttling,
capacity and service faults they retry do not happen locally), IAM roles, KMS keys, tags,
instance types and network isolation (see jobs.py). Anything else a definition uses beyond
what this package implements is refused before the execution starts, with an error naming the
step and the field.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from local_runtime import events, lambdas
from local_runtime.cache import STEP_CACHE, Entry, cache_key, expire_after
from local_runtime.clock import iso_time, now
from local_runtime.definition import JOB_STEPS, Node, validate
from local_runtime.errors import DefinitionError, StepFailed
from local_runtime.expressions import (
    ExpressionError,
    Scope,
    as_text,
    condition_holds,
    parameter_values,
    resolve,
)
from local_runtime.jobs import Job, StepResult
from local_runtime.processes import stop_all_jobs
from local_runtime.records import Execution, StepRecord
from local_runtime.s3 import read_json
from local_runtime.schema import check_fields
from pipeline_scripts.api_model import ApiValidationError, check_request
from pipeline_scripts.xgboost_image import metric_definition_errors

logger = logging.getLogger(__name__)
DEFAULT_ACCOUNT = "123456789012"  # moto's account, for run_definition without a pipeline ARN
FAILURE_REASON_LIMIT = 1024  # the API's limit for a step's FailureReason


def _new_id(length: int = 12) -> str:
    """A SageMaker-style execution id: 12 lower-case letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _job_name(execution_id: str, step: str, limit: int) -> str:
    """pipelines-<execution id>-<step>-<random>, as SageMaker names a pipeline's jobs; tuning
    jobs (at most 32 characters) drop the "pipelines-" and have a shorter random part."""
    short = limit <= 32
    stem = f"{execution_id}-{step}" if short else f"pipelines-{execution_id}-{step}"
    size = 5 if short else 10
    stem = re.sub(r"[^A-Za-z0-9-]", "-", stem)[: limit - size - 1].rstrip("-")
    alphabet = string.ascii_letters + string.digits
    return f"{stem}-{''.join(secrets.choice(alphabet) for _ in range(size))}"


def _check_service_rules(kind: str, arguments: dict) -> None:
    """What the service refuses beyond its API model (xgboost_image.py has the sources)."""
    specification = {
        "Training": lambda: arguments.get("AlgorithmSpecification"),
        "Tuning": lambda: arguments.get("TrainingJobDefinition", {}).get("AlgorithmSpecification"),
    }.get(kind, lambda: None)()
    for refusal in metric_definition_errors(specification or {}):
        raise ApiValidationError(f"ValidationException: {refusal}")


class PipelineRunner:
    def __init__(
        self,
        root: Path,
        on_event: Callable[[dict], None] | None = None,
        max_workers: int = 2,
    ):
        self.root = Path(root).resolve()  # jobs run with their sandbox as cwd
        self.on_event = on_event or (lambda event: None)
        self.max_workers = max_workers

    def start(
        self,
        pipeline_name: str,
        parameters: dict | None = None,
        *,
        display_name: str | None = None,
        description: str | None = None,
        execution_arn: str | None = None,
    ) -> Execution:
        """Runs the pipeline's stored definition as a new execution, registered in the API;
        with `execution_arn`, runs that execution, already started through the API (e.g. by
        the batch dispatcher's StartPipelineExecution call)."""
        sagemaker = boto3.client("sagemaker")
        pipeline = sagemaker.describe_pipeline(PipelineName=pipeline_name)

        def register(values: dict, display: str) -> str:
            if execution_arn:
                return execution_arn
            request = {
                "PipelineName": pipeline_name,
                "PipelineExecutionDisplayName": display,
                # The API takes every value as text.
                "PipelineParameters": [
                    {"Name": name, "Value": as_text(values[name])} for name in parameters or {}
                ],
            }
            if description:
                request["PipelineExecutionDescription"] = description
            check_request("StartPipelineExecution", request)
            return sagemaker.start_pipeline_execution(**request)["PipelineExecutionArn"]

        definition = json.loads(pipeline["PipelineDefinition"])
        return self._run(
            definition,
            pipeline_name,
            pipeline["PipelineArn"],
            parameters,
            display_name,
            description,
            register,
        )

    def run_definition(
        self,
        definition: dict | str,
        pipeline_name: str,
        parameters: dict | None = None,
        *,
        pipeline_arn: str | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> Execution:
        """Runs a definition that need not be stored in the API (tests, previews)."""
        if isinstance(definition, str):
            definition = json.loads(definition)
        region = boto3.session.Session().region_name or "us-east-1"
        pipeline_arn = pipeline_arn or (
            f"arn:aws:sagemaker:{region}:{DEFAULT_ACCOUNT}:pipeline/{pipeline_name.lower()}"
        )
        return self._run(
            definition,
            pipeline_name,
            pipeline_arn,
            parameters,
            display_name,
            description,
            register=lambda values, display: f"{pipeline_arn}/execution/{_new_id()}",
        )

    def _run(
        self,
        definition,
        pipeline_name,
        pipeline_arn,
        parameters,
        display_name,
        description,
        register,
    ) -> Execution:
        """Validates, registers (`register` returns the execution ARN) and runs."""
        nodes, notes = validate(definition)
        values = parameter_values(definition.get("Parameters", []), parameters)
        display_name = display_name or f"execution-{int(now().timestamp() * 1000)}"
        arn = register(values, display_name)
        sandbox = self.root / pipeline_name / arn.rsplit("/", 1)[-1]
        sandbox.mkdir(parents=True, exist_ok=False)  # never reuse an earlier execution's files
        steps = {node.name: StepRecord(node.name, node.step["Type"]) for node in nodes}
        execution = Execution(
            pipeline_name,
            pipeline_arn,
            arn,
            display_name,
            description,
            values,
            sandbox,
            now(),
            steps,
        )
        return _Run(self, execution, nodes, notes).go()


class _Run:
    """One execution in progress."""

    def __init__(self, runner: PipelineRunner, execution: Execution, nodes, notes):
        self.runner, self.execution, self.nodes, self.notes = runner, execution, nodes, notes
        self.s3 = boto3.client("s3")
        self.sagemaker = boto3.client("sagemaker")
        self.lock = threading.RLock()
        self.properties: dict[str, dict] = {}  # of the steps that succeeded
        self.arn_prefix = execution.pipeline_arn.split("pipeline/", 1)[0]
        self.property_files = {
            node.name: {
                spec["PropertyFileName"]: spec for spec in node.step.get("PropertyFiles", [])
            }
            for node in nodes
        }
        self.variables = {
            "PipelineExecutionId": execution.execution_id,
            "PipelineExecutionArn": execution.execution_arn,
            "PipelineName": execution.pipeline_name,
            "PipelineArn": execution.pipeline_arn,
            "StartDateTime": iso_time(execution.start_time),
        }

    def go(self) -> Execution:
        self._execution_status("Executing")
        stopping = False
        pool = ThreadPoolExecutor(max_workers=self.runner.max_workers)
        try:
            running = {}
            while True:
                free = self.runner.max_workers - len(running)
                for node in self._ready(stopping, free):
                    running[pool.submit(self._execute, node)] = node
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    future.result()
                    stopping |= self.execution.steps[node.name].status == "Failed"
        except BaseException:  # e.g. Ctrl-C: no job may outlive the runner
            stop_all_jobs()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        with self.lock:
            for record in self.execution.steps.values():
                if record.status == "Pending":
                    record.status = "NotExecuted"
            failed = [r for r in self.execution.steps.values() if r.status == "Failed"]
            fail_steps = [r for r in failed if r.type == "Fail"]
            if fail_steps:
                self.execution.failure_reason = fail_steps[0].failure_reason
            elif failed:
                self.execution.failure_reason = (
                    "Step failure: One or multiple steps failed: "
                    + "; ".join(f"{r.name}: {r.failure_reason}" for r in failed)
                )
            self.execution.end_time = now()
            self._execution_status("Failed" if failed else "Succeeded")
        return self.execution

    # -- scheduling -------------------------------------------------------------------------

    def _ready(self, stopping: bool, free: int) -> list[Node]:
        """Settles what can be settled and marks up to `free` steps that can start now as
        Starting (the others wait, Pending, for a worker)."""
        steps = self.execution.steps
        ready = []
        with self.lock:
            changed = True
            while changed:
                changed = False
                for node in self.nodes:
                    record = steps[node.name]
                    if record.status != "Pending":
                        continue
                    statuses = {steps[d].status for d in node.depends_on}
                    gate_closed = (
                        node.gate
                        and steps[node.gate[0]].status == "Succeeded"
                        and (self.properties[node.gate[0]]["Outcome"] != node.gate[1])
                    )
                    if gate_closed or statuses & {"Failed", "NotExecuted"}:
                        record.status = "NotExecuted"
                        changed = True
                    elif not stopping and statuses <= {"Succeeded"} and len(ready) < free:
                        self._start(node, record)
                        ready.append(node)
        return ready

    def _start(self, node: Node, record: StepRecord) -> None:
        record.workdir = self.execution.sandbox / node.name
        record.workdir.mkdir(parents=True)
        record.log_path = record.workdir / "log.txt"
        with open(record.log_path, "w", encoding="utf-8") as log:
            execution = self.execution.execution_arn
            log.write(f"[local runtime] step {node.name} ({record.type}) of {execution}\n")
            for note in self.notes.get(node.name, []):
                log.write(f"[local runtime] not emulated: {note}\n")
        job_step = JOB_STEPS.get(record.type)
        if job_step and job_step.resource:
            record.job_name = _job_name(self.execution.execution_id, node.name, job_step.name_limit)
            arn = f"{self.arn_prefix}{job_step.resource}/{record.job_name.lower()}"
            record.metadata = {job_step.metadata: {"arn": arn}}
        record.start_time = now()
        self._step_status(record, "Starting")

    # -- one step ---------------------------------------------------------------------------

    def _execute(self, node: Node) -> None:
        record = self.execution.steps[node.name]
        self._step_status(record, "Executing")
        try:
            result = self._perform(node, record)
        except (
            StepFailed,
            DefinitionError,
            ExpressionError,
            ApiValidationError,
            lambdas.LambdaError,
        ) as error:
            self._finish(record, "Failed", str(error))
        except (ClientError, BotoCoreError) as error:
            self._finish(record, "Failed", f"{type(error).__name__}: {error}")
        except Exception as error:  # a handler's own exception, or a bug: the step fails
            with open(record.log_path, "a", encoding="utf-8") as log:
                log.write(traceback.format_exc())
            self._finish(record, "Failed", str(error) or type(error).__name__)
        else:
            with self.lock:
                record.properties, record.outputs = result.properties, result.outputs
                record.metrics = result.metrics
                record.metadata = {**record.metadata, **result.metadata}
                self.properties[node.name] = result.properties
                for event in result.events:
                    self._emit(event)
                self._finish(record, "Succeeded")

    def _scope(self, job_variables: dict | None = None) -> Scope:
        with self.lock:
            steps = dict(self.properties)
        return Scope(
            parameters=self.execution.parameters,
            execution=self.variables,
            steps=steps,
            property_files=self.property_files,
            read_json=lambda uri: read_json(self.s3, uri),
            job_variables=job_variables or {},
        )

    def _perform(self, node: Node, record: StepRecord) -> StepResult:
        step, kind = node.step, record.type
        if kind == "Condition":
            scope = self._scope()
            outcome = all(condition_holds(c, scope) for c in step["Arguments"]["Conditions"])
            self._log(record, f"conditions evaluated to {outcome}")
            return StepResult(
                properties={"Outcome": outcome},
                outputs={"outcome": outcome},
                metadata={"condition": {"outcome": str(outcome)}},
            )
        if kind == "Fail":
            message = as_text(
                resolve(step["Arguments"].get("ErrorMessage", ""), self._scope()), "ErrorMessage"
            )
            record.metadata = {"fail": {"errorMessage": message}}
            raise StepFailed(message)
        if kind == "Lambda":
            arn = step["FunctionArn"]
            payload = resolve(step.get("Arguments", {}), self._scope())
            self._log(record, f"invoking {arn} with {json.dumps(payload)}")
            result = lambdas.invoke(arn, payload, record.log_path)
            self._log(record, f"returned {json.dumps(result)}")
            outputs = lambdas.output_parameters(arn, step.get("OutputParameters", []), result)
            parameters = [{"name": k, "value": as_text(v)} for k, v in outputs.items()]
            return StepResult(
                properties={"OutputParameters": outputs},
                outputs=outputs,
                metadata={"lambda": {"arn": arn, "outputParameters": parameters}},
            )
        job_step = JOB_STEPS[kind]
        variable = {"Processing": "ProcessingJobName", "Training": "TrainingJobName"}.get(kind)
        scope = self._scope({variable: record.job_name} if variable else None)
        arguments = resolve(step.get("Arguments", {}), scope)
        # The request SageMaker sends for the step, checked first as the service checks it,
        # then for what the local runtime supports (resolved values).
        request = dict(arguments)
        if job_step.name_member:
            request[job_step.name_member] = record.job_name
        check_request(job_step.operation, request)
        _check_service_rules(kind, arguments)
        check_fields(f"step '{node.name}'", arguments, job_step.fields)
        cache = step.get("CacheConfig") or {}
        key = cache_key(kind, arguments) if cache.get("Enabled") else None
        if cache.get("Enabled") and key is None:
            self._log(record, f"not emulated: step caching of {kind} steps (the step runs)")
        pipeline = self.execution.pipeline_arn
        if key:
            expiry = expire_after(cache.get("ExpireAfter"))
            hit = STEP_CACHE.lookup(pipeline, node.name, key, record.start_time, expiry)
            if hit is not None:
                record.job_name, record.metadata = hit.job_name, dict(hit.metadata)
                record.cache_hit_source = hit.execution_arn
                self._log(record, f"cache hit: reusing {hit.job_name} of {hit.execution_arn}")
                return hit.result
        job = Job(
            step_name=node.name,
            job_name=record.job_name,
            arguments=arguments,
            workdir=record.workdir,
            log_path=record.log_path,
            s3=self.s3,
            sagemaker=self.sagemaker,
            arn_prefix=self.arn_prefix,
        )
        result = job_step.run(job)
        if key:
            metadata = {**record.metadata, **result.metadata}
            entry = Entry(
                record.start_time, self.execution.execution_arn, record.job_name, metadata, result
            )
            STEP_CACHE.store(pipeline, node.name, key, entry)
        return result

    @staticmethod
    def _log(record: StepRecord, line: str) -> None:
        with open(record.log_path, "a", encoding="utf-8") as log:
            log.write(f"[local runtime] {line}\n")

    # -- status changes and their events ----------------------------------------------------

    def _finish(self, record: StepRecord, status: str, reason: str | None = None) -> None:
        with self.lock:
            record.end_time = now()
            if reason:
                self._log(record, f"failed: {reason}")
                record.failure_reason = reason[:FAILURE_REASON_LIMIT]
            self._step_status(record, status)

    def _step_status(self, record: StepRecord, status: str) -> None:
        with self.lock:
            previous = None if status == "Starting" else record.status
            record.status = status
            self._emit(events.step_status_change(self.execution, record, previous))

    def _execution_status(self, status: str) -> None:
        with self.lock:
            previous = None if status == "Executing" else self.execution.status
            self.execution.status = status
            _mirror_in_moto(self.execution)
            self._emit(events.execution_status_change(self.execution, previous))

    def _emit(self, event: dict) -> None:
        """Delivers an event; like EventBridge delivery, a failing consumer does not change the
        execution (the error is logged)."""
        try:
            self.runner.on_event(event)
        except Exception:
            logger.exception(
                "on_event failed for %s of %s", event["detail-type"], event["resources"]
            )


def _mirror_in_moto(execution: Execution) -> None:
    """moto records StartPipelineExecution as Succeeded at once and has no call to change an
    execution; the embedded server shares this process, so its record is kept in step with the
    run (DescribePipelineExecution then shows the real status). Nothing happens for executions
    moto does not know (run_definition) or when the API is elsewhere."""
    try:
        from moto.sagemaker.models import sagemaker_backends
    except ImportError:
        return
    _, _, _, region, account, _ = execution.execution_arn.split(":", 5)
    try:
        pipelines = sagemaker_backends[account][region].pipelines
    except KeyError:
        return
    for pipeline in pipelines.values():
        record = pipeline.pipeline_executions.get(execution.execution_arn)
        if record is not None:
            record.pipeline_execution_status = execution.status
            record.pipeline_execution_failure_reason = execution.failure_reason
            record.last_modified_time = execution.end_time or execution.start_time
