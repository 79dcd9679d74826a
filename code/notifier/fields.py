"""Reading an event: typed field access, execution ARNs, regions, times, console links."""

import os
import re
from datetime import datetime
from urllib.parse import quote

EXECUTION_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):\d{12}:pipeline/([^/\s]+)/execution/([^/\s]+)"
)

# Classic-console routes (undocumented by AWS, so the ARN is always printed beside the link).
# Studio deep links would need the Studio domain id, which no event carries.
CONSOLE_URL = "https://{region}.console.aws.amazon.com/sagemaker/home?region={region}#/{route}"
# Step metadata key (PipelineExecutionStepMetadata, camelCase in events) -> console page of the job.
JOB_ROUTES = {
    "processingJob": "processing-jobs",
    "trainingJob": "jobs",
    "transformJob": "transform-jobs",
    "tuningJob": "hyper-tuning-jobs",
}


class UnformattableEvent(ValueError):
    """The event is of an unknown type, lacks a field the message needs, or has a wrong type."""


def _get(mapping: dict, *path: str, where: str = "detail", required: bool = False) -> str | None:
    """The scalar at path as text; None when absent. A wrong type is a malformed event."""
    value = mapping
    for depth, key in enumerate(path):
        if value is None:  # an absent (null) parent: the field is absent too
            break
        if not isinstance(value, dict):
            name = ".".join(filter(None, (where, *path[:depth])))
            raise UnformattableEvent(f"{name} must be an object, got {type(value).__name__}")
        value = value.get(key)
    name = ".".join(filter(None, (where, *path)))
    if value is None or value == "":
        if required:
            raise UnformattableEvent(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise UnformattableEvent(f"{name} must be a string, got {type(value).__name__}")
    return str(value)


def _parse_execution_arn(arn: str) -> tuple[str, str, str]:
    """(region, pipeline name, execution id) of a pipeline execution ARN."""
    match = EXECUTION_ARN.fullmatch(arn)
    if not match:
        raise UnformattableEvent(
            f"detail.pipelineExecutionArn {arn!r} is not a pipeline execution ARN "
            "(arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<id>)"
        )
    return match.group(1), match.group(2), match.group(3)


def _region(event: dict, arn: str | None) -> str:
    """The resource's region: from its ARN, else the event's, else the Lambda's own."""
    parts = (arn or "").split(":")
    candidates = (parts[3] if len(parts) > 3 else "", _get(event, "region", where=""))
    for region in (*candidates, os.environ.get("AWS_REGION", "")):
        if region and re.fullmatch(r"[a-z0-9-]+", region):
            return region
    return "us-east-1"  # links need some region; the console offers to switch


def _console(region: str, route: str) -> str:
    return CONSOLE_URL.format(region=region, route=route)


def _execution_url(region: str, pipeline: str, execution_id: str) -> str:
    return _console(region, f"pipelines/{quote(pipeline)}/executions/{quote(execution_id)}")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _duration(start: str | None, end: str | None) -> str | None:
    try:
        seconds = int((_parse_time(end) - _parse_time(start)).total_seconds())
    except (AttributeError, TypeError, ValueError):  # absent, unparsable or naive/aware mix
        return None
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{hours} h {minutes:02d} min {seconds:02d} s"
        if hours
        else f"{minutes} min {seconds:02d} s"
    )


def _transition(previous: str | None, current: str) -> str:
    return f"{current} (was {previous})" if previous else current


def _words(name: str) -> str:
    """processingJob -> processing job, errorMessage -> error message, arn -> ARN."""
    return "ARN" if name == "arn" else re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", name).lower()
