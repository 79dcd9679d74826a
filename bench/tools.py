"""The measured workloads other than our own scripts, one per subcommand, each run by
bench/run.py in a fresh process so its wall time and peak RSS are its own.

    python bench/tools.py limit FILE            pyarrow CSV read + one numpy pass per column
    python bench/tools.py describe FILE         pandas read_csv + DataFrame.describe()
    python bench/tools.py whylogs FILE          whylogs 1.6.4 profile (run with its own venv)
    python bench/tools.py score-transformed FILE MODEL OUT   batch transform, read as score-plain
    python bench/tools.py score-container FILE MODEL OUT MB N  batch transform, as the container
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
    """The batch-transform step on preprocess.py's transform_input (lines are
    record_id,features...: input filter $[1:], predict, output filter $[0,-1] joined), with
    the reading and threads of score_plain: Arrow's reader, a float32 matrix, predict() on every
    core. What is left between the two is the hand-off itself (a second job, text to parse)."""
    import numpy as np
    import pyarrow.csv as pa_csv
    import xgboost

    booster = xgboost.Booster(model_file=model)
    table = pa_csv.read_csv(path, read_options=pa_csv.ReadOptions(autogenerate_column_names=True))
    matrix = np.empty((table.num_rows, table.num_columns - 1), dtype=np.float32)
    for index, column in enumerate(table.columns[1:]):
        matrix[:, index] = column.to_numpy()
    predictions = booster.predict(xgboost.DMatrix(matrix))
    _write_predictions(table.columns[0].to_numpy(), predictions, out)


_WORKER_MODELS = []


def _serve(model_dir):
    """A worker's start, as a gunicorn worker of the image loads the model."""
    from local_runtime.transform import load_models

    _WORKER_MODELS[:] = load_models(model_dir)


def _invoke(payload):
    from local_runtime.transform import predict

    return predict(_WORKER_MODELS, payload)


def score_container(path, model, out, max_payload_mb, concurrent):
    """The batch-transform step as SageMaker runs it with the XGBoost image in algorithm mode:
    the platform's input filter $[1:] and MultiRecord requests of at most MaxPayloadInMB, each
    parsed and predicted by the container's own code path, which local_runtime/transform.py
    reproduces with its sources cited (encoder.csv_to_dmatrix's Python string parse; one
    thread per booster, serve_utils.get_loaded_booster), `concurrent` requests at a time, each
    in its own worker process as the image's gunicorn workers (0: one per CPU, the image's
    answer when MaxConcurrentTransforms is unset, pipeline_scripts/steps.py)."""
    import multiprocessing
    import os
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from local_runtime.transform import MEGABYTE, requests

    workers = int(concurrent) or os.cpu_count()
    # Forked before this process runs any xgboost code: OpenMP does not survive a fork.
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_serve, initargs=(Path(model).parent,)) as pool:
        ids, records = [], []
        with open(path) as handle:
            for line in handle:
                record_id, _, features = line.rstrip("\n").partition(",")
                ids.append(record_id)
                records.append(features)
        payloads = requests(records, "MultiRecord", int(max_payload_mb) * MEGABYTE, path)
        answers = [a for answer in pool.imap(_invoke, payloads) for a in answer]
    with open(out, "w") as handle:
        handle.writelines(f"{i},{a}\n" for i, a in zip(ids, answers, strict=True))


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
    "score-container": score_container,
    "score-plain": score_plain,
    "predict-only": predict_only,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
