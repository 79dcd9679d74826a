"""`make demo`: deploy the three pipelines into the embedded AWS API and show what happened."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import boto3

from local_runtime.aws import embedded_aws
from pipeline_scripts.cli import DEFAULT_ENV_FILE, quiet_sdk, run
from pipeline_scripts.config import ConfigError, load_config

SAMPLE_DATA = {
    "train": Path("data/train/abalone_synthetic_train.csv"),
    "inference": Path("data/inference/abalone_synthetic_batch_drift.csv"),
}


def demo(env_file: str, out_dir: Path, out=print) -> None:
    config = load_config(env_file)
    env = config.env
    with embedded_aws(env.region) as endpoint:
        out(f"embedded AWS API at {endpoint} (moto, in this process)")
        s3 = boto3.client("s3")
        s3.create_bucket(
            Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": env.region}
        )
        s3.put_bucket_versioning(
            Bucket=env.bucket_name, VersioningConfiguration={"Status": "Enabled"}
        )
        out(f"bucket s3://{env.bucket_name} (versioned)")
        for kind, uri in (("train", env.train_data_uri), ("inference", env.inference_data_uri)):
            key = f"{uri.removeprefix(f's3://{env.bucket_name}/')}{SAMPLE_DATA[kind].name}"
            s3.upload_file(str(SAMPLE_DATA[kind]), env.bucket_name, key)
            out(f"uploaded {SAMPLE_DATA[kind]} -> s3://{env.bucket_name}/{key}")

        run("upsert", env_file, out_dir, out=out)

        sagemaker = boto3.client("sagemaker")
        for summary in sagemaker.list_pipelines()["PipelineSummaries"]:
            name = summary["PipelineName"]
            definition = json.loads(
                sagemaker.describe_pipeline(PipelineName=name)["PipelineDefinition"]
            )
            steps = ", ".join(f"{s['Name']} ({s['Type']})" for s in definition["Steps"])
            out(f"deployed {name}: {steps}")
    out("Next: the Docker-free runner executes these definitions (see README, roadmap).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    parser.add_argument("--env-file", default=DEFAULT_ENV_FILE)
    parser.add_argument("--out-dir", type=Path, default=Path("build/pipelines"))
    args = parser.parse_args(argv)
    quiet_sdk()
    try:
        demo(args.env_file, args.out_dir)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
