"""The local runtime: this project's AWS stand-in on one machine, no account and no Docker.

Today it embeds the AWS API (a moto server on a loopback port) and deploys the same pipeline
definitions into it that CI deploys to AWS. The Docker-free pipeline runner and the event
router come next (see the README's roadmap).
"""
