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


def importance_table(version: dict, champion: dict | None = None) -> str:
    """Markdown table of a new version's global importance next to the champion's (both model
    documents), most important feature of the new version first."""
    new = version["test"]["features"]
    old = champion["test"]["features"] if champion else {}
    header = "| feature | this version: mean abs. contribution (rank) |"
    rule = "| --- | --- |"
    if champion:
        header += " champion: mean abs. contribution (rank) | change |"
        rule += " --- | --- |"
    rows = []
    for name, values in sorted(new.items(), key=lambda item: item[1]["rank"]):
        row = f"| {name} | {values['mean_abs']:.3g} ({values['rank']}) |"
        if champion:
            before = old.get(name)
            if before is None:
                row += " – | new feature |"
            else:
                change = (
                    f"{values['mean_abs'] / before['mean_abs'] - 1:+.0%}"
                    if before["mean_abs"] > 0
                    else "–"
                )
                row += f" {before['mean_abs']:.3g} ({before['rank']}) | {change} |"
        rows.append(row)
    return "\n".join([header, rule, *rows]) + "\n"
