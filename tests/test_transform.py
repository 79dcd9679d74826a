"""The one transform of scripts/preprocess.py: missing values take the training medians and
modes, numbers are read in the one number syntax, features are written as float32 digits (the
same model and predictions as full float64 digits), and both CSV readers of
scripts/csv_table.py give the same table."""

import collections
import csv
import importlib.util
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tests.conftest import REPO_ROOT, put
from tests.conftest import run_step_script as run

SCRIPTS = REPO_ROOT / "scripts"


def _script(name):
    sys.path.insert(0, str(SCRIPTS))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_t", SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPTS))


preprocess = _script("preprocess")
csv_table = _script("csv_table")
step_common = _script("step_common")

# Skewed training values, so that the median, the mean and 0 all differ; a few cells missing.
LENGTHS = [0.1, 0.2, 0.2, 0.3, 0.35, 0.4, 0.9, 1.7, 2.5, 4.0] * 4
SEXES = ["M", "M", "F", "I", "M", "F", "M", "I", "M", "F"] * 4


def training_csv():
    lines = ["sex,length,height,rings"]
    for i, (sex, length) in enumerate(zip(SEXES, LENGTHS, strict=True)):
        # No two midpoints of heights are a height: only a filled cell holds the median.
        height = "" if i % 7 == 3 else f"{0.01 * 1.1**i:.9f}"
        lines.append(f"{'NA' if i == 11 else sex},{length},{height},{5 + i % 9}")
    return "\n".join(lines) + "\n"


def test_apply_fills_missing_values_with_the_training_median_and_mode(tmp_path):
    """Kills the mutant "missing numbers become 0 (or the mean) when applying": the records with
    missing cells get exactly the train-split median (numeric) and mode (categorical)."""
    fit = tmp_path / "fit"
    put(fit / "input" / "data" / "train.csv", training_csv())
    run("preprocess.py", "--mode", "fit", "--base-dir", fit)
    # The train split's raw rows, as written by fit: the statistics computed here, not read back.
    with open(fit / "output" / "baseline" / "baseline.csv", newline="") as handle:
        baseline = list(csv.DictReader(handle))
    stats = {}
    for name in ("length", "height"):
        values = np.array([float(row[name]) for row in baseline if row[name]])
        stats[name] = (np.median(values), values.mean(), values.std())
        assert stats[name][0] not in (0.0, pytest.approx(stats[name][1]))  # a telling column
    sexes = collections.Counter(row["sex"] for row in baseline if row["sex"])
    mode = sorted(sexes, key=lambda s: (-sexes[s], s))[0]

    apply = tmp_path / "apply"
    put(apply / "input" / "transform" / "transform.json", fit / "output/transform/transform.json")
    batch = "sex,length,height\nI,,0.2\n,0.3,NA\nM, null ,\nF,1.0,0.1\n"
    put(apply / "input" / "data" / "batch.csv", batch)
    run("preprocess.py", "--mode", "apply", "--base-dir", apply)
    written = np.loadtxt(apply / "output/transform_input/batch.csv", delimiter=",", ndmin=2)

    def standardised(name, value):
        _, mean, std = stats[name]
        return (value - mean) / std

    one_hot = [float(c == mode) for c in ("F", "I", "M")]
    assert written[:, 0].tolist() == [1, 2, 3, 4]  # record ids
    assert written[1, 1:4].tolist() == one_hot  # missing category -> the training mode
    missing = [(0, "length", 4), (2, "length", 4), (1, "height", 5), (2, "height", 5)]
    # Features are written as float32 digits (preprocess.write_numbers: the model reads float32),
    # so they are compared as float32: exactly, not within a tolerance.
    for row, name, column in missing:
        assert np.float32(written[row, column]) == np.float32(standardised(name, stats[name][0]))
    assert np.float32(written[3, 4]) == np.float32(standardised("length", 1.0))
    assert np.float32(written[0, 5]) == np.float32(standardised("height", 0.2))


def test_fit_writes_the_splits_with_the_same_fill_as_apply(tmp_path):
    """The fitted splits come from the same transform: a train row with a missing height holds
    the standardised median, as an applied batch would."""
    put(tmp_path / "input" / "data" / "train.csv", training_csv())
    run("preprocess.py", "--mode", "fit", "--base-dir", tmp_path)
    spec = preprocess.load_transform(tmp_path / "output" / "transform" / "transform.json")
    height = spec["numeric"]["height"]
    filled = (height["fill"] - height["mean"]) / height["std"]
    rows = [
        np.loadtxt(tmp_path / "output" / s / f"{s}.csv", delimiter=",", ndmin=2)
        for s in ("train", "validation", "test")
    ]
    heights = np.concatenate([r[:, 5] for r in rows]).astype(np.float32)  # written as float32
    assert np.sum(heights == np.float32(filled)) == sum(1 for i in range(40) if i % 7 == 3)


ODD = ["1.", ".5", "+1", "-0", "1e5", "1E-5", "1e-400", "00.5", "inf", "-Infinity", "+nan"]
ODD += ["1e999", "0x10", "1_0", "1d5", "5e", "e5", "+", "abc"]


