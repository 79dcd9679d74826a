"""Explanation step: the model's own SHAP contributions (xgboost pred_contribs), summarised.

xgboost's TreeSHAP gives, for every record, one contribution per model column plus a bias whose
sum is the record's raw prediction (the margin; the prediction itself for reg:squarederror).
Source: xgboost.Booster.predict's documentation, parameter pred_contribs ("The sum of all
feature contributions is equal to the raw untransformed margin value of the prediction. Note
the final column is the bias term."), https://xgboost.readthedocs.io/en/release_3.0.0/python/python_api.html
Contributions of the one-hot columns of a categorical feature are summed back into that
feature (transform.json says which columns they are), so every summary uses the user's own
column names.

model: <base>/input/model/model.tar.gz, <base>/input/transform/transform.json,
       <base>/input/train/*.csv and <base>/input/test/*.csv (headerless, target first, as
       preprocess.py --mode fit writes them)
       -> <base>/output/explanations/attributions.json with "baseline" (a bounded, seeded sample
       of the train split) and "test" (the held-out test split, sampled like a batch: the
       version's global importance).
batch: the same model and transform, the baseline (<base>/input/baseline/attributions.json, the
       model version's model-mode file, or else <base>/input/train/*.csv, its train split, to
       sample here) and <base>/input/batch/*.csv (headerless, record_id first, as
       preprocess.py --mode apply writes them) -> attributions.json with "batch", "baseline",
       a verdict per feature in "changes" and one sentence per changed feature in "sentences"
       (the batch summary is of a seeded sample of at most --batch-rows records, or of every
       record with --per-record, which also writes
       <base>/output/per_record/attributions.csv: record_id, one column per feature, bias).

attributions.json is sketch-sized: per feature a handful of numbers, whatever the row count.
Change rule (per feature, batch vs baseline; documented in the README's "Explanations"): a
feature's attribution changed when its mean |contribution| or its mean signed contribution moved
by at least --min-change times its baseline mean |contribution| AND by more than --z standard
errors of that difference (so sampling noise in a small batch is not a change), and the feature
carries at least --min-share of the total mean |contribution| in the baseline or the batch.

Runs in the SageMaker XGBoost 3.0-5 image: Python 3.10, numpy 2.1.0, pandas 2.2.3 (source:
aws/sagemaker-xgboost-container, docker/3.0-5/base/Dockerfile.cpu and requirements.txt).
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from evaluate import load_model
from preprocess import load_transform
from step_common import InputError, default_base_dir, exit_step, run_step

PROG = "explain"
FORMAT_VERSION = 1
CHUNK_ROWS = 50_000  # rows scored per pred_contribs call: bounds memory for any batch size


def csv_files(folder):
    files = sorted(path for path in Path(folder).rglob("*.csv") if path.is_file())
    if not files:
        raise InputError(f"{folder}: no .csv files found; expected headerless numeric CSV files")
    return files


def chunks(folder, width):
    """(first column as strings, float matrix of the other columns) per block of rows of every
    headerless CSV file in folder; every row must have `width` columns after the first."""
    for path in csv_files(folder):
        reader_rows = 0
        try:
            reader = pd.read_csv(path, header=None, dtype=str, chunksize=CHUNK_ROWS)
            for frame in reader:
                if frame.shape[1] != width + 1:
                    raise InputError(
                        f"{path}: {frame.shape[1]} columns; expected {width + 1} (an id or target "
                        f"column, then the {width} columns the model was trained on)"
                    )
                cells = frame.iloc[:, 1:]
                values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(float)
                bad = np.argwhere(cells.notna().to_numpy() & np.isnan(values))
                if len(bad):
                    row, column = bad[0]
                    raise InputError(
                        f"{path}: column {column + 2} is {cells.iat[row, column]!r} in data row "
                        f"{reader_rows + row + 1}; expected a number (or an empty cell)"
                    )
                reader_rows += len(frame)
                yield frame.iloc[:, 0].to_numpy(str), values
        except pd.errors.EmptyDataError:
            raise InputError(f"{path}: no data rows; expected a headerless numeric CSV") from None


def feature_groups(spec):
    """[(feature name, [model column indices])] in transform.json order; a numeric feature has
    one column, a categorical one its one-hot columns (the order apply_transform writes)."""
    groups, column = [], 0
    for name in spec["features"]:
        width = len(spec["categorical"][name]["categories"]) if name in spec["categorical"] else 1
        groups.append((name, list(range(column, column + width))))
        column += width
    if column != len(spec["output_columns"]):
        raise InputError(
            f"transform.json: features describe {column} columns; expected "
            f"{len(spec['output_columns'])} like its output_columns"
        )
    return groups


class Explainer:
    """The model, the grouping matrix (model columns -> features) and contributions."""

    def __init__(self, base):
        self.booster = load_model(base / "input" / "model" / "model.tar.gz")
        spec = load_transform(base / "input" / "transform" / "transform.json")
        self.groups = feature_groups(spec)
        self.width = len(spec["output_columns"])
        if self.booster.num_features() != self.width:
            raise InputError(
                f"transform.json: {self.width} output_columns; expected "
                f"{self.booster.num_features()} as the model was trained on"
            )
        self.names = [name for name, _ in self.groups]
        self.grouping = np.zeros((self.width, len(self.groups)))
        for index, (_, columns) in enumerate(self.groups):
            self.grouping[columns, index] = 1.0

    def contributions(self, matrix):
        """(per-feature contributions, bias) for the rows of a transformed matrix: the row sums
        of both together are the model's raw predictions (xgboost's SHAP identity)."""
        raw = self.booster.predict(xgb.DMatrix(matrix), pred_contribs=True)
        return raw[:, :-1] @ self.grouping, raw[:, -1]


class Summary:
    """Streaming per-feature sums, so a batch of any size needs one block in memory."""

    def __init__(self, names):
        self.names = names
        self.rows = 0
        self.sums = {key: np.zeros(len(names)) for key in ("abs", "abs2", "signed", "signed2")}
        self.bias = 0.0

    def add(self, contributions, bias):
        self.rows += len(contributions)
        magnitude = np.abs(contributions)
        self.sums["abs"] += magnitude.sum(axis=0)
        self.sums["abs2"] += (magnitude**2).sum(axis=0)
        self.sums["signed"] += contributions.sum(axis=0)
        self.sums["signed2"] += (contributions**2).sum(axis=0)
        self.bias += float(bias.sum())

    def result(self, **extra):
        n = self.rows
        mean_abs = self.sums["abs"] / n
        mean = self.sums["signed"] / n
        # Population sd from the sums; max() guards the rounding of a constant column.
        sd_abs = np.sqrt(np.maximum(self.sums["abs2"] / n - mean_abs**2, 0))
        sd = np.sqrt(np.maximum(self.sums["signed2"] / n - mean**2, 0))
        total = mean_abs.sum()
        order = np.argsort(-mean_abs, kind="stable")
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(1, len(order) + 1)
        features = {
            name: {
                "mean_abs": float(mean_abs[i]),
                "mean": float(mean[i]),
                "share": float(mean_abs[i] / total) if total > 0 else 0.0,
                "rank": int(rank[i]),
                "sd_abs": float(sd_abs[i]),
                "sd": float(sd[i]),
            }
            for i, name in enumerate(self.names)
        }
        return {"rows": n, **extra, "bias": self.bias / n, "features": features}


def sample_rows(folder, width, size, seed):
    """A seeded uniform sample of at most `size` rows of the files in folder (target column
    dropped), kept in bounded memory: every row gets a seeded random key and the `size`
    smallest keys win, so the sample depends only on the data, its file order and the seed."""
    rng = np.random.default_rng(seed)
    kept_keys, kept_rows, total = np.empty(0), np.empty((0, width)), 0
    for _, matrix in chunks(folder, width):
        total += len(matrix)
        keys = np.concatenate([kept_keys, rng.random(len(matrix))])
        rows = np.vstack([kept_rows, matrix])
        best = np.argsort(keys, kind="stable")[:size]
        kept_keys, kept_rows = keys[best], rows[best]
    return kept_rows, total


def recorded_baseline(explainer, path):
    """The "baseline" section of a model-mode attributions.json (the model version's own,
    computed once at training time), checked against this model's features."""
    try:
        document = json.loads(path.read_text())
        baseline = document["baseline"]
        names = list(baseline["features"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path}: no readable baseline ({error!r}); expected the attributions.json that "
            f"explain.py --mode model wrote for this model version"
        ) from None
    if names != explainer.names:
        raise InputError(
            f"{path}: baseline features {names}; expected {explainer.names} from transform.json "
            f"(the attributions of another model version?)"
        )
    return baseline


