"""Labelled-batches step: the training data plus every labelled batch retraining learns from.

<base>/input/train/            the training data (CSV files with a header, target included)
<base>/input/snapshot/         the snapshot the data-version Lambda (action labelled_batches)
                               copied: manifest.json, labels/<id>/<id>.labels.csv (record_id,label)
                               and batches/<id>/<batch file>, each at the exact S3 version
-> <base>/output/training/     the training files unchanged, plus labelled_batches.csv: each
                               batch's rows that have a label, in the training data's columns,
                               the target set to the label (Preprocess fits on this folder)
                               (all but the held-out rows below)
-> <base>/output/recent/recent.csv  the held-out share of the labelled rows (--test-fraction
                               and --seed, as Preprocess's split; held_out()): raw columns, target
                               included, NOT trained on, so EvaluateModel can score challenger
                               and champion on recent data out of sample. With no held-out
                               rows: no_recent_rows.txt instead, so the prefix EvaluateModel
                               reads is never empty (SageMaker refuses an S3Prefix input with
                               "No S3 objects found under S3 URL", as aws/amazon-sagemaker-
                               examples issue 2489 shows for CreateTrainingJob)
-> <base>/output/report/labelled_batches.json   counts per batch and in all

A batch row's record_id is the one its scoring run gave it (preprocess.py record_ids() or
pipelines.yaml batch.id_column: the same code, imported). Rows without a label are left out;
labels whose record_id is not in the batch are counted as unmatched. A duplicate record_id in
a labels file, or a training column the batch lacks, fails naming the file. The training data
is copied as it is, not checked: Preprocess validates it (one place names what is wrong).
"""

import argparse
import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from model_quality import read_late_labels
from preprocess import id_column_values, read_folder, record_ids, write_csv
from step_common import InputError, csv_files, default_base_dir, exit_step, open_bytes, run_step

PROG = "labelled_batches"
OUTPUT_FILE = "labelled_batches.csv"
RECENT_FILE = "recent.csv"
NO_RECENT_FILE = "no_recent_rows.txt"


