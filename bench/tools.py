"""The measured workloads other than our own scripts, one per subcommand, each run by
bench/run.py in a fresh process so its wall time and peak RSS are its own.

    python bench/tools.py limit FILE            pyarrow CSV read + one numpy pass per column
    python bench/tools.py describe FILE         pandas read_csv + DataFrame.describe()
    python bench/tools.py whylogs FILE          whylogs 1.6.4 profile (run with its own venv)
    python bench/tools.py score-transformed FILE MODEL OUT   as the batch-transform step does
    python bench/tools.py score-plain FILE TRANSFORM MODEL OUT   a plain read-predict-write loop
    python bench/tools.py predict-only FILE TRANSFORM MODEL     prints predict() seconds

Imports are inside the subcommands: the whylogs virtualenv has neither pyarrow nor xgboost.
"""

import json
import sys
import time


def limit(path):
    """The practical limit: Arrow's multi-threaded CSV reader, then count, min, max, mean and
    std of every numeric column with numpy (nothing else: no types, sketches or strings)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(path)
    for column in table.columns:
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            values = column.drop_null().to_numpy()
            _ = (len(values), values.min(), values.max(), values.mean(), values.std())


def describe(path):
    import pandas as pd

    pd.read_csv(path).describe(include="all")


def whylogs(path):
    """whylogs' streaming use: pandas chunks of 1 M rows tracked into one profile."""
    import pandas as pd
    from whylogs.core import DatasetProfile

    profile = DatasetProfile()
    for chunk in pd.read_csv(path, chunksize=1_000_000):
        profile.track(pandas=chunk)
    profile.view().to_pandas()  # materialise every metric


def _write_predictions(ids, predictions, out):
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    table = pa.table({"id": ids, "prediction": predictions})
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    pa_csv.write_csv(table, out, write_options=options)


def score_transformed(path, model, out):
    """The batch-transform step on preprocess.py's transform_input: lines are
    record_id,features...; input filter $[1:], predict, output filter $[0,-1] (joined)."""
    import pyarrow.csv as pa_csv
    import xgboost

    booster = xgboost.Booster(model_file=model)
    table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(autogenerate_column_names=True))
    matrix = table.to_pandas().to_numpy(dtype="float32")
    predictions = booster.predict(xgboost.DMatrix(matrix[:, 1:]))
    _write_predictions(matrix[:, 0].astype("int64"), predictions, out)


def featurize(path, transform):
    """Raw CSV -> (ids, model matrix) with the fitted transform.json, in plain numpy."""
    import numpy as np
    import pyarrow.csv as pa_csv

    with open(transform) as handle:
        spec = json.load(handle)
    table = pa_csv.read_csv(path)
    columns = []
    for name in spec["features"]:
        values = table[name].to_numpy(zero_copy_only=False)
        if name in spec["numeric"]:
            numeric = spec["numeric"][name]
            values = np.where(np.isnan(values), numeric["fill"], values.astype(float))
            columns.append((values - numeric["mean"]) / numeric["std"])
        else:
            categorical = spec["categorical"][name]
            values = np.where(values == None, categorical["fill"], values)  # noqa: E711
            columns += [(values == c).astype(float) for c in categorical["categories"]]
    return np.arange(table.num_rows), np.column_stack(columns)


def score_plain(path, transform, model, out):
    import xgboost

    booster = xgboost.Booster(model_file=model)
    ids, matrix = featurize(path, transform)
    _write_predictions(ids, booster.predict(xgboost.DMatrix(matrix)), out)


def predict_only(path, transform, model):
    import xgboost

    booster = xgboost.Booster(model_file=model)
    _, matrix = featurize(path, transform)
    data = xgboost.DMatrix(matrix)
    start = time.perf_counter()
    booster.predict(data)
    print(json.dumps({"predict_seconds": time.perf_counter() - start}))


COMMANDS = {
    "limit": limit,
    "describe": describe,
    "whylogs": whylogs,
    "score-transformed": score_transformed,
    "score-plain": score_plain,
    "predict-only": predict_only,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
