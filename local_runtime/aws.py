"""An embedded AWS API: moto's server on a free loopback port, for unchanged boto3 code."""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
from moto.server import ThreadedMotoServer

from local_runtime.idempotency import honour_client_request_token
from pipeline_scripts.api_model import validate_client_request
from pipeline_scripts.environment import environment
from pipeline_scripts.service_models import share_service_models

# moto accepts any credentials; fixed ones keep real ones from being read or sent anywhere.
_LOCAL_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "local-runtime",
    "AWS_SECRET_ACCESS_KEY": "local-runtime",
    "AWS_SESSION_TOKEN": "local-runtime",
}


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def embedded_aws(region: str) -> Iterator[str]:
    """Starts the server and points every boto3 client in this process at it.

    Every SageMaker request made through boto3's default session meanwhile is first checked
    against the API model as the service checks it (pipeline_scripts/api_model.py): moto
    would accept what AWS refuses. Yields the endpoint URL. The previous environment is
    restored on exit.
    """
    share_service_models()  # the server, the SDK and the Lambdas create sessions of their own
    port = _free_loopback_port()
    # The server logs one line per API call; the runtime prints what matters itself.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    honour_client_request_token()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its state per process, not per server: start every embedded API empty.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    overrides = {**_LOCAL_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": region}
    try:
        with environment(**overrides):
            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            events = boto3.DEFAULT_SESSION.events
            events.register("before-parameter-build.sagemaker", validate_client_request)
            try:
                yield endpoint
            finally:
                events.unregister("before-parameter-build.sagemaker", validate_client_request)
    finally:
        server.stop()
