"""The generated sample data (data/): reproducible, abalone-shaped, and not the UCI file.

That the drifted batch fails a model trained on the sample is checked end to end through the
step scripts in test_step_scripts.py.
"""

import subprocess
import sys

import numpy as np
import pandas as pd

from tests.conftest import REPO_ROOT, SAMPLE_TRAIN_CSV, shared_path

GENERATOR = REPO_ROOT / "data" / "make_sample_data.py"
SAMPLE_BATCH_CSV = REPO_ROOT / "data" / "inference" / "abalone_synthetic_batch_drift.csv"
HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"


def test_generator_reproduces_the_committed_files(tmp_path):
    subprocess.run([sys.executable, str(GENERATOR), "--out-dir", str(tmp_path)], check=True)
    data = REPO_ROOT / "data"
    demo = [data / "inference" / "abalone_synthetic_batch_clean.csv",
            data / "later" / "abalone_synthetic_batch_late.csv",
            data / "later" / "abalone_synthetic_batch_late.labels.csv"]  # fmt: skip
    for committed in [SAMPLE_TRAIN_CSV, SAMPLE_BATCH_CSV, *demo]:
        generated = tmp_path / committed.relative_to(REPO_ROOT / "data")
        assert generated.read_bytes() == committed.read_bytes(), committed.name


def test_sample_is_abalone_shaped():
    for path, rows in [(SAMPLE_TRAIN_CSV, 4000), (SAMPLE_BATCH_CSV, 1000)]:
        assert path.read_text().splitlines()[0] == HEADER
        data = pd.read_csv(path)
        assert len(data) == rows and not data.isna().any().any()
        assert set(data["sex"]) == {"M", "F", "I"}
        assert data["rings"].dtype.kind == "i" and data["rings"].between(1, 29).all()
        assert (data.drop(columns=["sex", "rings"]) > 0).all().all()
        assert 0.75 < np.median(data["diameter"] / data["length"]) < 0.82
        by_sex = data.groupby("sex")["length"].mean()
        assert by_sex["I"] < by_sex["M"] and by_sex["I"] < by_sex["F"]  # infants are smaller
        assert data["shell_weight"].corr(data["rings"]) > 0.5
    train = pd.read_csv(SAMPLE_TRAIN_CSV)
    assert 9.5 < train["rings"].var(ddof=0) < 11.5  # mean-predictor MSE, like real abalone


def test_batch_has_older_animals_with_heavier_shells():
    train, batch = pd.read_csv(SAMPLE_TRAIN_CSV), pd.read_csv(SAMPLE_BATCH_CSV)
    assert batch["rings"].mean() > train["rings"].mean() + 3
    shell_share = {name: (d["shell_weight"] / d["whole_weight"]).median() for name, d in
                   [("train", train), ("batch", batch)]}  # fmt: skip
    assert shell_share["batch"] > 1.2 * shell_share["train"]


def test_sample_rows_are_not_taken_from_uci_abalone():
    real = pd.read_csv(shared_path("data/abalone.csv"))
    for path in [SAMPLE_TRAIN_CSV, SAMPLE_BATCH_CSV]:
        sample = pd.read_csv(path)
        common = sample.merge(real, on=list(real.columns), how="inner")
        assert common.empty, f"{path.name} shares rows with the UCI file"
