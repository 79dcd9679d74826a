"""Text for people from the attributions.json that scripts/explain.py writes.

Standard library only, so the notifier Lambda (this folder is its deployment package) and the
local runtime's report share one renderer. explain.py already puts the sentences about changed
features into the file, so nothing here recomputes the change rule.
"""

from __future__ import annotations

TOP_DRIVERS = 3


def _drivers(section: dict, top: int) -> str:
    ranked = sorted(section["features"].items(), key=lambda item: item[1]["rank"])[:top]
    return ", ".join(f"{name} ({values['share']:.0%})" for name, values in ranked)


def explanation_lines(attributions: dict, top: int = TOP_DRIVERS) -> list[str]:
    """Top drivers (share of the total mean |contribution|) and, for a batch, what changed
    against the training baseline; [] for a document this version does not know."""
    if attributions.get("kind") == "model":
        test = attributions["test"]
        return [f"Top drivers on the {test['rows']}-row test split: {_drivers(test, top)}."]
    if attributions.get("kind") != "batch":
        return []
    batch, baseline = attributions["batch"], attributions["baseline"]
    if not baseline:  # a version registered before explanations, without its train split
        return [
            f"Top drivers of this batch's {batch['rows']} predictions: {_drivers(batch, top)} "
            "(no training baseline recorded for this model version to compare with)."
        ]
    lines = [
        f"Top drivers of this batch's {batch['rows']} predictions: {_drivers(batch, top)} "
        f"(training baseline, {baseline['rows']} sampled rows: {_drivers(baseline, top)})."
    ]
    sentences = attributions.get("sentences") or []
    if not sentences:
        return lines + ["No feature's attribution changed against the training baseline."]
    return (
        lines
        + [f"Attribution changes against the training baseline ({len(sentences)}):"]
        + [f"- {sentence}" for sentence in sentences]
    )


def global_importance(attributions: dict) -> dict[str, float]:
    """feature -> mean |contribution| on the held-out test split (a model document)."""
    return {name: v["mean_abs"] for name, v in attributions["test"]["features"].items()}


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def _change(new: float, old: float) -> str:
    return f"{new / old - 1:+.0%}" if old > 0 else "–"


def batch_table(attributions: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a batch document: per feature, baseline vs batch mean |contribution|
    (rank), mean contribution and the verdict, the batch's most important feature first. The
    report renders it as HTML, e-mails and cards as Markdown (markdown())."""
    batch = attributions["batch"]["features"]
    baseline = (attributions["baseline"] or {}).get("features", {})
    header = [
        "feature",
        "baseline: mean abs. contribution (rank)",
        "batch: mean abs. contribution (rank)",
        "change",
        "mean contribution: baseline → batch",
        "verdict",
    ]
    rows = []
    for name, after in sorted(batch.items(), key=lambda item: item[1]["rank"]):
        before = baseline.get(name)
        if before is None:  # no baseline: the batch alone
            rows.append(
                [name, "–", f"{after['mean_abs']:.3g} ({after['rank']})", "–",
                 f"– → {after['mean']:+.3g}", "no baseline"]
            )  # fmt: skip
            continue
        rows.append(
            [
                name,
                f"{before['mean_abs']:.3g} ({before['rank']})",
                f"{after['mean_abs']:.3g} ({after['rank']})",
                _change(after["mean_abs"], before["mean_abs"]),
                f"{before['mean']:+.3g} → {after['mean']:+.3g}",
                attributions["changes"][name]["verdict"],
            ]
        )
    return header, rows


def importance_table(version: dict, champion: dict | None = None) -> str:
    """Markdown table of a new version's global importance next to the champion's (both model
    documents), most important feature of the new version first."""
    new = version["test"]["features"]
    old = champion["test"]["features"] if champion else {}
    header = ["feature", "this version: mean abs. contribution (rank)"]
    if champion:
        header += ["champion: mean abs. contribution (rank)", "change"]
    rows = []
    for name, values in sorted(new.items(), key=lambda item: item[1]["rank"]):
        row = [name, f"{values['mean_abs']:.3g} ({values['rank']})"]
        if champion:
            before = old.get(name)
            row += (
                ["–", "new feature"]
                if before is None
                else [
                    f"{before['mean_abs']:.3g} ({before['rank']})",
                    _change(values["mean_abs"], before["mean_abs"]),
                ]
            )
        rows.append(row)
    return markdown(header, rows)
