"""local_runtime/s3.py's job file transfers: one GetObject or PutObject per file, multipart
above S3's single-PUT limit; what arrives is what was sent."""

import boto3
from moto import mock_aws

from local_runtime import s3 as job_s3


@mock_aws
def test_files_round_trip_through_one_put_and_through_the_multipart_path(tmp_path, monkeypatch):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="job-files")
    source = tmp_path / "model.tar.gz"
    source.write_bytes(bytes(range(256)) * 40_000)  # ~10 MB: upload_file goes multipart
    job_s3.put_file(s3, source, "job-files", "one-put")
    monkeypatch.setattr(job_s3, "SINGLE_PUT_LIMIT", 1024)
    job_s3.put_file(s3, source, "job-files", "multipart")
    assert "-" in s3.head_object(Bucket="job-files", Key="multipart")["ETag"]  # parts: "<md5>-N"
    assert "-" not in s3.head_object(Bucket="job-files", Key="one-put")["ETag"]
    for key in ("one-put", "multipart"):
        job_s3.get_file(s3, "job-files", key, tmp_path / key)
        assert (tmp_path / key).read_bytes() == source.read_bytes()