def test_numbers_follow_the_one_number_syntax():
    """to_numbers() agrees with step_common.is_number on odd spellings (Arrow's parser alone
    also takes inf and nan)."""
    raw = pa.table({"x": pa.array(ODD, pa.string())})
    origins = csv_table.Origins()
    origins.add("b.csv", len(ODD))
    values = preprocess.to_numbers(raw, "x", origins, strict=False)
    expected = [float(v) if step_common.is_number(v) else np.nan for v in ODD]
    np.testing.assert_array_equal(values, expected)
    assert np.isnan(expected).sum() == 11  # both kinds are in the list
    with pytest.raises(preprocess.InputError, match=r"b.csv: column 'x' has non-numeric value "
                       r"'inf' on line 10 \(10 more like it\); expected a number"):  # fmt: skip
        preprocess.to_numbers(raw, "x", origins, strict=True)


def test_columns_parsed_at_once_warn_and_fail_in_column_order(capsys):
    """numeric_columns() parses the columns side by side, yet says what one by one would: each
    column's warning in column order, and the first column's error."""
    columns = {name: ["1", f"bad-{name}", "2"] for name in "zyxwvu"}
    raw = pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})
    origins = csv_table.Origins()
    origins.add("b.csv", 3)
    numbers = preprocess.numeric_columns(raw, list(columns), origins, strict=False)
    assert list(numbers) == list(columns)
    np.testing.assert_array_equal(numbers["x"], [1.0, np.nan, 2.0])
    warned = [line.split("'")[1] for line in capsys.readouterr().err.splitlines()]
    assert warned == list(columns)
    with pytest.raises(preprocess.InputError, match="column 'z' has non-numeric value 'bad-z'"):
        preprocess.numeric_columns(raw, list(columns), origins, strict=True)


def test_numbers_written_in_parts_are_the_numbers_written_at_once(tmp_path, monkeypatch):
    """write_numbers() formats and writes parts of rows side by side: the file is the same."""
    rng = np.random.default_rng(7)
    features = [rng.normal(size=10), (rng.random(10) < 0.5).astype(float), rng.normal(size=10)]
    for first in (np.arange(1, 11), rng.normal(size=10)):  # record ids, or a target
        files = []
        for part_rows in (3, 10**6):
            monkeypatch.setattr(preprocess, "NUMBERS_PART_ROWS", part_rows)
            files.append(tmp_path / f"{first.dtype}-{part_rows}.csv")
            preprocess.write_numbers(files[-1], first, features)
        assert files[0].read_bytes() == files[1].read_bytes()
        assert len(files[0].read_text().splitlines()) == 10
    preprocess.write_numbers(tmp_path / "none.csv", np.arange(0), [np.zeros(0)])
    assert (tmp_path / "none.csv").read_bytes() == b""


def test_floats_are_written_as_python_repr():
    values = np.array(
        [0.0, -0.0, 1.0, -3.0, 1e-5, 5e-324, 1e15, 1e16, 123.456, -2.5e20, 0.1, 1 / 3, 1e22,
         9.999e-5, 1e-4, 12345678901234567.0, 2.0**60, -1.5e-300]
    )  # fmt: skip
    assert preprocess.format_floats(values).to_pylist() == [repr(float(v)) for v in values]
    one_hot = np.array([0.0, 1.0, 1.0, 0.0])
    assert preprocess.format_floats(one_hot).to_pylist() == ["0.0", "1.0", "1.0", "0.0"]


def container_matrix(lines):
    """CSV lines parsed as the SageMaker XGBoost container does (encoder.py csv_to_dmatrix:
    a numpy array of the strings, .astype(float), then a DMatrix, which holds float32)."""
    return np.array([line.split(",") for line in lines]).astype(float)


def test_float32_digits_read_back_as_the_same_float32():
    """float32(float64(text)) is the float32 value, for 1 M random float32 bit patterns (every
    exponent), read by Arrow's parser and, for 50 k of them, by numpy's as the container."""
    bits = np.random.default_rng(3).integers(0, 2**32, 1_000_000, dtype=np.uint64)
    values = bits.astype(np.uint32).view(np.float32)
    values = values[np.isfinite(values)].astype(np.float64)
    text = preprocess.format_float32(values)
    back = csv_table.to_numpy(pc.cast(text, pa.float64()), np.nan)
    np.testing.assert_array_equal(back.astype(np.float32), values.astype(np.float32))
    some = text.slice(0, 50_000).to_pylist()
    read = container_matrix(some)[:, 0].astype(np.float32)
    np.testing.assert_array_equal(read, values[:50_000].astype(np.float32))
    assert max(len(t) for t in some) <= 16  # at most 9 digits: "-0.0000012345678", "-1.234e-38"


def test_float32_digits_of_repeated_values_are_each_values_own():
    """format_float32 formats each distinct value once and gathers: every value still gets its
    own digits (0 and -0 apart, beyond float32's range "inf")."""
    values = np.array([0.5, -0.0, 0.0, 0.5, 1e39, -0.0, 0.1, 0.1, 3.0, -1e39])
    with np.errstate(over="ignore"):
        direct = pc.cast(pa.array(values.astype(np.float32)), pa.string()).to_pylist()
    assert direct == ["0.5", "-0", "0", "0.5", "inf", "-0", "0.1", "0.1", "3", "-inf"]
    assert preprocess.format_float32(values).to_pylist() == direct


