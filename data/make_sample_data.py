"""Generate the project's synthetic, abalone-shaped sample data (deterministic).

    python data/make_sample_data.py [--out-dir DIR]

writes DIR/train/abalone_synthetic_train.csv (4000 rows),
DIR/inference/abalone_synthetic_batch_drift.csv (1000 rows, with a deliberate drift),
DIR/inference/abalone_synthetic_batch_clean.csv (500 rows like the training data) and, for labels
that arrive later, DIR/later/abalone_synthetic_batch_late.csv (1000 drifted rows without
`rings`) with its labels DIR/later/abalone_synthetic_batch_late.labels.csv (`record_id,label`,
record_id = the data line in the batch file, 1 for the first row after the header).
DIR defaults to this file's folder. Re-running rewrites every file byte for byte.

Nothing here comes from the UCI Abalone file: every row is drawn from the simple
generative model below, whose constants were chosen so the data behaves like real
abalone (predicting the mean gives MSE ~10, a boosted-tree model ~5).
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611
COLUMNS = [
    "sex",
    "length",
    "diameter",
    "height",
    "whole_weight",
    "shucked_weight",
    "viscera_weight",
    "shell_weight",
    "rings",
]
TRAIN_FILE = Path("train") / "abalone_synthetic_train.csv"
BATCH_FILE = Path("inference") / "abalone_synthetic_batch_drift.csv"
CLEAN_FILE = Path("inference") / "abalone_synthetic_batch_clean.csv"
LATE_FILE = Path("later") / "abalone_synthetic_batch_late.csv"
LATE_LABELS_FILE = Path("later") / "abalone_synthetic_batch_late.labels.csv"
DRIFT_SHELL_FACTOR = 1.6  # the drifted batch's shells are this much heavier at the same size


def expected_rings(shell_weight, shucked_fraction, infant):
    """Mean age for given measurements: rises steeply with shell weight then flattens,
    and animals with less meat for their weight are older (as in real abalone)."""
    return 4.0 + 13.0 * np.sqrt(shell_weight) - 12.0 * (shucked_fraction - 0.43) - 0.8 * infant


def make_population(rng, n, sex_p, shell_factor=1.0):
    """Measurements of n animals. shell_factor > 1 gives heavier shells at the same size."""
    sex = rng.choice(np.array(["M", "F", "I"]), size=n, p=sex_p)
    # Infants are clearly smaller; females slightly larger than males.
    mean_len = np.select([sex == "M", sex == "F"], [0.56, 0.58], 0.43)
    sd_len = np.select([sex == "M", sex == "F"], [0.095, 0.085], 0.10)
    length = np.clip(rng.normal(mean_len, sd_len), 0.1, 0.8)
    diameter = np.clip(0.815 * length - 0.019 + rng.normal(0, 0.016, n), 0.05, None)
    height = np.clip(0.29 * length - 0.012 + rng.normal(0, 0.018, n), 0.01, None)
    # Weight scales with volume: length cubed, with individual variation.
    whole = 5.0 * length**3.03 * np.exp(rng.normal(0, 0.15, n))
    shucked_fraction = np.clip(rng.normal(0.43, 0.06, n), 0.2, 0.65)
    shucked = whole * shucked_fraction
    viscera = whole * np.clip(rng.normal(0.217, 0.03, n), 0.1, 0.35)
    normal_shell = whole * np.clip(rng.normal(0.29, 0.04, n), 0.15, 0.45)
    shell = normal_shell * shell_factor
    whole = whole + shell - normal_shell  # a heavier shell makes the whole animal heavier
    return pd.DataFrame(
        {
            "sex": sex,
            "length": length.round(3),
            "diameter": diameter.round(3),
            "height": height.round(3),
            "whole_weight": whole.round(4),
            "shucked_weight": shucked.round(4),
            "viscera_weight": viscera.round(4),
            "shell_weight": shell.round(4),
        }
    ), shucked_fraction


def to_rings(rng, mean_age, noise):
    # Multiplicative noise: older animals are harder to age from their size (real abalone
    # has the same fan shape), giving the right-skewed 1..29 integer rings.
    rings = np.rint(mean_age * np.exp(rng.normal(0, noise, mean_age.size)))
    return np.clip(rings, 1, 29).astype(int)


def make_train(rng, n=4000):
    data, shucked_fraction = make_population(rng, n, [0.37, 0.31, 0.32])
    mean_age = expected_rings(data["shell_weight"], shucked_fraction, data["sex"] == "I")
    return data.assign(rings=to_rings(rng, mean_age.to_numpy(), noise=0.21))


def make_batch(rng, n=1000):
    """The drifted batch: an older, slower-growing population from a colder site. Fewer
    infants, 60% heavier shells at the same size, and the animals are older than the
    training relation says (rings 1.3x + 2.5)."""
    data, shucked_fraction = make_population(rng, n, [0.39, 0.34, 0.27], DRIFT_SHELL_FACTOR)
    # Age follows the training relation on the shell weight the animal would have had
    # without the thickening, then is stretched: the model sees heavy shells but still
    # under-predicts these animals' age.
    normal_shell = data["shell_weight"] / DRIFT_SHELL_FACTOR
    mean_age = 1.3 * expected_rings(normal_shell, shucked_fraction, data["sex"] == "I") + 2.5
    # One site, so less individual variation than the mixed training population; a model
    # retrained on train + batch can then still meet the 6.0 threshold.
    return data.assign(rings=to_rings(rng, mean_age.to_numpy(), noise=0.10))


def write(frame, path, columns=COLUMNS):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame[columns].to_csv(path, index=False, lineterminator="\n")


def write_late(batch, out_dir):
    """A batch scored without ground truth, and the labels that arrive for it later."""
    write(batch, out_dir / LATE_FILE, COLUMNS[:-1])
    labels = pd.DataFrame({"record_id": np.arange(1, len(batch) + 1), "label": batch["rings"]})
    write(labels, out_dir / LATE_LABELS_FILE, ["record_id", "label"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    # Separate streams so changing one data set never changes the other.
    write(make_train(np.random.default_rng(SEED)), args.out_dir / TRAIN_FILE)
    write(make_batch(np.random.default_rng(SEED + 1)), args.out_dir / BATCH_FILE)
    write(make_train(np.random.default_rng(SEED + 2), n=500), args.out_dir / CLEAN_FILE)
    write_late(make_batch(np.random.default_rng(SEED + 3)), args.out_dir)
    files = [TRAIN_FILE, BATCH_FILE, CLEAN_FILE, LATE_FILE, LATE_LABELS_FILE]
    print("wrote " + ", ".join(str(args.out_dir / name) for name in files))


if __name__ == "__main__":
    main()
