"""Sharded profiling: which instance this is, and merging the shards' partial-*.json files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from step_common import InputError

from .profiles import PARTIAL_FORMAT, PARTIAL_VERSION, DatasetProfile


def shard_name(base: Path) -> str:
    """This instance's host name (algo-1, algo-2, ...) from SageMaker's resource config."""
    config = base.parent / "config" / "resourceconfig.json"
    try:
        host = json.loads(config.read_text(encoding="utf-8"))["current_host"]
    except (OSError, ValueError, KeyError, TypeError):
        return "algo-1"  # one instance, or not in SageMaker
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(host))


def load_partials(directory: Path) -> tuple[str, DatasetProfile]:
    """The mode and the merged profile of every partial-*.json under `directory`."""
    paths = sorted(directory.rglob("partial-*.json")) if directory.is_dir() else []
    if not paths:
        raise InputError(
            f"{directory}: no partial-*.json files; expected the outputs of the --shard step"
        )
    loaded = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != PARTIAL_FORMAT or data.get("version") != PARTIAL_VERSION:
                raise ValueError(f"not a {PARTIAL_FORMAT} file of version {PARTIAL_VERSION}")
            loaded.append((data["mode"], DatasetProfile.from_json(data), path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: unusable partial statistics ({exc})") from None
    modes = sorted({mode for mode, _, _ in loaded})
    if len(modes) != 1 or modes[0] not in ("baseline", "check"):
        raise InputError(f"{directory}: partials of mixed or unknown modes {modes}")
    # Merge in the order of each shard's first file: the result does not depend on host names.
    loaded.sort(key=lambda item: sorted(item[1].files)[:1])
    merged = DatasetProfile()
    for _, profile, _ in loaded:
        merged.merge(profile)
    return modes[0], merged
