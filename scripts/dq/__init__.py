"""The data-quality engine behind scripts/data_quality.py, one idea per module.

sketches        KLL quantiles, HyperLogLog distinct counts, frequent items (mergeable)
profiles        per-column and per-data-set statistics built from the sketches
readers         CSV and Parquet files, in chunks, into a profile
monitor_format  Model Monitor's statistics.json and constraints.json, written and read back
settings        the check's settings as one typed object
checks          the constraint checks, the drift verdict and summary.json
drift_tests     the statistical tests behind the Robust drift verdict
shards          a sharded run's partial files and their merge
common          warnings and how values are quoted in messages

It ships in the step code bundle beside data_quality.py (pipeline_scripts/assets.py), so the
processing job imports it from its script's folder; importing it has no side effects.
"""