def held_out(batch_id, record_ids, fraction, seed):
    """Which rows are held out: sha256("<seed>:<batch id>:<record id>") read as a number in
    [0, 1) below fraction. Per row, not a shuffle of the whole set: a row held out once stays
    held out when later batches join the set, so a champion from an earlier retraining never
    trained on the rows it is now compared on; and the same set always splits the same way
    (step cache and fingerprint stay stable). About fraction of the rows, possibly none."""

    def share(record_id):
        digest = hashlib.sha256(f"{seed}:{batch_id}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return np.array([share(record_id) < fraction for record_id in record_ids], dtype=bool)


def join_batch(folder, labels_folder, columns, target, id_column=""):
    """(labelled rows in `columns`, their record ids, counts) of one batch folder and its
    labels folder."""
    raw, origins = read_folder(folder, [c for c in columns if c != target], same_columns=True)
    ids = id_column_values(raw, id_column, origins) if id_column else record_ids(len(raw))
    path, truth = read_late_labels(labels_folder)
    labels = truth.set_index("record_id")["label"].to_dict()  # read_late_labels: ids unique
    ids = [int(record_id) for record_id in ids]
    keep = [i for i, record_id in enumerate(ids) if record_id in labels]
    rows = raw.take(pa.array(keep, type=pa.int64()))  # raw: read_folder's Arrow table of text
    label_text = pa.array([repr(labels[ids[i]]) for i in keep], type=pa.string())
    matched = len(keep)
    counts = {
        "labels_file": path.name,
        "batch_rows": len(raw),
        "labelled_rows": matched,
        "unlabelled_rows": len(raw) - matched,  # left out
        "unmatched_labels": len(truth) - matched,  # ids not in the batch
    }
    values = [label_text if column == target else rows[column] for column in columns]
    return pa.table(values, names=columns), [ids[i] for i in keep], counts


def read_training(folder):
    """(header of the first training file, number of records in all), or (None, None) when
    they cannot be read. No other checks: Preprocess validates the training data and names
    what is wrong, as it did before this step existed."""
    columns, rows = None, 0
    try:
        for path in csv_files(folder):
            with open_bytes(path) as handle:
                reader = csv.reader(io.TextIOWrapper(handle, encoding="utf-8-sig", newline=""))
                header = next(reader, None)
                columns = columns or ([cell.strip() for cell in header] if header else None)
                rows += sum(1 for row in reader if any(cell.strip() for cell in row))
    except (InputError, UnicodeDecodeError, csv.Error, OSError):
        return None, None
    return columns, rows if columns else None


def build(base, target, id_column="", test_fraction=0.0, seed=0):
    train, snapshot = base / "input" / "train", base / "input" / "snapshot"
    out = base / "output"
    manifest_path = snapshot / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{manifest_path}: not found; expected the labelled-batches snapshot")
    manifest = json.loads(manifest_path.read_text())
    columns, training_rows = read_training(train)
    if columns is None and manifest["labelled_batches"]:
        raise InputError(
            f"{train}: no readable CSV header in the training data; expected the columns the "
            "labelled batches are given"
        )
    if columns is not None and target not in columns:
        raise InputError(
            f"{train}: the training data has no target column {target!r}; expected it in the "
            f"header ({', '.join(columns)})"
        )
    for path in csv_files(train):  # unchanged bytes: the training data as it was versioned
        copy = out / "training" / path.relative_to(train)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    batches, frames, masks = [], [], []
    for entry in manifest["labelled_batches"]:
        batch_id = entry["batch_id"]
        rows, ids, counts = join_batch(
            snapshot / "batches" / batch_id, snapshot / "labels" / batch_id, columns, target,
            id_column,
        )  # fmt: skip
        mask = held_out(batch_id, ids, test_fraction, seed)
        counts["held_out_rows"] = int(mask.sum())
        frames.append(rows)
        masks.append(mask)
        batches.append({"batch_id": batch_id, "batch_uri": entry["batch"]["uri"],
                        "labels_uri": entry["labels"]["uri"], **counts})  # fmt: skip
        print(f"{PROG}: {batch_id}: {counts['labelled_rows']} of {counts['batch_rows']} rows "
              f"labelled, {counts['unmatched_labels']} labels unmatched")  # fmt: skip
    labelled = sum(b["labelled_rows"] for b in batches)
    mask = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
    train_rows, recent_rows = np.flatnonzero(~mask), np.flatnonzero(mask)
    if frames:
        joined = pa.concat_tables(frames)
        for path, rows in ((out / "training" / OUTPUT_FILE, train_rows),
                           (out / "recent" / RECENT_FILE, recent_rows)):  # fmt: skip
            if len(rows):
                part = joined.take(pa.array(rows, type=pa.int64()))
                write_csv(path, columns, [part[c] for c in columns])
    if not len(recent_rows):
        (out / "recent").mkdir(parents=True, exist_ok=True)
        (out / "recent" / NO_RECENT_FILE).write_text("no labelled rows held out\n")
    report = {
        "summary": manifest["summary"],
        "training_data_rows": training_rows,
        "labelled_rows": labelled,
        "labelled_rows_trained_on": len(train_rows),
        "recent_rows_held_out": len(recent_rows),
        "training_records": None if training_rows is None else training_rows + len(train_rows),
        "batches": batches,
    }
    (out / "report").mkdir(parents=True, exist_ok=True)
    (out / "report" / "labelled_batches.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"{PROG}: {training_rows} training rows + {len(train_rows)} of {labelled} labelled "
          f"rows from {len(batches)} batch(es); {len(recent_rows)} held out")  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    parser.add_argument("--target", required=True)
    parser.add_argument("--id-column", default="", help="the batches' record id column, if any")
    parser.add_argument("--test-fraction", type=float, default=0.0,
                        help="share of the labelled rows held out to evaluate on")  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    # Unused by the computation: part of the step-cache key, as in preprocess.py.
    parser.add_argument("--data-version", default="", help="version of the training data")
    args = parser.parse_args(argv)
    return run_step(
        PROG, build, args.base_dir, args.target, args.id_column, args.test_fraction, args.seed
    )


if __name__ == "__main__":
    exit_step(main())
