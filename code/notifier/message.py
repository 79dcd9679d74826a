"""Composing an e-mail: subject, body layout, size limits, and the generic message."""

import json
import logging
import re
from dataclasses import dataclass

from .fields import _get
from .settings import Config, _log

# SNS Publish: "Subjects must be UTF-8 text with no line breaks or control characters, and less
# than 100 characters long"; a message is at most 256 KB (262,144 bytes).
SUBJECT_MAX_CHARS = 99
MESSAGE_MAX_BYTES = 262_144
# A generic message keeps this much room for its own text around the raw event.
RAW_EVENT_MAX_BYTES = MESSAGE_MAX_BYTES - 16_384
LOG_EVENT_MAX_BYTES = 16_384


@dataclass(frozen=True)
class Notification:
    subject: str | None
    body: str
    reason: str
    publish: bool = True


def _subject(text: str) -> str:
    """One line (SNS rejects line breaks and control characters), under SNS's length limit."""
    text = " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).split())
    if len(text) > SUBJECT_MAX_CHARS:
        text = text[: SUBJECT_MAX_CHARS - 3].rstrip() + "..."
    return text or "SageMaker notification"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    marker = f"\n... [truncated: showing about {max_bytes} of {len(data)} bytes]"
    return data[: max_bytes - len(marker.encode())].decode("utf-8", errors="ignore") + marker


def _table(rows: list) -> list:
    rows = [(label, value) for label, value in rows if value not in (None, "")]
    width = max((len(label) for label, _ in rows), default=0) + 2
    return [f"{label + ':':<{width}}{value}" for label, value in rows]


def _block(title: str, text: str) -> list:
    return [title, *(f"  {line}" for line in text.splitlines()), ""]


def _body(
    event: dict,
    config: Config,
    *,
    headline: str,
    rows: list,
    links: list,
    custom: tuple = (),
    failure: str | None = None,
    explained: list | None = None,
) -> str:
    lines = []
    for message in custom:  # the team's own words first: that is what they asked to see
        lines += [message, ""]
    lines += [headline, ""]
    if failure:
        lines += _block("FAILURE REASON", failure)
    lines += [*_table(rows), ""]
    if explained:
        lines += _block("EXPLANATIONS (feature attributions)", "\n".join(explained))
    lines += [*links, ""]
    lines += _table(
        [
            ("Event time", _get(event, "time", where="")),
            ("Region", _get(event, "region", where="")),
            ("Account", _get(event, "account", where="")),
            ("EventBridge rule", _get(event, "rule", where="")),
        ]
    )
    if config.problems:
        lines += ["", "Notifier configuration problems (fix the notifier Lambda's environment):"]
        lines += [f"  - {problem}" for problem in config.problems]
    return "\n".join(lines)


def _skip(reason: str) -> Notification:
    return Notification(subject=None, body="", reason=reason, publish=False)


def _dump(event) -> str:
    try:
        return json.dumps(event, indent=2, default=repr, ensure_ascii=False)
    except Exception:  # non-string keys, cycles, extreme nesting: fall back to repr
        pass
    try:
        return repr(event)
    except Exception:  # the generic message must go out even for an unprintable object
        return f"<{type(event).__name__} that cannot be printed>"


def _generic(event, problem: str, config: Config) -> Notification:
    raw = _dump(event)
    _log(
        "unformattable event",
        logging.WARNING,
        problem=problem,
        event=_truncate_utf8(raw, LOG_EVENT_MAX_BYTES),
    )
    detail_type = event.get("detail-type") if isinstance(event, dict) else None
    label = (
        detail_type
        if isinstance(detail_type, str) and detail_type.strip()
        else type(event).__name__
    )
    lines = [
        f"The notifier could not format this event ({problem}), so it is sent as received.",
        "If it should be formatted, extend code/notifier/formatters.py; if it should not "
        "arrive here, narrow the EventBridge rule that matched it.",
        "",
        *_block("RAW EVENT", _truncate_utf8(raw, RAW_EVENT_MAX_BYTES)),
    ]
    if config.problems:
        lines += ["Notifier configuration problems (fix the notifier Lambda's environment):"]
        lines += [f"  - {p}" for p in config.problems]
    return Notification(
        _subject(f"Unrecognised event: {label}"), "\n".join(lines), f"generic message: {problem}"
    )
