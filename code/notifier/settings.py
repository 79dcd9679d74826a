"""The notifier's settings from its environment: which statuses send e-mail, custom messages.

Parsed once per distinct value (at cold start); a malformed value never raises: it is logged
once and listed at the bottom of every message, and the valid entries or the defaults apply.
"""

import functools
import json
import logging
from dataclasses import dataclass

from lambda_contract import CONTRACT  # code/common/: the shared names

# One logger for every module of the notifier, named as the Lambda's handler module.
logger = logging.getLogger("notifier")
logger.setLevel(logging.INFO)


# Step names, output names and metadata keys the pipelines use (pipeline_scripts/contract.py).
STEPS, OUTPUTS, METADATA_KEYS = CONTRACT["steps"], CONTRACT["outputs"], CONTRACT["metadata_keys"]

# Exactly as SageMaker spells them (PipelineExecutionStatus, StepStatus): compared case-sensitively.
KNOWN_STATUSES = {
    "execution": ("Executing", "Stopping", "Stopped", "Failed", "Succeeded"),
    "step": ("Starting", "Executing", "Stopping", "Stopped", "Failed", "Succeeded"),
}
DEFAULT_NOTIFY = {"execution": ("Succeeded", "Failed", "Stopped"), "step": ("Failed",)}
CUSTOM_KEYS = ("step_name", "step_status", "step_custom_message")


@dataclass(frozen=True)
class Config:
    custom_messages: dict  # (step_name, step_status) -> tuple of messages
    notify: dict  # "execution" | "step" -> frozenset of statuses
    problems: tuple  # human-readable configuration errors


def _log(message: str, level: int = logging.INFO, **fields) -> None:
    # One JSON object per line: CloudWatch Logs Insights can query every field.
    logger.log(level, json.dumps({"message": message, **fields}, default=str, ensure_ascii=False))


def _parse_custom(raw: str | None, problems: list) -> dict:
    messages: dict = {}
    if raw is None or not raw.strip():
        return messages
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        problems.append(
            f"CUSTOM_NOTIFICATION_CONFIG is not valid JSON ({error}); no custom messages are sent"
        )
        return messages
    if not isinstance(entries, list):
        problems.append(
            "CUSTOM_NOTIFICATION_CONFIG must be a JSON list of {step_name, step_status, "
            "step_custom_message} objects, "
            f"got {type(entries).__name__}; no custom messages are sent"
        )
        return messages
    for i, entry in enumerate(entries):
        where = f"CUSTOM_NOTIFICATION_CONFIG[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be an object, got {type(entry).__name__}; ignored")
            continue
        bad = [
            key
            for key in CUSTOM_KEYS
            if not isinstance(entry.get(key), str) or not entry[key].strip()
        ]
        unknown = sorted(set(entry) - set(CUSTOM_KEYS))
        if bad:
            extra = f" (unknown keys: {', '.join(unknown)})" if unknown else ""
            problems.append(f"{where}: {', '.join(bad)} must be non-empty strings{extra}; ignored")
            continue
        status = entry["step_status"]
        if status not in KNOWN_STATUSES["step"]:
            problems.append(
                f"{where}.step_status {status!r} is not a step status (case-sensitive: "
                f"{', '.join(KNOWN_STATUSES['step'])}); ignored"
            )
            continue
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(unknown)} ignored")
        key = (entry["step_name"].strip(), status)
        messages[key] = messages.get(key, ()) + (entry["step_custom_message"].strip(),)
    return messages


def _parse_notify(raw: str | None, problems: list) -> dict:
    notify = {kind: frozenset(statuses) for kind, statuses in DEFAULT_NOTIFY.items()}
    if raw is None or not raw.strip():
        return notify
    defaults = json.dumps({kind: list(statuses) for kind, statuses in DEFAULT_NOTIFY.items()})
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as error:
        problems.append(f"NOTIFY_STATUSES is not valid JSON ({error}); using {defaults}")
        return notify
    if not isinstance(value, dict):
        problems.append(
            'NOTIFY_STATUSES must be a JSON object like {"execution": [...], "step": [...]}, '
            f"got {type(value).__name__}; using {defaults}"
        )
        return notify
    for kind in sorted(set(value) - set(KNOWN_STATUSES)):
        problems.append(f"NOTIFY_STATUSES.{kind} is not a known key (execution, step); ignored")
    for kind, known in KNOWN_STATUSES.items():
        if kind not in value:
            continue
        statuses = value[kind]
        if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
            problems.append(
                f"NOTIFY_STATUSES.{kind} must be a list of strings, got {json.dumps(statuses)}; "
                f"using {list(DEFAULT_NOTIFY[kind])}"
            )
            continue
        unknown = [s for s in statuses if s not in known]
        if unknown:
            problems.append(
                f"NOTIFY_STATUSES.{kind}: {unknown} are not {kind} statuses (case-sensitive: "
                f"{', '.join(known)}); ignored"
            )
        notify[kind] = frozenset(s for s in statuses if s in known)
    return notify


@functools.lru_cache(maxsize=8)
def load_config(custom_raw: str | None, notify_raw: str | None) -> Config:
    """Parse the JSON env vars once per distinct value, i.e. at cold start; never raises."""
    problems: list = []
    config = Config(
        custom_messages=_parse_custom(custom_raw, problems),
        notify=_parse_notify(notify_raw, problems),
        problems=tuple(problems),
    )
    for problem in problems:
        _log("notifier configuration problem", logging.ERROR, problem=problem)
    return config
