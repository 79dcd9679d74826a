"""Model-card step, and the Markdown renderer of a model version's card.

step: everything the card needs, as the training pipeline hands it over before RegisterModel:
      <base>/input/evaluation/evaluation.json (EvaluateModel), <base>/input/statistics/
      statistics.json (the data-quality baseline), <base>/input/attributions/attributions.json
      (ExplainModel) and the champion's (the newest Approved version, found by the model
      resolver's `champion` action, step ResolveChampion): its metrics are evaluation.json's
      `champion` block (EvaluateModel scored it on the same test rows), its attributions
      <base>/input/champion_attributions/attributions.json, read only when --champion-version
      is not "none" and --champion-attributions is "yes" (otherwise the resolver passes a
      stand-in file, as a processing input cannot be empty); lineage and hyperparameters as
      arguments
      -> <base>/output/model_card/model_card.md, recorded on the version as model_card_uri.
      The approval status is PendingManualApproval at registration: the card says so and
      points to the registry (`python -m pipeline_scripts model-card --version N` renders
      the live card with the approval and rollback history).

render_card is a pure function shared with pipeline_scripts/model_card.py (which loads this
file by path): steps can only import scripts/, so the one renderer lives here.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

PROG = "model_card"
# Metric -> True when a higher value is better (evaluation.json regression_metrics).
HIGHER_IS_BETTER = {"mse": False, "rmse": False, "mae": False, "r2": True}
LINEAGE = (
    ("git_commit", "code commit"),
    ("training_data_url", "training data"),
    ("training_data_version", "training data version"),
    ("pipeline_execution_arn", "pipeline execution"),
    ("transform_uri", "fitted transform"),
)
MAX_CATEGORIES = 5
AT_REGISTRATION = (
    "- approval: PendingManualApproval at registration; see the model registry for its "
    "current status and history (or run `python -m pipeline_scripts model-card --version N`)"
)


@dataclass(frozen=True)
class VersionDocs:
    """One version: its DescribeModelPackage answer and its evaluation.json."""

    package: dict
    evaluation: dict

    @property
    def number(self):
        return self.package["ModelPackageVersion"]

    def metric(self, name: str, section: str = "regression_metrics"):
        return self.evaluation.get(section, {}).get(name, {}).get("value")


def _cell(value) -> str:
    """A Markdown table cell: numbers to 4 significant digits, pipes and newlines escaped."""
    if isinstance(value, float):
        text = f"{value:.4g}" if math.isfinite(value) else str(value)
    elif value is None or value == "":
        text = "–"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _compare(name: str, challenger, champion) -> str:
    if not all(isinstance(v, int | float) for v in (challenger, champion)):
        return "not comparable"
    if challenger == champion:
        return "same"
    better = (challenger > champion) == HIGHER_IS_BETTER.get(name, False)
    change = f"{abs(challenger - champion) / abs(champion):.1%}" if champion else "from 0"
    return f"{'better' if better else 'worse'} ({change})"


def _metrics(version: VersionDocs, champion: VersionDocs | None) -> list[str]:
    names = list(version.evaluation.get("regression_metrics", {}))
    if not names:
        return ["No evaluation metrics were found for this version."]
    header = ["metric", f"version {version.number}", "± sd", "mean predictor"]
    if champion:
        header += [f"champion (version {champion.number})", "this version is"]
    rows = []
    for name in names:
        value = version.metric(name)
        sd = version.evaluation["regression_metrics"][name].get("standard_deviation")
        row = [name, value, sd, version.metric(name, "baseline_mean_predictor")]
        if champion:
            row += [champion.metric(name), _compare(name, value, champion.metric(name))]
        rows.append(row)
    lines = _table(header, rows)
    if not champion:
        lines.append("\nNo champion: no other version was Approved when this card was made.")
    return lines


def _baseline(statistics: dict | None) -> list[str]:
    if not statistics:
        return ["No data-quality baseline was found for this version."]
    total = statistics.get("dataset", {}).get("item_count")
    lines = [f"{_cell(total)} training records profiled.", ""]
    rows = []
    for feature in statistics.get("features", []):
        numeric = feature.get("numerical_statistics")
        stats = numeric or feature.get("string_statistics", {})
        common = stats.get("common", {})
        present, missing = common.get("num_present", 0), common.get("num_missing", 0)
        missing_share = f"{missing / (present + missing):.1%}" if present + missing else None
        if numeric:
            summary = (
                f"mean {_cell(numeric.get('mean'))}, sd {_cell(numeric.get('std_dev'))}, "
                f"range {_cell(numeric.get('min'))} to {_cell(numeric.get('max'))}"
            )
        else:
            buckets = stats.get("distribution", {}).get("categorical", {}).get("buckets", [])
            top = sorted(buckets, key=lambda b: -b["count"])[:MAX_CATEGORIES]
            shares = ", ".join(f"{b['value']} {b['count'] / present:.0%}" for b in top if present)
            summary = f"{_cell(stats.get('distinct_count'))} distinct: {shares}"
        rows.append([feature["name"], feature.get("inferred_type"), missing_share, summary])
    return lines + _table(["feature", "type", "missing", "distribution"], rows)


def _explanations(attributions: dict | None, champion: dict | None) -> list[str]:
    """Mean |contribution| per feature (larger = more influence), ranked, next to the
    champion's when known."""
    if not attributions:
        return ["No feature attributions recorded for this version."]
    ranked = sorted(attributions.items(), key=lambda item: -item[1])
    if not champion:
        return _table(["feature", "mean abs. contribution"], [[k, v] for k, v in ranked])
    return _table(
        ["feature", "mean abs. contribution", "champion: mean abs. contribution"],
        [[k, v, champion.get(k)] for k, v in ranked],
    )


