"""Preprocessing step: fit the feature transform on training data, or apply a fitted one to a batch.

fit:   <base>/input/data/*.csv -> <base>/output/{train,validation,test}/<split>.csv (no header,
       target first, transformed features), <base>/output/transform/transform.json (fitted on the
       train split only), <base>/output/baseline/baseline.csv (raw train-split features) and
       <base>/output/test_raw/test.csv (the raw test-split rows, header and target included).
apply: <base>/input/data/*.csv + <base>/input/transform/transform.json ->
       <base>/output/transform_input/batch.csv (no header: record_id (record_ids()), features),
       <base>/output/features/features.csv (raw features, header),
       <base>/output/ground_truth/ground_truth.csv (record_id,label) and
       <base>/output/report/batch_report.json. Apply mode never refits anything.

The transform is JSON rather than a pickle: readable, diffable and safe to load.
Bad input exits with status 1 and one line on stderr naming the file, column and expectation.
"""

import argparse
import csv
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from batch_input import select_batch
from step_common import (
    MISSING_TOKENS,
    NUMBER_PATTERN,
    InputError,
    csv_files,
    default_base_dir,
    not_utf8,
    read_bytes,
    run_step,
)

PROG = "preprocess"
TRANSFORM_VERSION = 1
# Long cells are data, as on the Arrow path (the csv module's default limit is 128 KiB).
csv.field_size_limit(2**31 - 1)
# Cell values read as "missing" (then imputed with the train-split fill value): the one list
# every step uses.
MISSING = frozenset(MISSING_TOKENS)


def read_csv(path, name=None):
    """One CSV file as (header, rows of stripped strings, line number of each row). Messages
    name the file as `name` (its path under the data folder), so the reason comes first.

    The csv module (not pandas) so that a short row, e.g. a truncated last line, is an error
    instead of being silently padded with missing values."""
    path, data = name or path, read_bytes(path, name)
    line = 0
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise not_utf8(path, data, error) from None
    try:
        with io.StringIO(text, newline="") as handle:
            reader = csv.reader(handle, strict=True)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise InputError(f"{path}: file is empty; expected a CSV header row")
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates or "" in header:
                raise InputError(
                    f"{path}: header has empty or repeated column names "
                    f"{duplicates or ['']}; expected unique names"
                )
            rows, lines = [], []
            for row in reader:
                line = reader.line_num
                if not row:  # blank line, e.g. at the end of the file
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{path}: line {line} has {len(row)} fields; expected {len(header)} "
                        f"like the header (malformed or truncated CSV)"
                    )
                rows.append([value.strip() for value in row])
                lines.append(line)
    except csv.Error as error:
        raise InputError(f"{path}: malformed CSV after line {line}: {error}") from None
    return header, rows, lines


def read_folder(folder, required, same_columns):
    """All CSV files under folder concatenated, as (raw frame of strings, origin of each row).

    Missing cells are NaN; every file must have the `required` columns, and with same_columns
    every file must have exactly the first file's columns."""
    files = csv_files(folder)
    if not files:
        raise InputError(
            f"{folder}: no .csv files found (nor .csv.gz); expected CSV files with a header row"
        )
    frames, origins = [], []
    for full_path in files:
        path = full_path.relative_to(folder)
        header, rows, lines = read_csv(full_path, path)
        for column in required:
            if column not in header:
                raise InputError(
                    f"{path}: required column {column!r} is missing; expected columns "
                    f"{', '.join(required)} (header has {', '.join(header)})"
                )
        if same_columns and frames and set(header) != set(frames[0].columns):
            extra = sorted(set(header) ^ set(frames[0].columns))
            raise InputError(
                f"{path}: column {extra[0]!r} is not in both this file and {files[0]}; "
                f"expected every file to have the same columns"
            )
        frame = pd.DataFrame(rows, columns=header, dtype=object)
        frames.append(frame.mask(frame.isin(MISSING)))
        origins += [(path, line) for line in lines]
    data = pd.concat(frames, ignore_index=True, sort=False)
    if data.empty:
        raise InputError(f"the CSV files have a header but no data rows; expected data ({folder})")
    return data, origins