def test_float32_features_give_the_same_model_and_predictions(abalone_csv, tmp_path):
    """Training on the fitted splits as written (float32 digits) and on the same transform with
    full float64 digits gives the same model, and both texts get bit-identical predictions
    from it: XGBoost sees float32 either way. Real data: UCI abalone (or the sample)."""
    xgboost = pytest.importorskip("xgboost")
    put(tmp_path / "input" / "data" / "abalone.csv", abalone_csv)
    run("preprocess.py", "--mode", "fit", "--base-dir", tmp_path)
    spec = preprocess.load_transform(tmp_path / "output" / "transform" / "transform.json")
    raw, origins = csv_table.read_folder(tmp_path / "input" / "data", [], same_columns=True)
    numbers = {c: preprocess.to_numbers(raw, c, origins, True) for c in spec["numeric"]}
    # preprocess.py's default fractions and seed
    parts = preprocess.split_indices(raw.num_rows, 0.15, 0.15, 42)
    splits = dict(zip(["train", "validation", "test"], parts, strict=True))
    target = preprocess.to_numbers(raw, spec["target"], origins, True)

    def texts(name):
        """(float32 lines as written, float64 lines as Python's repr) of one split."""
        written = (tmp_path / "output" / name / f"{name}.csv").read_text().splitlines()
        columns = preprocess.transform_columns(spec, numbers, raw, splits[name])
        full = [preprocess.format_floats(c).to_pylist() for c in [target[splits[name]], *columns]]
        return written, [",".join(row) for row in zip(*full, strict=True)]

    params = {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.1, "subsample": 0.8,
              "colsample_bytree": 0.8, "min_child_weight": 5.0, "seed": 0}  # fmt: skip
    models, predictions = [], []
    train, test = texts("train"), texts("test")
    assert len(train[0][0]) < len(train[1][0])  # the float32 digits are shorter
    for kind in (0, 1):
        data = container_matrix(train[kind])
        dtrain = xgboost.DMatrix(data[:, 1:], label=data[:, 0])
        models.append(xgboost.train(params, dtrain, num_boost_round=30))
        predictions += [
            models[-1].predict(xgboost.DMatrix(container_matrix(t)[:, 1:])) for t in test
        ]
    assert bytes(models[0].save_raw("json")) == bytes(models[1].save_raw("json"))
    for other in predictions[1:]:
        np.testing.assert_array_equal(other, predictions[0])
    assert np.std(predictions[0]) > 0.5  # a model that learned something


def test_a_header_without_rows_is_never_read_by_arrow(tmp_path):
    """Arrow's parallel reader can leave work behind on a file with no rows and abort the
    process at exit (apache/arrow#38676): such a file goes to the csv module, which gives the
    same empty table."""
    for text in ("a,b\n", "a,b", "a,b\r\n"):
        assert csv_table.read_arrow(text.encode()) is None
        put(tmp_path / "h.csv", text)
        header, table, _ = csv_table.read_file(tmp_path / "h.csv", "h.csv")
        assert (header, table.num_rows) == (["a", "b"], 0)
    assert csv_table.read_arrow(b"a,b\n1,2\n") is not None


def test_both_readers_give_the_same_table(tmp_path):
    plain = "a,b,c\nM, 0.5 ,NA\n,1e3,x\n"
    quoted = 'a,b,c\n"M"," 0.5 ","NA"\n,"1e3",x\n\n'  # quotes and a blank line: the csv module
    put(tmp_path / "plain.csv", plain)
    put(tmp_path / "quoted.csv", quoted)
    header, fast, lines = csv_table.read_file(tmp_path / "plain.csv", "plain.csv")
    assert lines is None  # Arrow's reader: row i on line i + 2
    _, careful, careful_lines = csv_table.read_file(tmp_path / "quoted.csv", "quoted.csv")
    assert careful_lines == [2, 3]
    assert header == ["a", "b", "c"]
    assert fast.to_pydict() == careful.to_pydict() == {
        "a": ["M", None], "b": ["0.5", "1e3"], "c": [None, "x"],
    }  # fmt: skip


def test_a_file_with_old_mac_line_ends_is_read_line_by_line(tmp_path):
    """Lines ended by a bare CR: the header is the first line, as both readers split lines."""
    put(tmp_path / "cr.csv", "a,b\r1,2\r3,4\r")
    header, table, _ = csv_table.read_file(tmp_path / "cr.csv", "cr.csv")
    assert header == ["a", "b"] and table.to_pydict() == {"a": ["1", "3"], "b": ["2", "4"]}
    put(tmp_path / "short.csv", "a\r1,2\r")
    with pytest.raises(preprocess.InputError, match="short.csv: line 2 has 2 fields; expected 1"):
        csv_table.read_file(tmp_path / "short.csv", "short.csv")