def render_card(
    package: dict,
    evaluation: dict,
    statistics: dict | None,
    champion: VersionDocs | None = None,
    hyperparameters: dict | None = None,
    attributions: dict | None = None,
    purpose: str | None = None,
    approval: list[str] | None = None,
    champion_attributions: dict | None = None,
) -> str:
    """The Markdown card. `attributions` (and the champion's): feature -> mean |contribution|,
    e.g. from xgboost pred_contribs; `purpose`: e.g. the group's description; `approval`: the
    lines of the approval history (default: the status at registration)."""
    version = VersionDocs(package, evaluation)
    properties = package.get("CustomerMetadataProperties") or {}
    container = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    group = package.get("ModelPackageGroupName", "")
    lines = [f"# Model card: {group} version {version.number}", ""]
    lines += ["## Purpose", "", purpose or package.get("ModelPackageDescription") or "–", ""]
    lines += ["## Lineage", ""]
    lines += [f"- {label}: {_cell(properties.get(key))}" for key, label in LINEAGE]
    lines += [f"- model artefact: {_cell(container.get('ModelDataUrl'))}"]
    lines += [f"- container image: {_cell(container.get('Image'))}", ""]
    lines += ["## Hyperparameters", ""]
    if hyperparameters:
        lines += _table(["name", "value"], [[k, v] for k, v in sorted(hyperparameters.items())])
    else:
        lines.append("Not recorded on the version.")
    lines += ["", "## Metrics (test split)", ""] + _metrics(version, champion)
    lines += ["", "## Data-quality baseline", ""] + _baseline(statistics)
    lines += ["", "## Explanations", ""] + _explanations(attributions, champion_attributions)
    lines += ["", "## Approval history", ""] + (approval or [AT_REGISTRATION])
    return "\n".join(lines) + "\n"


def importance(document: dict | None) -> dict | None:
    """feature -> mean |contribution| on the test split of an ExplainModel attributions.json."""
    if not document:
        return None
    return {name: v["mean_abs"] for name, v in document["test"]["features"].items()}


# -- the step ------------------------------------------------------------------------------


def _json(path: Path, required: bool = True) -> dict | None:
    # Imported here: pipeline_scripts/model_card.py loads this file for render_card only.
    from step_common import InputError

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        if required:
            raise InputError(f"{path}: not found; expected the file its step writes") from None
        return None
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return name, value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=None, help="the job root")
    parser.add_argument("--group", required=True, help="model package group name")
    parser.add_argument("--purpose", default="")
    parser.add_argument("--git-commit", required=True)
    parser.add_argument("--data-version", required=True)
    parser.add_argument("--execution-arn", required=True)
    parser.add_argument("--model-data-url", required=True)
    parser.add_argument("--image-uri", required=True)
    parser.add_argument("--champion-version", required=True, help='"none" without a champion')
    parser.add_argument(
        "--champion-attributions", choices=["yes", "no"], default="yes",
        help="no: the champion was registered before explanations",
    )  # fmt: skip
    parser.add_argument("--hyperparameter", type=_pair, action="append", default=[])
    return parser.parse_args(argv)


def build(args) -> Path:
    base = args.base_dir / "input"
    package = {
        "ModelPackageGroupName": args.group,
        "ModelPackageVersion": "(new)",
        "CustomerMetadataProperties": {
            "git_commit": args.git_commit,
            "training_data_version": args.data_version,
            "pipeline_execution_arn": args.execution_arn,
        },
        "InferenceSpecification": {
            "Containers": [{"ModelDataUrl": args.model_data_url, "Image": args.image_uri}]
        },
    }
    evaluation = _json(base / "evaluation" / "evaluation.json")
    champion = champion_attributions = None
    if args.champion_version != "none":
        # EvaluateModel scored the champion on the same test rows: evaluation.json "champion".
        champion = VersionDocs(
            {"ModelPackageVersion": args.champion_version}, evaluation.get("champion", {})
        )
        if args.champion_attributions == "yes":
            champion_attributions = importance(
                _json(base / "champion_attributions" / "attributions.json")
            )
    card = render_card(
        package,
        evaluation,
        _json(base / "statistics" / "statistics.json"),
        champion=champion,
        hyperparameters=dict(args.hyperparameter),
        attributions=importance(_json(base / "attributions" / "attributions.json")),
        purpose=args.purpose or None,
        champion_attributions=champion_attributions,
    )
    path = args.base_dir / "output" / "model_card" / "model_card.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card, encoding="utf-8")
    return path


def main(argv=None) -> int:
    from step_common import default_base_dir, run_step

    args = parse_args(argv)
    args.base_dir = args.base_dir or default_base_dir()
    return run_step(PROG, lambda: print(f"{PROG}: card -> {build(args)}"))


if __name__ == "__main__":
    from step_common import exit_step

    exit_step(main())