def to_numbers(data, column, origins, strict):
    """data[column] as floats. A value that is present but not a finite number in the one
    number syntax (step_common.NUMBER_PATTERN) is an error when strict; otherwise it becomes
    missing (the raw value still reaches the data-quality check through features.csv, which
    counts it) with a warning."""
    raw = data[column]
    numeric = raw.str.match(NUMBER_PATTERN).fillna(False).to_numpy(dtype=bool)
    values = pd.Series(np.nan, index=raw.index)
    values[numeric] = raw[numeric].astype(float)
    bad = np.flatnonzero(raw.notna().to_numpy() & ~np.isfinite(values.to_numpy()))
    if len(bad):
        path, line = origins[bad[0]]
        value = raw.iloc[bad[0]]
        where = f"{path}: column {column!r} has non-numeric value {value!r} on line {line}"
        if "," in value or (numeric[bad[0]] and not np.isfinite(values.iloc[bad[0]])):
            where += " (a decimal comma?)" if "," in value else " (too large for a float)"
        more = f" ({len(bad) - 1} more like it)" if len(bad) > 1 else ""
        if strict:
            raise InputError(f"{where}{more}; expected a number")
        print(f"{PROG}: warning: {where}{more}; treated as missing", file=sys.stderr)
        values.iloc[bad] = np.nan
    return values


def fit_transform(train, features, categorical):
    """The transform fitted on the train split: standardise numerics, one-hot categoricals,
    impute with train medians/modes."""
    spec = {"numeric": {}, "categorical": {}, "output_columns": []}
    for column in features:
        values = train[column].dropna()
        if values.empty:
            raise InputError(f"column {column!r} has no values in the train split; expected data")
        if column in categorical:
            counts = values.value_counts()
            categories = sorted(counts.index)
            # Most frequent category; ties go to the first in sorted order (deterministic).
            fill = max(categories, key=lambda category: counts[category])
            spec["categorical"][column] = {"categories": categories, "fill": fill}
            spec["output_columns"] += [f"{column}_{category}" for category in categories]
        else:
            std = float(values.std(ddof=0))
            # A constant column gets std 1 so it maps to 0 instead of dividing by zero.
            spec["numeric"][column] = {
                "mean": float(values.mean()),
                "std": std if std > 0 else 1.0,
                "fill": float(values.median()),
            }
            spec["output_columns"].append(column)
    return spec


class Unrepresentable(Exception):
    """A numeric value whose standardised value overflows to infinity: (column, row index)."""


def apply_transform(spec, data):
    """Transformed feature matrix using only the fitted spec (unseen category -> all zeros).
    Raises Unrepresentable rather than return a matrix with an infinity in it."""
    columns = []
    for column in spec["features"]:
        if column in spec["numeric"]:
            stats = spec["numeric"][column]
            values = data[column].fillna(stats["fill"]).to_numpy(dtype=float)
            with np.errstate(over="ignore"):
                standardised = (values - stats["mean"]) / stats["std"]
            overflow = np.flatnonzero(~np.isfinite(standardised))
            if len(overflow):
                raise Unrepresentable(column, int(overflow[0]))
            columns.append(standardised)
        else:
            stats = spec["categorical"][column]
            values = data[column].where(data[column].notna(), stats["fill"])
            # Category codes: -1 for a value unseen in training, hence an all-zero one-hot.
            codes = pd.Index(stats["categories"]).get_indexer(values)
            columns += [(codes == code).astype(float) for code in range(len(stats["categories"]))]
    return np.column_stack(columns)


def transform_rows(spec, data, raw, origins, rows=None):
    """apply_transform(spec, data.iloc[rows]); an overflow is an InputError naming the value."""
    part = data if rows is None else data.iloc[rows]
    try:
        return apply_transform(spec, part)
    except Unrepresentable as error:
        column, row = error.args
        index = row if rows is None else int(rows[row])
        path, line = origins[index]
        stats = spec["numeric"][column]
        raise InputError(
            f"{path}: column {column!r} value {raw[column].iloc[index]!r} on line {line} is too "
            f"large for the transform: standardised (mean {stats['mean']:.4g}, std "
            f"{stats['std']:.4g}) it overflows a float; expected a value of this feature's scale"
        ) from None


