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


@mock_aws
def test_a_prefix_downloaded_again_fetches_only_what_changed(tmp_path, monkeypatch):
    """Small objects come from the process's copy while their listing is unchanged; an
    overwritten object is fetched again, a deleted one is gone, a large one is always fetched."""
    monkeypatch.setattr(job_s3, "_small_objects", job_s3._SmallObjects())
    monkeypatch.setattr(job_s3._SmallObjects, "MAX_SIZE", 100)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="job-files")
    fetched = []
    s3.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: fetched.append(params["Key"])
    )
    files = {"code/a.py": b"print(1)\n", "code/pkg/b.py": b"x = 2\n", "code/big.bin": b"0" * 101}
    for key, body in files.items():
        s3.put_object(Bucket="job-files", Key=key, Body=body)

    def download(name: str) -> dict[str, bytes]:
        target = tmp_path / name
        assert job_s3.download(s3, "s3://job-files/code", target) == len(files)
        return {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*.*")}

    assert download("first") == {k.removeprefix("code/"): v for k, v in files.items()}
    assert sorted(fetched) == sorted(files)
    fetched.clear()
    assert download("second") == {k.removeprefix("code/"): v for k, v in files.items()}
    assert fetched == ["code/big.bin"]

    fetched.clear()
    files["code/a.py"] = b"print(3)\n"  # same size, new content
    s3.put_object(Bucket="job-files", Key="code/a.py", Body=files["code/a.py"])
    del files["code/pkg/b.py"]
    s3.delete_object(Bucket="job-files", Key="code/pkg/b.py")
    assert download("third") == {k.removeprefix("code/"): v for k, v in files.items()}
    assert sorted(fetched) == ["code/a.py", "code/big.bin"]
