"""pipeline_scripts/service_models.py: sessions share the parsed service models, and still work."""

import boto3
import botocore.session
from moto import mock_aws

from pipeline_scripts.service_models import share_service_models


def test_sessions_share_one_loader_whose_search_paths_stay_put():
    share_service_models()
    first, second = boto3.Session(), boto3.Session()
    loader = first._session.get_component("data_loader")
    assert second._session.get_component("data_loader") is loader
    assert botocore.session.Session().get_component("data_loader") is loader
    paths = list(loader.search_paths)
    boto3.Session()  # boto3 appends its data folder to the loader of every new session
    assert loader.search_paths == paths
    assert len(set(paths)) == len(paths)


@mock_aws
def test_clients_of_sessions_sharing_the_models_still_work():
    share_service_models()
    s3 = boto3.Session(region_name="eu-west-1").client("s3")
    location = {"LocationConstraint": "eu-west-1"}
    s3.create_bucket(Bucket="shared-models", CreateBucketConfiguration=location)
    s3.put_object(Bucket="shared-models", Key="k", Body=b"v")
    other = boto3.Session(region_name="eu-west-1").resource("s3")
    assert other.Object("shared-models", "k").get()["Body"].read() == b"v"