def write_csv(frame, path, header):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, header=header, index=False, lineterminator="\n")


def split_indices(n, test_fraction, validation_fraction, seed):
    """Seeded shuffle into (train, validation, test) row indices, each in file order."""
    n_test, n_validation = round(n * test_fraction), round(n * validation_fraction)
    if min(n_test, n_validation, n - n_test - n_validation) < 1:
        raise InputError(
            f"only {n} data rows; expected enough for non-empty train, validation and test splits"
        )
    order = np.random.default_rng(seed).permutation(n)
    test, validation = order[:n_test], order[n_test : n_test + n_validation]
    return np.sort(order[n_test + n_validation :]), np.sort(validation), np.sort(test)


def fit(args, base):
    folder = base / "input" / "data"
    raw, origins = read_folder(folder, [args.target, *args.categorical], same_columns=True)
    features = [column for column in raw.columns if column != args.target]
    categorical = [column for column in features if column in args.categorical]
    if not features:
        raise InputError(f"{folder}: only the target column {args.target!r}; expected features")
    parsed = raw.copy()
    for column in [args.target, *features]:
        if column not in categorical:
            parsed[column] = to_numbers(raw, column, origins, strict=True)
    missing_target = np.flatnonzero(parsed[args.target].isna().to_numpy())
    if len(missing_target):
        path, line = origins[missing_target[0]]
        raise InputError(
            f"{path}: column {args.target!r} is empty on line {line}; expected a number "
            f"(every training row needs the target)"
        )
    try:
        train, validation, test = split_indices(
            len(raw), args.test_fraction, args.validation_fraction, args.seed
        )
        spec = fit_transform(parsed.iloc[train], features, categorical)
    except InputError as error:
        raise InputError(f"{folder}: {error}") from None
    target_values = parsed[args.target].to_numpy(dtype=float)
    if len(target_values) > 1 and np.all(target_values == target_values[0]):
        raise InputError(
            f"column {args.target!r} (the target) is {target_values[0]:g} in every one of the "
            f"{len(target_values)} rows of {folder}; expected varying values (a model of a "
            "constant learns nothing)"
        )
    spec = {"version": TRANSFORM_VERSION, "target": args.target, "features": features, **spec}
    check_finite(spec, raw, parsed, train, origins)

    out = base / "output"
    for name, rows in [("train", train), ("validation", validation), ("test", test)]:
        features_matrix = transform_rows(spec, parsed, raw, origins, rows)
        target = parsed[args.target].to_numpy()[rows]
        matrix = np.column_stack([target, features_matrix])
        write_csv(pd.DataFrame(matrix), out / name / f"{name}.csv", header=False)
    write_csv(raw.iloc[train][features], out / "baseline" / "baseline.csv", header=True)
    # The raw test rows (header, target included): evaluate.py scores the champion on them
    # with the champion's own transform.json (issue 10 point 5).
    write_csv(raw.iloc[test], out / "test_raw" / "test.csv", header=True)
    (out / "transform").mkdir(parents=True, exist_ok=True)
    # allow_nan=False: a transform with NaN or Infinity is not JSON and is never written.
    text = json.dumps(spec, indent=2, allow_nan=False)
    (out / "transform" / "transform.json").write_text(text + "\n")
    print(
        f"{PROG}: fitted on {len(train)} train rows ({len(validation)} validation, {len(test)} "
        f"test); {len(spec['output_columns'])} transformed feature columns"
    )


