"""One parsed copy of the AWS service models per process.

botocore gives every new session a loader of its own, which parses the JSON service models
again (SageMaker's takes about 0.1 s of CPU) for the first client of each service. Rendering
creates a session per pipeline step (the SageMaker SDK opens one in each step it builds: render()
took 7 s of CPU, 1.5-2 s with shared models), and the local runtime and the tests create many
more (moto's server, boto3's default session after each reset, preflight): one shared loader
per data path parses each model once. Clients behave the same: a loader only reads the model
files, and a session already shares its loader between all of its clients.
"""

from __future__ import annotations

import functools

import botocore.loaders
import botocore.session


class _PathsOnce(list):
    """A loader's search paths: each boto3.Session appends boto3's data folder to its loader's
    paths (boto3/session.py _setup_loader); on a shared loader that would grow without end."""

    def append(self, path) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string=None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _PathsOnce(loader.search_paths)
    return loader


def share_service_models() -> None:
    """Has every botocore session created from now on share one loader per data path."""
    botocore.session.create_loader = _shared_loader
