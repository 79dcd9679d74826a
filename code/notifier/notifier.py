"""Lambda: turn SageMaker pipeline, model registry and S3 events into readable SNS e-mails.

event:   what the EventBridge rules (events/*.json) deliver: the input transformer's
         {"rule", "detail-type", "source", "time", "region", "account", "detail"}, or a raw
         EventBridge event (the same keys without "rule"). Formatted detail-types: pipeline
         execution status change, pipeline step status change, model package state change and
         S3 "Object Created". Anything else, or anything malformed, is logged and sent as a
         generic message carrying the raw event: no notification is lost to a formatting
         problem, and the event's content never makes the handler raise.
env:     SNS_TOPIC_ARN (required); CUSTOM_NOTIFICATION_CONFIG, a JSON list of
         {"step_name", "step_status", "step_custom_message"}: the message heads the e-mail of
         that step reaching that status, which is then sent even if NOTIFY_STATUSES leaves the
         status out; NOTIFY_STATUSES, JSON {"execution": [...], "step": [...]}: the statuses that
         send e-mail (default: execution Succeeded, Failed, Stopped; step Failed).
         A malformed CUSTOM_NOTIFICATION_CONFIG / NOTIFY_STATUSES is logged once per container
         and listed at the bottom of every message; the valid entries / the defaults apply.
         INFERENCE_PIPELINE and ARTIFACTS_URI (optional): a Succeeded execution of that
         pipeline reads its data- and model-quality results from the artifacts and says in the
         subject when there were violations or model quality was skipped or had too few labels.
returns: {"published": bool, "subject": str | None, "reason": str} (+ "message_id" when sent)
raises:  only when publishing fails or SNS_TOPIC_ARN is unusable, so Lambda's retries and
         dead-letter queue keep the event.
IAM:     sns:Publish on SNS_TOPIC_ARN (and kms:GenerateDataKey, kms:Decrypt on its key);
         s3:GetObject on the inference pipeline's quality outputs and ExplainBatch's
         attributions.json (and kms:Decrypt on their key).

The code is split by idea into the modules beside this one (settings, fields, message,
lookups, formatters, explanations); this module publishes and holds the handler.
"""

import functools
import importlib
import logging
import os
import re
import sys
import types
from pathlib import Path

import boto3


def _load_parts():
    """The modules beside this file, as one package whose modules import each other relatively.

    Lambda imports this file as the top-level module ``notifier``; the local runtime and the
    tests load it by path under other names. A package made here for this file's folder works
    the same in all three (the zip, the repository, an unpacked deployed zip), without changing
    sys.path; its name follows this module's, so each load gets its own parts, as before the split.
    """
    name = f"{__name__}_parts"
    for loaded in [key for key in sys.modules if key == name or key.startswith(f"{name}.")]:
        del sys.modules[loaded]  # this file loaded again under the same name: fresh parts too
    package = types.ModuleType(name)
    package.__path__ = [str(Path(__file__).resolve().parent)]
    sys.modules[name] = package
    return package


_parts = _load_parts()
_settings = importlib.import_module(f"{_parts.__name__}.settings")
_message = importlib.import_module(f"{_parts.__name__}.message")
_lookups = importlib.import_module(f"{_parts.__name__}.lookups")
_formatters = importlib.import_module(f"{_parts.__name__}.formatters")

# What the tests and the local runtime use, under the names they have always had.
KNOWN_STATUSES = _settings.KNOWN_STATUSES
load_config = _settings.load_config
_log = _settings._log
logger = _settings.logger
UnformattableEvent = _formatters.UnformattableEvent
build_notification = _formatters.build_notification
FORMATTERS = _formatters.FORMATTERS
STEP_EVENT = _formatters.STEP_EVENT
MODEL_PACKAGE_EVENT = _formatters.MODEL_PACKAGE_EVENT
NOT_REGISTERED_STEP = _formatters.NOT_REGISTERED_STEP
SUBJECT_MAX_CHARS = _message.SUBJECT_MAX_CHARS
MESSAGE_MAX_BYTES = _message.MESSAGE_MAX_BYTES
_subject = _message._subject
_generic = _message._generic
_truncate_utf8 = _message._truncate_utf8
_sagemaker_client = _lookups._sagemaker_client
_endpoints = _lookups._endpoints

TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?")


class NotifierConfigError(RuntimeError):
    """SNS_TOPIC_ARN is missing or not a topic ARN: nothing can be published."""


@functools.lru_cache(maxsize=4)
def _sns_client(region: str, endpoint_env: tuple):
    # Built on first use, not at import: the region comes from the topic ARN and boto3 reads
    # AWS_ENDPOINT_URL(_SNS) (the local runtime's moto server) when the client is created;
    # endpoint_env is in the cache key so a changed endpoint gets a new client.
    return boto3.client("sns", region_name=region)


def _topic_arn() -> str:
    arn = os.environ.get("SNS_TOPIC_ARN", "").strip()
    if not TOPIC_ARN.fullmatch(arn):
        raise NotifierConfigError(
            f"environment variable SNS_TOPIC_ARN must be an SNS topic ARN like "
            f"arn:aws:sns:<region>:<account>:<topic>; got {arn!r}"
        )
    return arn


def _publish(subject: str, body: str) -> str:
    try:
        topic = _topic_arn()
        region = TOPIC_ARN.fullmatch(topic).group(1)
        endpoints = _endpoints("SNS")
        # Every formatter stays far below the limit; this guards custom messages and raw events.
        message = _truncate_utf8(body, MESSAGE_MAX_BYTES)
        response = _sns_client(region, endpoints).publish(
            TopicArn=topic, Subject=subject, Message=message
        )
    except Exception as error:  # logged with what was lost, then raised for retries / the DLQ
        _log(
            "publish failed",
            logging.ERROR,
            error=f"{type(error).__name__}: {error}",
            subject=subject,
        )
        raise
    return response["MessageId"]


def handler(event, context=None) -> dict:
    config = load_config(
        os.environ.get("CUSTOM_NOTIFICATION_CONFIG"), os.environ.get("NOTIFY_STATUSES")
    )
    try:
        note = build_notification(event, config)
    except UnformattableEvent as problem:
        note = _generic(event, str(problem), config)
    except Exception as error:  # a formatter bug must not cost the team the notification
        note = _generic(event, f"notifier error {type(error).__name__}: {error}", config)
    if not note.publish:
        _log("not notified", reason=note.reason)
        return {"published": False, "subject": None, "reason": note.reason}
    message_id = _publish(note.subject, note.body)
    _log("notified", subject=note.subject, reason=note.reason, message_id=message_id)
    return {
        "published": True,
        "subject": note.subject,
        "reason": note.reason,
        "message_id": message_id,
    }