def sampled_summary(explainer, folder, size, seed):
    """The summary of a seeded sample of at most `size` rows of the files in folder. TreeSHAP
    costs far more than a prediction (tens of times on this model family), and a few thousand
    rows already pin the means down; source_rows says how many rows there were."""
    rows, total = sample_rows(folder, explainer.width, size, seed)
    summary = Summary(explainer.names)
    summary.add(*explainer.contributions(rows))
    return summary.result(source_rows=total, seed=seed)


def baseline_summary(explainer, base, args):
    """The baseline: input/baseline/attributions.json when given (recorded at training time),
    else computed here from a seeded sample of the train split: the CSV files in
    input/baseline (what the model resolver passes for a version registered before
    explanations) or input/train. None in batch mode when there is neither: the batch is then
    reported alone, without a comparison."""
    recorded = base / "input" / "baseline" / "attributions.json"
    if recorded.exists():
        return recorded_baseline(explainer, recorded)
    for folder in (base / "input" / "baseline", base / "input" / "train"):
        if args.mode == "model" or any(folder.rglob("*.csv")):
            return sampled_summary(explainer, folder, args.baseline_rows, args.seed)
    return None


def compare(baseline, batch, rule):
    """{feature: verdict and evidence} for batch vs baseline under the change rule (docstring
    at the top of this file)."""
    changes = {}
    for name, before in baseline["features"].items():
        after = batch["features"][name]
        scale = before["mean_abs"]
        evidence = {}
        for key, sd_key in (("mean_abs", "sd_abs"), ("mean", "sd")):
            delta = after[key] - before[key]
            error = math.sqrt(
                after[sd_key] ** 2 / batch["rows"] + before[sd_key] ** 2 / baseline["rows"]
            )
            evidence[key] = (
                abs(delta) >= rule["min_change"] * scale and abs(delta) > rule["z"] * error
            )
        carries = max(before["share"], after["share"]) >= rule["min_share"]
        changes[name] = {
            "verdict": "changed" if carries and any(evidence.values()) else "stable",
            "relative_change": (after["mean_abs"] / scale - 1) if scale > 0 else None,
            "rank": [before["rank"], after["rank"]],
        }
    return changes