def check_finite(spec, raw, parsed, train, origins):
    """Every fitted number is finite: a mean or standard deviation that overflows (values near
    the float limit, e.g. 1e308) would standardise every value of the column to 0 or NaN."""
    for column, stats in spec["numeric"].items():
        if all(np.isfinite(stats[key]) for key in ("mean", "std", "fill")):
            continue
        values = parsed[column].to_numpy(dtype=float)[train]
        largest = int(np.nanargmax(np.abs(values)))
        path, line = origins[int(train[largest])]
        value = raw[column].iloc[int(train[largest])]
        raise InputError(
            f"{path}: column {column!r} value {value!r} on line {line} is too large to fit the "
            f"transform (its mean or standard deviation overflows a float); expected values "
            f"below about 1e150 in magnitude"
        )


def load_transform(path):
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found; expected the transform.json of a fit run") from None
    except ValueError as error:
        raise InputError(f"{path}: not valid JSON ({error}); expected a transform.json") from None
    keys = ["version", "target", "features", "numeric", "categorical", "output_columns"]
    if not isinstance(spec, dict) or any(key not in spec for key in keys):
        raise InputError(f"{path}: expected a JSON object with keys {', '.join(keys)}")
    if spec["version"] != TRANSFORM_VERSION:
        raise InputError(
            f"{path}: key 'version' is {spec['version']!r}; expected {TRANSFORM_VERSION}"
        )
    return spec


# Fast path for apply mode. Arrow parses and formats the common, clean batch; anything it is not
# certain to handle exactly like the csv-module path above (quotes, non-ASCII text, differing
# headers, bad or non-finite numbers, ...) returns None and the slow path runs instead, so the
# outputs and error messages never depend on which path ran.
NUMBER = NUMBER_PATTERN  # the one number syntax (step_common)


def read_plain(path, name=None):
    """(header, table of stripped strings, missing -> null) for a plain CSV file, else None.
    Errors name the file as `name`, as the slow path does."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    data = read_bytes(path, name)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    # str.strip() also strips \x0b, \x0c and \x1c-\x1f, which Arrow's ASCII trim does not.
    odd = (b'"', b"\x00", b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e", b"\x1f")
    if not data.isascii() or any(byte in data for byte in odd):
        return None
    first = data.split(b"\n", 1)[0].split(b"\r", 1)[0].decode()
    header = [name.strip() for name in first.split(",")]
    if "" in header or len(set(header)) != len(header):
        return None
    names = [f"c{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(skip_rows=1, column_names=names),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names},
                null_values=[],
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    missing = pa.array(sorted(MISSING))
    columns = {}
    for i, name in enumerate(header):
        column = pc.ascii_trim_whitespace(table.column(i))
        columns[name] = pc.if_else(
            pc.is_in(column, value_set=missing), pa.scalar(None, pa.string()), column
        )
    return header, pa.table(columns)


def to_floats(column):
    """A string column as a float64 numpy array (NaN where missing), or None unless every
    present value is a plain finite decimal number."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pc.all(pc.match_substring_regex(column, NUMBER)).as_py() is False:
        return None
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    if np.isinf(values).any():
        return None
    return values


def format_floats(values):
    """values as strings exactly as pandas' to_csv writes them (numpy's float repr)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(values), pa.string())
    # Arrow and numpy give the same shortest digits; they differ in layout only for integral
    # values ("1" vs "1.0"), exponents and tiny numbers, which numpy formats here.
    same = (
        pc.match_substring(text, ".").to_numpy(zero_copy_only=False)
        & ~pc.match_substring(text, "e").to_numpy(zero_copy_only=False)
        & (np.abs(values) >= 1e-4)
    )
    if same.all():
        return text
    text = text.to_numpy(zero_copy_only=False).astype(object)
    text[~same] = values[~same].astype(str)
    return pa.array(text, pa.string())


def write_lines(handle, columns, rows=100_000):
    """Rows of comma-joined string columns (no nulls, nothing to quote) as CSV lines, joined
    in row blocks on all cores (Arrow releases the GIL) and written in order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def join(start):
        lines = pc.binary_join_element_wise(*[part.slice(start, rows) for part in columns], ",")
        lines = pc.binary_join_element_wise(lines, pa.scalar(""), "\n")
        return pa.chunked_array([lines]) if isinstance(lines, pa.Array) else lines

    with ThreadPoolExecutor() as pool:
        for lines in pool.map(join, range(0, len(columns[0]), rows)):
            for chunk in lines.chunks:
                offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
                start, end = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
                handle.write(chunk.buffers()[2][start:end])


