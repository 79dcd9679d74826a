"""The pipelines' Lambda steps: each calls one of the helper functions lambda.tf deploys
(code/training_data_version, code/model_resolver), with the inputs and outputs their actions
take. A mixin of StepFactory, which provides config, env, settings, session, code and image_uri.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core.lambda_helper import Lambda
from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.contract import (
    CHAMPION_OUTPUTS,
    COMPARE_OUTPUTS,
    DATA_VERSION_OUTPUTS,
    INTEGRITY_OUTPUTS,
    LAMBDA_SUFFIXES,
    PREVIOUS_OUTPUTS,
    RESOLVE_OUTPUTS,
    VERIFY_OUTPUTS,
)

# The helper Lambdas the pipelines invoke (lambda.tf deploys them; role_policy lets the role
# invoke them).
DATA_VERSION_LAMBDA = LAMBDA_SUFFIXES["data_version"]
MODEL_RESOLVER_LAMBDA = LAMBDA_SUFFIXES["model_resolver"]
SAGEMAKER_LAMBDAS = (DATA_VERSION_LAMBDA, MODEL_RESOLVER_LAMBDA)


def lambda_function_arn(config: ProjectConfig, function: str) -> str:
    """ARN of a helper Lambda that Terraform deploys as `<model_package_group_name>-<function>`."""
    env = config.env
    name = f"{env.model_package_group_name}-{function}"
    return f"arn:{env.partition}:lambda:{env.region}:{env.account_id}:function:{name}"


class LambdaSteps:
    """The Lambda steps of StepFactory."""

    def lambda_step(self, name: str, function: str, inputs: dict, outputs) -> LambdaStep:
        """A Lambda step calling one of lambda.tf's helper functions; `outputs` are names of
        String outputs or (name, LambdaOutputTypeEnum) pairs."""
        return LambdaStep(
            name=name,
            lambda_func=Lambda(
                function_arn=lambda_function_arn(self.config, function), session=self.session
            ),
            inputs=inputs,
            outputs=[
                LambdaOutput(output_name=o, output_type=LambdaOutputTypeEnum.String)
                if isinstance(o, str)
                else LambdaOutput(output_name=o[0], output_type=o[1])
                for o in outputs
            ],
        )

    def data_version(self, name: str, data_url) -> LambdaStep:
        """Records which data an execution read (object version or ETag) for lineage."""
        outputs = list(DATA_VERSION_OUTPUTS.values())
        return self.lambda_step(name, DATA_VERSION_LAMBDA, {"s3_uri": data_url}, outputs)

    def code_and_settings(self, *, tuning: bool) -> str:
        """What, besides the training data, decides the model: the step code bundle (its URI
        holds its sha256), the image, the hyperparameters and, when tuned, the tuning settings.
        A hash, known at render time, so the model fingerprint is short and valid metadata."""
        settings = {
            "code": self.code.bundle_uri,
            "image": self.image_uri,
            "hyperparameters": asdict(self.settings.training.hyperparameters),
            "tuning": asdict(self.settings.tuning) if tuning else None,
        }
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def compare_with_newest_version(self, name: str, data_version, *, tuning: bool) -> LambdaStep:
        """Fingerprints the model about to be registered and says whether the group's newest
        version has the same one (then registering it again would only duplicate it)."""
        inputs = {
            "action": "compare_fingerprint",
            "model_package_group_name": self.env.model_package_group_name,
            "data_version": data_version,
            "code_and_settings": self.code_and_settings(tuning=tuning),
        }
        # is_new is a Boolean: CheckModelIsNew compares it with True.
        outputs = [
            (o, LambdaOutputTypeEnum.Boolean) if o == COMPARE_OUTPUTS["new"] else o
            for o in COMPARE_OUTPUTS.values()
        ]
        return self.lambda_step(name, MODEL_RESOLVER_LAMBDA, inputs, outputs)

    def previous_training_data(self, name: str, fallback_uri) -> LambdaStep:
        """The newest Approved version (at run time) and its training-data profile folder, or
        previous_version 'none' and `fallback_uri` when nothing is approved
        (code/model_resolver, action previous_training_data)."""
        inputs = {
            "action": "previous_training_data",
            "model_package_group_name": self.env.model_package_group_name,
            "fallback_uri": fallback_uri,
        }
        return self.lambda_step(name, MODEL_RESOLVER_LAMBDA, inputs, PREVIOUS_OUTPUTS.values())

    def resolve_approved_model(self, name: str) -> LambdaStep:
        """Finds the newest Approved model version when the pipeline runs (not at build time)."""
        # attributions is never empty: the train split for a version without one.
        outputs = [*RESOLVE_OUTPUTS.values(), *INTEGRITY_OUTPUTS]
        inputs = {"model_package_group_name": self.env.model_package_group_name}
        return self.lambda_step(name, MODEL_RESOLVER_LAMBDA, inputs, outputs)

    # -- integrity and champion (issue 10 points 5 and 6) ----------------------------------

    def record_integrity(self, name: str, model_uri, transform_uri) -> LambdaStep:
        """sha256 and S3 version id of model.tar.gz and transform.json, to register with them."""
        return self.lambda_step(
            name,
            DATA_VERSION_LAMBDA,
            {
                "action": "record_integrity",
                VERIFY_OUTPUTS["model"]: model_uri,
                VERIFY_OUTPUTS["transform"]: transform_uri,
            },
            INTEGRITY_OUTPUTS,
        )

    def verify_integrity(self, name: str, resolved) -> LambdaStep:
        """Fails unless the resolved version's artifacts are still the ones registered; its
        outputs (the same URIs) are what the steps after it read, so they wait for it."""
        inputs = {"action": "verify_integrity"}
        # It takes the URIs under the names it returns them (contract.json "about").
        inputs[VERIFY_OUTPUTS["model"]] = resolved[RESOLVE_OUTPUTS["model"]]
        inputs[VERIFY_OUTPUTS["transform"]] = resolved[RESOLVE_OUTPUTS["transform"]]
        inputs.update({key: resolved[key] for key in INTEGRITY_OUTPUTS})
        return self.lambda_step(name, DATA_VERSION_LAMBDA, inputs, VERIFY_OUTPUTS.values())

    def champion(self, name: str, model_data_url, transform_uri) -> LambdaStep:
        """The newest Approved version's model and transform (the challenger's own when none)."""
        inputs = {
            "action": "champion",
            "model_package_group_name": self.env.model_package_group_name,
            "fallback_model_data_url": model_data_url,
            "fallback_transform_uri": transform_uri,
        }
        return self.lambda_step(name, MODEL_RESOLVER_LAMBDA, inputs, CHAMPION_OUTPUTS.values())