def sentence(name, before, after):
    return (
        f"{name}: mean |contribution| {before['mean_abs']:.3g} → {after['mean_abs']:.3g}, "
        f"mean {before['mean']:+.3g} → {after['mean']:+.3g}, rank {before['rank']} → "
        f"{after['rank']}, changed"
    )


def write_json(base, document):
    path = base / "output" / "explanations" / "attributions.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    return path


def explain_model(args):
    base = args.base_dir
    explainer = Explainer(base)
    train = base / "input" / "train"
    document = {
        "version": FORMAT_VERSION,
        "kind": "model",
        "baseline": sampled_summary(explainer, train, args.baseline_rows, args.seed),
        "test": sampled_summary(explainer, base / "input" / "test", args.batch_rows, args.seed),
    }
    path = write_json(base, document)
    print(f"{PROG}: global importance on {document['test']['rows']} test rows -> {path}")


def per_record_summary(explainer, base):
    """Every record's contributions to per_record/attributions.csv, and their summary."""
    summary = Summary(explainer.names)
    path = base / "output" / "per_record" / "attributions.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(",".join(["record_id", *explainer.names, "bias"]) + "\n")
    rows = 0
    for ids, matrix in chunks(base / "input" / "batch", explainer.width):
        contributions, bias = explainer.contributions(matrix)
        summary.add(contributions, bias)
        frame = pd.DataFrame(contributions, columns=explainer.names)
        frame.insert(0, "record_id", ids)
        frame["bias"] = bias
        frame.to_csv(path, mode="a", header=False, index=False, lineterminator="\n")
        rows += len(ids)
    return summary.result(source_rows=rows, seed=None)


def explain_batch(args):
    base = args.base_dir
    explainer = Explainer(base)
    baseline = baseline_summary(explainer, base, args)
    if args.per_record:
        batch = per_record_summary(explainer, base)
    else:
        batch = sampled_summary(explainer, base / "input" / "batch", args.batch_rows, args.seed)
    rule = {"min_change": args.min_change, "z": args.z, "min_share": args.min_share}
    if baseline is None:
        print(f"{PROG}: no baseline (no attributions.json or train split): batch alone")
    changes = compare(baseline, batch, rule) if baseline else {}
    changed = sorted(
        (name for name, change in changes.items() if change["verdict"] == "changed"),
        key=lambda name: batch["features"][name]["rank"],
    )
    document = {
        "version": FORMAT_VERSION,
        "kind": "batch",
        "rule": rule,
        "batch": batch,
        "baseline": baseline,
        "changes": changes,
        "sentences": [
            sentence(name, baseline["features"][name], batch["features"][name]) for name in changed
        ],
    }
    path = write_json(base, document)
    print(f"{PROG}: {batch['rows']} records, {len(changed)} feature(s) changed -> {path}")


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
        return value

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["model", "batch"], required=True)
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    parser.add_argument(
        "--baseline-rows", type=positive(int), default=2000, help="train-split sample size"
    )
    parser.add_argument(
        "--batch-rows",
        type=positive(int),
        default=20000,
        help="batch sample size for the summary (all records with --per-record)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    parser.add_argument("--min-change", type=positive(float), default=0.25)
    parser.add_argument("--z", type=positive(float), default=4.0)
    parser.add_argument("--min-share", type=float, default=0.02)
    parser.add_argument("--per-record", action="store_true", help="batch mode: per-record CSV")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    return run_step(PROG, explain_model if args.mode == "model" else explain_batch, args)


if __name__ == "__main__":
    exit_step(main())