def record_ids(n):
    """A batch's record ids: 1 for the first data record after the header, 2 for the next, ...
    (the data line number in a file without blank lines or quoted line breaks). A batch is one
    file, so ids are the line numbers of that file (unless pipelines.yaml batch.id_column
    names a column of ids: id_column_values()); a whole-prefix run counts on across its files
    in name order. Labels that arrive later (`record_id,label`) use the same numbers."""
    return np.arange(1, n + 1)


def id_column_values(raw, column, origins):
    """The batch's own record ids from its id column (pipelines.yaml batch.id_column): whole
    numbers (up to 18 digits, so they stay exact through the model-quality join), each once."""
    if column not in raw.columns:
        raise InputError(
            f"{origins[0][0]}: id column {column!r} (pipelines.yaml batch.id_column) is "
            f"missing; expected it in the header ({', '.join(raw.columns)})"
        )
    values = raw[column]
    bad = np.flatnonzero(~values.fillna("").str.fullmatch(r"[0-9]{1,18}").to_numpy(dtype=bool))
    if len(bad):
        path, line = origins[bad[0]]
        raise InputError(
            f"{path}: id column {column!r} has value {values.iloc[bad[0]]!r} on line {line}; "
            "expected a whole number of at most 18 digits"
        )
    ids = values.astype(np.int64).to_numpy()
    repeated = np.flatnonzero(pd.Series(ids).duplicated().to_numpy())
    if len(repeated):
        path, line = origins[repeated[0]]
        raise InputError(
            f"{path}: id column {column!r} repeats {ids[repeated[0]]} on line {line}; "
            "expected each record id once"
        )
    return ids


