"""What every module of the data-quality engine shares: warnings and how values are quoted."""

from __future__ import annotations

import sys

NUMBER = (int, float)  # tuples, not int | float: the container's Python may be older than 3.10


def warn(message: str) -> None:
    print(f"data_quality: warning: {message}", file=sys.stderr)


def short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...'"


def listing(values, limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(short(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def share(count: int, total: int) -> str:
    percent = 100 * count / total
    # two decimals, but a non-zero count never shows as "0.00%"
    shown = f"{percent:.2f}" if percent >= 0.01 or not count else f"{percent:.1g}"
    return f"{count} of {total} values ({shown}%)"
