"""Step factories shared by the three pipelines.

Every job-level setting (image, instances, KMS, network, tags, retries, caching, output
locations) is applied here, once, from the configuration; the pipeline builders only wire
steps together.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict

from pipeline_scripts import sagemaker_sdk  # noqa: F401  (first: imports the SDK without a region)

# isort: split
from sagemaker.core.drift_check_baselines import DriftCheckBaselines
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
from sagemaker.core.network import NetworkConfig
from sagemaker.core.parameter import ContinuousParameter, IntegerParameter
from sagemaker.core.processing import Processor
from sagemaker.core.shapes import (
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    Tag,
)
from sagemaker.core.training.configs import (
    Compute,
    InputData,
    Networking,
    OutputDataConfig,
    StoppingCondition,
)
from sagemaker.core.transformer import Transformer
from sagemaker.core.workflow.execution_variables import ExecutionVariables
from sagemaker.core.workflow.functions import Join
from sagemaker.core.workflow.pipeline_context import PipelineSession
from sagemaker.core.workflow.properties import PropertyFile
from sagemaker.mlops.workflow.model_step import ModelStep
from sagemaker.mlops.workflow.retry import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
)
from sagemaker.mlops.workflow.steps import (
    CacheConfig,
    ProcessingStep,
    TrainingStep,
    TransformStep,
    TuningStep,
)
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.train import ModelTrainer
from sagemaker.train.tuner import HyperparameterTuner

from pipeline_scripts.assets import TRAINING_ENTRY_POINT, TRAINING_SOURCE_ARCHIVE, StepCode
from pipeline_scripts.config import ProjectConfig
from pipeline_scripts.lambda_steps import LambdaSteps
from pipeline_scripts.xgboost_image import VALIDATION_RMSE

PROCESSING_ROOT = "/opt/ml/processing"
CSV = "text/csv"
JSON = "application/json"

_RANGE_TYPES = {"continuous": ContinuousParameter, "integer": IntegerParameter}


# Training code ships as this input channel, so a training job needs no route to S3 and runs
# network-isolated. The framework toolkit accepts a local tarball as sagemaker_submit_directory
# (aws/sagemaker-containers src/sagemaker_containers/_files.py download_and_extract: an s3://
# URI is downloaded, a local directory copied, a local tar.gz extracted; the XGBoost image runs
# user scripts through it, src/sagemaker_xgboost_container/training.py). A File-mode channel is
# copied to /opt/ml/input/data/<channel>/ (CreateTrainingJob, InputDataConfig).
CODE_CHANNEL = "code"
CODE_ARCHIVE_IN_JOB = f"/opt/ml/input/data/{CODE_CHANNEL}/{TRAINING_SOURCE_ARCHIVE}"
# The two network settings of every training job (plain or tuned).
TRAINING_NETWORK = {
    "enable_network_isolation": True,
    "enable_inter_container_traffic_encryption": True,
}


class _SecuredTuningStep(TuningStep):
    """SDK 3.27.0 drops the volume KMS key and the network settings when it builds the tuning
    job's training-job definition (HyperparameterTuner copies only the instance type, count and
    size, and the VPC); put them back so tuned jobs are secured like every other job."""

    def __init__(self, *args, volume_kms_key: str, **kwargs):
        super().__init__(*args, **kwargs)
        self._volume_kms_key = volume_kms_key

    @property
    def arguments(self):
        request = super().arguments
        definition = request["TrainingJobDefinition"]
        definition["ResourceConfig"]["VolumeKmsKeyId"] = self._volume_kms_key
        definition["EnableNetworkIsolation"] = TRAINING_NETWORK["enable_network_isolation"]
        definition["EnableInterContainerTrafficEncryption"] = TRAINING_NETWORK[
            "enable_inter_container_traffic_encryption"
        ]
        return request


# ModelBuilder 3.27.0 defaults `dependencies` to {"auto": True}, which turns on script mode
# without a script: it asks the session for its default bucket (an S3 call) and sets
# SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY to "". The XGBoost image's serving then
# imports module "" and fails; without SAGEMAKER_PROGRAM it serves the model file in algorithm
# mode (aws/sagemaker-xgboost-container src/sagemaker_xgboost_container/serving.py main:
# module_name None -> ScoringService; algorithm_mode/serve_utils.py get_loaded_booster loads
# train.py's xgboost-model). Hence dependencies=None on every ModelBuilder.


class StepFactory(LambdaSteps):
    """Builds steps for one pipeline with every cross-cutting setting applied."""

    def __init__(
        self,
        config: ProjectConfig,
        session: PipelineSession,
        pipeline_name: str,
        code: StepCode,
        image_uri: str,
        *,
        caching: bool,
    ):
        self.config = config
        self.env = config.env
        self.settings = config.settings
        self.session = session
        self.pipeline_name = pipeline_name
        self.code = code
        self.image_uri = image_uri
        self.caching = caching
        self.tags = [{"Key": k, "Value": v} for k, v in sorted(config.tags.items())]

    # -- cross-cutting settings -------------------------------------------------------------

    def output_uri(self, step_name: str, output_name: str, *more) -> Join:
        """Per-execution output location: no execution ever overwrites another's artefacts."""
        return Join(
            on="/",
            values=[
                self.env.artifacts_uri,
                self.pipeline_name,
                ExecutionVariables.PIPELINE_EXECUTION_ID,
                step_name,
                output_name,
                *more,
            ],
        )

    def _cache(self) -> CacheConfig | None:
        caching = self.settings.caching
        if not (self.caching and caching.enabled):
            return None
        return CacheConfig(enable_caching=True, expire_after=caching.expire_after)

    def _step_retries(self) -> list[StepRetryPolicy]:
        retry = self.settings.retry
        return [
            StepRetryPolicy(
                exception_types=[
                    StepExceptionTypeEnum.THROTTLING,
                    StepExceptionTypeEnum.SERVICE_FAULT,
                ],
                max_attempts=retry.max_attempts,
                interval_seconds=retry.interval_seconds,
                backoff_rate=retry.backoff_rate,
            )
        ]

    def _job_retries(self) -> list:
        """Throttling/service faults plus capacity and resource-limit errors of the job itself."""
        retry = self.settings.retry
        return self._step_retries() + [
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                ],
                max_attempts=retry.max_attempts,
                interval_seconds=retry.interval_seconds,
                backoff_rate=retry.backoff_rate,
            )
        ]

    def _processing_network(self) -> NetworkConfig:
        """Network isolation: the step scripts need no network (SageMaker moves the inputs and
        outputs), so a compromised dependency cannot reach anything."""
        vpc = self.env.vpc_enabled
        return NetworkConfig(
            enable_network_isolation=True,
            subnets=list(self.env.subnet_id) if vpc else None,
            security_group_ids=list(self.env.sg_id) if vpc else None,
            encrypt_inter_container_traffic=True,
        )

    def _vpc_networking(self, **settings) -> Networking | None:
        if not self.env.vpc_enabled:
            return Networking(**settings) if settings else None
        return Networking(
            subnets=list(self.env.subnet_id), security_group_ids=list(self.env.sg_id), **settings
        )

    # -- steps ------------------------------------------------------------------------------

    def processing(
        self,
        name: str,
        script: str,
        *,
        inputs: Mapping[str, object],
        outputs: Sequence[str],
        arguments: Sequence[object] = (),
        property_files: Sequence[PropertyFile] = (),
        depends_on: Sequence[object] | None = None,
        instance_count: int | None = None,
        sharded_inputs: Sequence[str] = (),
        output_uris: Mapping[str, object] | None = None,
    ) -> ProcessingStep:
        """A processing job running one file of `scripts/` in the project's framework image.

        The whole step-code bundle is mounted at /opt/ml/processing/input/code, input `x` at
        /opt/ml/processing/input/x, and output `y` is read from /opt/ml/processing/output/y:
        the layout every script in `scripts/` expects. `instance_count` overrides the
        processing setting; each input in `sharded_inputs` is split over the instances by S3
        object (ShardedByS3Key), the others reach every instance in full.
        """
        unknown = set(sharded_inputs) - set(inputs)
        if unknown:
            raise ValueError(f"{name}: sharded_inputs {sorted(unknown)} are not inputs")
        proc = self.settings.processing
        processor = Processor(
            role=self.env.role_arn,
            image_uri=self.image_uri,
            entrypoint=["python3", f"{PROCESSING_ROOT}/input/code/{script}"],
            instance_count=instance_count or proc.instance_count,
            instance_type=proc.instance_type,
            volume_size_in_gb=proc.volume_size_gb,
            volume_kms_key=self.env.kms_key,
            output_kms_key=self.env.kms_key,
            max_runtime_in_seconds=proc.max_runtime_seconds,
            base_job_name=name.lower(),
            sagemaker_session=self.session,
            tags=self.tags,
            network_config=self._processing_network(),
        )
        step_inputs = {**inputs, "code": self.code.bundle_uri}
        step_args = processor.run(
            inputs=[
                ProcessingInput(
                    input_name=input_name,
                    s3_input=ProcessingS3Input(
                        s3_uri=uri,
                        local_path=f"{PROCESSING_ROOT}/input/{input_name}",
                        s3_data_type="S3Prefix",
                        s3_input_mode="File",
                        # Only when sharded: unset renders as the API default, FullyReplicated.
                        **(
                            {"s3_data_distribution_type": "ShardedByS3Key"}
                            if input_name in sharded_inputs
                            else {}
                        ),
                    ),
                )
                for input_name, uri in step_inputs.items()
            ],
            outputs=[
                ProcessingOutput(
                    output_name=output_name,
                    s3_output=ProcessingS3Output(
                        s3_uri=(output_uris or {}).get(output_name)
                        or self.output_uri(name, output_name),
                        local_path=f"{PROCESSING_ROOT}/output/{output_name}",
                        s3_upload_mode="EndOfJob",
                    ),
                )
                for output_name in outputs
            ],
            arguments=list(arguments) or None,  # the API rejects an empty list
        )
        return ProcessingStep(
            name=name,
            step_args=step_args,
            property_files=list(property_files) or None,
            cache_config=self._cache(),
            retry_policies=self._job_retries(),
            depends_on=list(depends_on) if depends_on else None,
        )

    def _trainer(self, name: str, output_uri) -> ModelTrainer:
        """Script mode: the framework image's toolkit unpacks sourcedir.tar.gz from the `code`
        channel and runs train.py.

        Hyperparameters are JSON-encoded, the framework toolkit's convention, so types survive.
        """
        training = self.settings.training
        hyperparameters = {
            **asdict(training.hyperparameters),
            "sagemaker_program": TRAINING_ENTRY_POINT,
            "sagemaker_submit_directory": CODE_ARCHIVE_IN_JOB,
            "sagemaker_region": self.env.region,
        }
        trainer = ModelTrainer(
            sagemaker_session=self.session,
            role=self.env.role_arn,
            training_image=self.image_uri,
            base_job_name=name.lower(),
            compute=Compute(
                instance_type=training.instance_type,
                instance_count=training.instance_count,
                volume_size_in_gb=training.volume_size_gb,
                volume_kms_key_id=self.env.kms_key,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=training.max_runtime_seconds
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=output_uri, kms_key_id=self.env.kms_key
            ),
            # Network-isolated: the code arrives as a channel, SageMaker moves data and model.
            networking=self._vpc_networking(**TRAINING_NETWORK),
            hyperparameters={k: json.dumps(v) for k, v in hyperparameters.items()},
            tags=[Tag(key=t["Key"], value=t["Value"]) for t in self.tags],
        )
        # No MetricDefinitions: SageMaker rejects them for its XGBoost image and scrapes the
        # image's built-in metrics instead (pipeline_scripts/xgboost_image.py).
        return trainer

    def _channels(self, train_uri, validation_uri) -> list[InputData]:
        return [
            InputData(channel_name="train", data_source=train_uri, content_type=CSV),
            InputData(channel_name="validation", data_source=validation_uri, content_type=CSV),
            # An S3Prefix matching the one content-addressed archive: part of the cache key.
            InputData(channel_name=CODE_CHANNEL, data_source=self.code.training_source()),
        ]

    def tuning_output_uri(self, step_name: str) -> str:
        """Where a tuning step's training jobs write `<job name>/output/model.tar.gz`: NOT under
        the execution id. A cached tuning step (its cache key ignores OutputDataConfig: AWS
        docs "Default cache key attributes by pipeline step type",
        docs.aws.amazon.com/sagemaker/latest/dg/pipelines-default-keys.html) returns an
        earlier execution's best job, whose model is under this fixed prefix; training job
        names are unique, so no job overwrites another's model."""
        return f"{self.env.artifacts_uri}/{self.pipeline_name}/{step_name}/models"

    def training(self, name: str, train_uri, validation_uri) -> TrainingStep:
        # Execution-scoped output is safe here: a cached training step's
        # ModelArtifacts.S3ModelArtifacts is the cached job's own model location.
        step_args = self._trainer(name, self.output_uri(name, "models")).train(
            input_data_config=self._channels(train_uri, validation_uri), wait=False
        )
        return TrainingStep(
            name=name,
            step_args=step_args,
            cache_config=self._cache(),
            retry_policies=self._job_retries(),
        )

    def tuning(self, name: str, train_uri, validation_uri) -> TuningStep:
        tuning = self.settings.tuning
        ranges = {
            hp_name: _RANGE_TYPES[spec.type](spec.min, spec.max, scaling_type=spec.scaling)
            for hp_name, spec in tuning.ranges.items()
        }
        tuner = HyperparameterTuner(
            model_trainer=self._trainer(name, self.tuning_output_uri(name)),
            # A built-in metric of the XGBoost image; train.py logs it (xgboost_image.py).
            objective_metric_name=VALIDATION_RMSE,
            objective_type=tuning.objective_type,
            hyperparameter_ranges=ranges,
            strategy=tuning.strategy,
            max_jobs=tuning.max_jobs,
            max_parallel_jobs=tuning.max_parallel_jobs,
            early_stopping_type=tuning.early_stopping,
            base_tuning_job_name=name.lower(),
            tags=self.tags,
        )
        step_args = tuner.tune(inputs=self._channels(train_uri, validation_uri), wait=False)
        return _SecuredTuningStep(
            name=name,
            step_args=step_args,
            cache_config=self._cache(),
            retry_policies=self._job_retries(),
            volume_kms_key=self.env.kms_key,
        )

    def create_model(self, name: str, image_uri, model_data_url) -> ModelStep:
        builder = ModelBuilder(
            image_uri=image_uri,
            s3_model_data_url=model_data_url,
            role_arn=self.env.role_arn,
            sagemaker_session=self.session,
            log_level=logging.WARNING,  # its default, DEBUG, narrates every field it fills in
            dependencies=None,  # no script mode (see the note above lambda_function_arn)
            # Serving needs no network: the model is loaded from the artefact SageMaker mounts.
            network=self._vpc_networking(enable_network_isolation=True),
        )
        return ModelStep(name=name, step_args=builder.build(), retry_policies=self._step_retries())

    def register_model(
        self,
        name: str,
        *,
        model_data_url,
        evaluation_uri,
        statistics_uri,
        constraints_uri,
        approval_status,
        metadata: Mapping[str, object],
        description,  # str or a pipeline expression (e.g. a Join with the reason)
    ) -> ModelStep:
        """A new model version with its metrics, drift baselines and lineage."""
        instance_type = self.settings.transform.instance_type
        builder = ModelBuilder(
            image_uri=self.image_uri,
            s3_model_data_url=model_data_url,
            role_arn=self.env.role_arn,
            sagemaker_session=self.session,
            log_level=logging.WARNING,
            dependencies=None,  # no script mode (see the note above lambda_function_arn)
        )
        step_args = builder.register(
            model_package_group_name=self.env.model_package_group_name,
            content_types=[CSV],
            response_types=[CSV],
            inference_instances=[instance_type],
            transform_instances=[instance_type],
            model_metrics=ModelMetrics(
                model_statistics=MetricsSource(s3_uri=evaluation_uri, content_type=JSON)
            ),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=MetricsSource(s3_uri=statistics_uri, content_type=JSON),
                model_data_constraints=MetricsSource(s3_uri=constraints_uri, content_type=JSON),
            ),
            approval_status=approval_status,
            customer_metadata_properties=dict(metadata),
            description=description,
        )
        return ModelStep(name=name, step_args=step_args, retry_policies=self._step_retries())

    def batch_transform(self, name: str, model_name, input_uri, output_path=None) -> TransformStep:
        """Scores `record_id,features...` lines; output lines are `record_id,prediction`.

        The record id is filtered out before the model sees the line and joined back after,
        so predictions stay tied to their records whatever the batching. `output_path`
        replaces the per-execution location (the inference pipeline's per-batch one).
        """
        transform = self.settings.transform
        transformer = Transformer(
            model_name=model_name,
            instance_count=transform.instance_count,
            instance_type=transform.instance_type,
            strategy=transform.batch_strategy,
            assemble_with="Line",
            output_path=output_path or self.output_uri(name, "predictions"),
            output_kms_key=self.env.kms_key,
            volume_kms_key=self.env.kms_key,
            accept=CSV,
            # 0 leaves it unset: SageMaker then asks the container's /execution-parameters
            # (botocore sagemaker model, CreateTransformJobRequest.MaxConcurrentTransforms: "For
            # built-in algorithms, you don't need to set a value"), and the XGBoost image answers
            # one request per CPU (aws/sagemaker-xgboost-container algorithm_mode/serve.py,
            # execution_parameters: number_of_workers() = multiprocessing.cpu_count()). Each
            # request predicts on one thread (serve_utils.get_loaded_booster: nthread 1), so a
            # value of 1 leaves all but one CPU of the instance idle.
            max_concurrent_transforms=transform.max_concurrent_transforms or None,
            max_payload=transform.max_payload_mb,
            tags=self.tags,
            base_transform_job_name=name.lower(),
            sagemaker_session=self.session,
        )
        step_args = transformer.transform(
            data=input_uri,
            data_type="S3Prefix",
            content_type=CSV,
            split_type="Line",
            input_filter="$[1:]",
            join_source="Input",
            output_filter="$[0,-1]",
        )
        return TransformStep(
            name=name,
            step_args=step_args,
            cache_config=self._cache(),
            retry_policies=self._job_retries(),
        )