def apply_fast(spec, folder, out):
    """apply() for a clean batch via Arrow; None (nothing written) when the slow path must run."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return None
    target, features = spec["target"], spec["features"]
    files = csv_files(folder)
    parts = [read_plain(path, path.relative_to(folder)) for path in files]
    if not parts or any(part is None or part[0] != parts[0][0] for part in parts):
        return None
    header = parts[0][0]
    raw = pa.concat_tables([part[1] for part in parts]).combine_chunks()
    kept = [name for name in header if name != target]
    # One output column would need pandas' quoting of empty values; leave it to the slow path.
    if raw.num_rows == 0 or any(name not in header for name in features) or len(kept) < 2:
        return None
    parsed = [name for name in [*spec["numeric"], target] if name in header]
    with ThreadPoolExecutor() as pool:
        values = list(pool.map(to_floats, [raw[name] for name in parsed]))
    numbers = {name: values[i] for i, name in enumerate(parsed)}
    if any(values is None for values in numbers.values()):
        return None

    n = raw.num_rows
    ids = pc.cast(pa.array(record_ids(n)), pa.string())
    # The transform itself is apply_transform(), shared with the slow path: one definition.
    data = pd.DataFrame({name: numbers[name] for name in spec["numeric"]})
    for column in spec["categorical"]:
        data[column] = raw[column].to_pandas()
    try:
        matrix = apply_transform(spec, data)
    except Unrepresentable:  # the slow path names the file and line
        return None
    with ThreadPoolExecutor() as pool:
        batch = [ids, *pool.map(format_floats, [matrix[:, i] for i in range(matrix.shape[1])])]
    for name, columns in [
        ("transform_input/batch.csv", batch),
        ("features/features.csv", [pc.fill_null(raw[name], "") for name in kept]),
    ]:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            if name.startswith("features"):
                handle.write((",".join(kept) + "\n").encode())
            write_lines(handle, columns)

    present = np.flatnonzero(~np.isnan(numbers[target])) if target in numbers else np.arange(0)
    path = out / "ground_truth" / "ground_truth.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(b"record_id,label\n")
        if len(present):
            write_lines(handle, [ids.take(present), raw[target].take(present)])
    return n, len(present)


def apply(base, batch_uri="", batch_etag="", batch_version="", id_column=""):
    spec = load_transform(base / "input" / "transform" / "transform.json")
    out = base / "output"
    folder = select_batch(base / "input" / "data", batch_uri, batch_etag)
    # An id column takes the csv-module path, which names file and line of a bad id.
    counts = None if id_column else apply_fast(spec, folder, out)
    if counts is None:
        counts = apply_slow(spec, folder, out, id_column)
    report = {"record_count": counts[0], "ground_truth_count": counts[1]}
    if batch_uri:  # which object (and S3 version) this execution scored
        report.update(batch_uri=batch_uri, batch_version=batch_version, batch_etag=batch_etag)
    (out / "report").mkdir(parents=True, exist_ok=True)
    (out / "report" / "batch_report.json").write_text(json.dumps(report) + "\n")
    print(f"{PROG}: transformed {counts[0]} records; ground truth for {counts[1]}")


def apply_slow(spec, folder, out, id_column=""):
    target, features = spec["target"], spec["features"]
    raw, origins = read_folder(folder, features, same_columns=False)
    ids = id_column_values(raw, id_column, origins) if id_column else record_ids(len(raw))
    parsed = raw.copy()
    for column in spec["numeric"]:
        parsed[column] = to_numbers(raw, column, origins, strict=False)

    truth = pd.DataFrame({"record_id": [], "label": []})
    if target in raw.columns:  # checked first: a failed step writes no outputs
        # A wrong label is an error: silently dropping it would bias the model-quality check.
        labels = to_numbers(raw, target, origins, strict=True)
        present = np.flatnonzero(labels.notna().to_numpy())
        truth = pd.DataFrame(
            {
                "record_id": ids[present],
                "label": raw[target].iloc[present].to_numpy(),
            }
        )
    batch = pd.DataFrame(transform_rows(spec, parsed, raw, origins))
    batch.insert(0, "record_id", ids)

    write_csv(batch, out / "transform_input" / "batch.csv", header=False)
    # The id column is no feature: the data-quality check compares features with the baseline.
    dropped = [target, *([id_column] if id_column else [])]
    write_csv(raw.drop(columns=dropped, errors="ignore"), out / "features" / "features.csv", True)
    write_csv(truth, out / "ground_truth" / "ground_truth.csv", header=True)
    return len(raw), len(truth)


def fraction(text):
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["fit", "apply"], required=True)
    parser.add_argument("--base-dir", type=Path, default=default_base_dir())
    parser.add_argument("--target", default="rings", help="fit mode; apply reads transform.json")
    parser.add_argument("--test-fraction", type=fraction, default=0.15)
    parser.add_argument("--validation-fraction", type=fraction, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    # Unused by the computation: it makes the step's arguments, and so SageMaker's step-cache
    # key, change whenever the data behind an unchanged S3 prefix changes.
    parser.add_argument("--data-version", default="", help="S3 version/ETag of the input data")
    # apply mode: the batch object (else every file of the input) and its upload ETag.
    parser.add_argument("--batch-uri", default="", help="s3:// URI of the batch object")
    parser.add_argument("--batch-etag", default="", help="ETag from the upload event")
    parser.add_argument("--batch-version", default="", help="S3 version id from the event")
    parser.add_argument(
        "--id-column", default="", help="apply mode: column of record ids (else data line)"
    )
    parser.add_argument(
        "--categorical",
        default="sex",
        help="comma-separated categorical feature columns (fit mode); all others are numeric",
    )
    args = parser.parse_args(argv)
    args.categorical = [name.strip() for name in args.categorical.split(",") if name.strip()]
    if args.test_fraction + args.validation_fraction >= 1:
        parser.error("--test-fraction plus --validation-fraction must be below 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.mode == "fit":
        return run_step(PROG, fit, args, args.base_dir)
    return run_step(
        PROG,
        apply,
        *(args.base_dir, args.batch_uri, args.batch_etag, args.batch_version, args.id_column),
    )


if __name__ == "__main__":
    sys.exit(main())
