"""StartPipelineExecution's ClientRequestToken, honoured by the embedded AWS API as by SageMaker.

SageMaker API reference, StartPipelineExecution: ClientRequestToken is "A unique,
case-sensitive identifier that you provide to ensure the idempotency of the operation. An
idempotent operation completes no more than once." (botocore: IdempotencyToken, 32..128 chars,
filled with a fresh UUID by boto3 when the caller gives none). moto stores the token but starts
a new execution for every call; this makes a repeated token return the execution it started,
which is what the batch dispatcher relies on to turn duplicate S3 events into one execution.
"""

from __future__ import annotations

import threading

from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.utils import get_pipeline_from_name

_lock = threading.Lock()


def honour_client_request_token() -> None:
    """Patches moto's backend once per process (the embedded server runs in this process)."""
    original = SageMakerModelBackend.start_pipeline_execution
    if getattr(original, "honours_client_request_token", False):
        return

    def start_pipeline_execution(self, pipeline_name, *args, **kwargs):
        token = kwargs.get("client_request_token") or (args[-1] if len(args) == 5 else None)
        with _lock:  # two concurrent calls with one token must not both start
            pipeline = get_pipeline_from_name(self.pipelines, pipeline_name)
            for arn, execution in pipeline.pipeline_executions.items():
                if token and execution.client_request_token == token:
                    return {"PipelineExecutionArn": arn}
            response = original(self, pipeline_name, *args, **kwargs)
            # moto records a new execution as Succeeded; SageMaker's starts Executing (the
            # runner then mirrors the real status into this record).
            execution = pipeline.pipeline_executions[response["PipelineExecutionArn"]]
            execution.pipeline_execution_status = "Executing"
            return response

    start_pipeline_execution.honours_client_request_token = True
    SageMakerModelBackend.start_pipeline_execution = start_pipeline_execution
