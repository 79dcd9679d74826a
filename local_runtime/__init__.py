"""The local runtime: this project's AWS stand-in on one machine, no account and no Docker.

An embedded AWS API (a moto server on a loopback port), a runner that executes the pipeline
definitions as stored by the upsert, and an event router that applies the deployed EventBridge
rules (events/*.json) to the events the runner emits. `python -m local_runtime` is `make demo`.
"""
