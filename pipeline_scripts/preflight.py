"""Check the AWS prerequisites this template does not create, before anything is deployed.

    python -m pipeline_scripts preflight --env-file env_files/dev_env.tfvars

One line per check: ``ok: ...``, ``warning: <what>; fix: <how>`` or ``missing: <what>; fix:
<how>``; the command exits 1 when anything is missing. The checks, each against the
configuration in the env file:

- the credentials in use belong to the account of ``role_arn`` (else every other answer is
  about the wrong account);
- ``role_arn`` exists and its trust policy lets sagemaker.amazonaws.com assume it;
- ``bucket_name`` exists in ``region`` with versioning Enabled (the training data's S3 version
  is recorded on every model). Terraform turns on its EventBridge notifications (events.tf,
  aws_s3_bucket_notification), which owns the bucket's whole notification configuration: SNS,
  SQS or Lambda notifications found on the bucket are a ``warning:``, as apply would drop them
  unless events.tf declares them too;
- ``kms_key`` exists, is Enabled, is a symmetric encryption key and these credentials can use
  it (upsert uploads the step code encrypted with it);
- ``role_arn`` is allowed every action of the generated role policy (``make role-policy``),
  asked of IAM's policy simulator (iam:SimulatePrincipalPolicy) on an example resource of each
  statement. When the simulator cannot be asked (not allowed, or not implemented as in the
  local stand-in) the line is a ``warning:`` saying so: the check is a convenience, not a
  prerequisite;
- once Terraform has created the notification topic: every ``email_recipient`` has confirmed its
  subscription. An unconfirmed one is a ``warning:`` line that does not fail the command: only
  the recipient can confirm, and CI must still be able to deploy (e.g. a tfvars change removing
  that recipient).

Uses boto3's default credential chain and honours AWS_ENDPOINT_URL, like upsert and delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from botocore.parsers import ResponseParserError

from pipeline_scripts.config import EnvConfig, ProjectConfig, load_pipeline_settings
from pipeline_scripts.contract import SNS_TOPIC_SUFFIX

SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"
# sns.tf names the notification topic "<model_package_group_name>-notifications".
TOPIC_NAME_SUFFIX = SNS_TOPIC_SUFFIX
# The bucket notifications other than EventBridge, as GetBucketNotificationConfiguration names them.
OTHER_NOTIFICATIONS = (
    "TopicConfigurations",
    "QueueConfigurations",
    "LambdaFunctionConfigurations",
)
# What the identity running preflight must be allowed (README lists it for the CI role).
PREFLIGHT_ACTIONS = (
    "iam:GetRole",
    "s3:ListBucket",  # HeadBucket
    "s3:GetBucketVersioning",
    "s3:GetBucketNotification",
    "kms:DescribeKey",
    "kms:GenerateDataKey",
    "sns:GetTopicAttributes",
    "sns:ListSubscriptionsByTopic",
    "iam:SimulatePrincipalPolicy",  # optional: without it the role check is a warning
)


class PreflightFailed(RuntimeError):
    """At least one prerequisite is missing (the findings say which)."""


@dataclass(frozen=True)
class Finding:
    status: Literal["ok", "missing", "warning"]
    what: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.status}: {self.what}" + (f"; fix: {self.fix}" if self.fix else "")


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _cannot_check(what: str, error: ClientError, permission: str) -> Finding:
    """A check the credentials in use are not allowed to make is a missing prerequisite too."""
    return Finding(
        "missing",
        f"cannot check {what}: {_code(error) or error}",
        f"allow {permission} to the identity running preflight (the CI role, or you)",
    )


def notification_topic_name(env: EnvConfig) -> str:
    return f"{env.model_package_group_name}{TOPIC_NAME_SUFFIX}"


def check_account(sts, env: EnvConfig) -> Finding:
    account = sts.get_caller_identity()["Account"]
    if account != env.account_id:
        return Finding(
            "missing",
            f"credentials are for account {account}, but role_arn is in account {env.account_id}",
            f"use credentials for account {env.account_id} (AWS_PROFILE, or the CI role "
            "AWS_ROLE_ARN of that account)",
        )
    return Finding("ok", f"credentials are for account {account}")


def _allows_sagemaker(trust_policy: dict) -> bool:
    statements = trust_policy.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        principal = statement.get("Principal", {})
        services = principal.get("Service", []) if isinstance(principal, dict) else principal
        services = [services] if isinstance(services, str) else services
        if (
            statement.get("Effect") == "Allow"
            and {a.lower() for a in actions} & {"sts:assumerole", "sts:*", "*"}
            and (SAGEMAKER_PRINCIPAL in services or "*" in services)
        ):
            return True
    return False


def check_role(iam, env: EnvConfig) -> Finding:
    name = env.role_arn.rsplit("/", 1)[1]
    trust_fix = (
        f"give role {name} a trust policy statement allowing Principal "
        f'{{"Service": "{SAGEMAKER_PRINCIPAL}"}} the action sts:AssumeRole'
    )
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if _code(error) == "NoSuchEntity":
            return Finding(
                "missing",
                f"role {env.role_arn} does not exist",
                f"create it (see README, Prerequisites), then {trust_fix}",
            )
        return _cannot_check(f"role {env.role_arn}", error, f"iam:GetRole on {env.role_arn}")
    if role["Arn"] != env.role_arn:
        return Finding(
            "missing",
            f"role_arn is {env.role_arn}, but the role named {name} is {role['Arn']}",
            f"set role_arn = {role['Arn']!r} in the env file",
        )
    if not _allows_sagemaker(role["AssumeRolePolicyDocument"]):
        return Finding("missing", f"SageMaker cannot assume role {env.role_arn}", trust_fix)
    return Finding("ok", f"role {env.role_arn} exists and SageMaker can assume it")


def check_bucket(s3, env: EnvConfig) -> list[Finding]:
    bucket = env.bucket_name
    try:
        head = s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if _code(error) in ("404", "NoSuchBucket"):
            return [
                Finding(
                    "missing",
                    f"bucket {bucket} does not exist",
                    f"create it in {env.region} with versioning enabled (README, Prerequisites)",
                )
            ]
        return [_cannot_check(f"bucket {bucket}", error, f"s3:ListBucket on {bucket}")]
    region = head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region", env.region)
    findings = [
        Finding("ok", f"bucket {bucket} exists")
        if region == env.region
        else Finding(
            "missing",
            f"bucket {bucket} is in {region}, not in region {env.region}",
            f"use a bucket in {env.region}: S3 sends its events to EventBridge in its own region",
        )
    ]

    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    except ClientError as error:
        findings.append(_cannot_check("versioning", error, f"s3:GetBucketVersioning on {bucket}"))
    else:
        findings.append(
            Finding("ok", f"bucket {bucket} has versioning Enabled")
            if versioning == "Enabled"
            else Finding(
                "missing",
                f"bucket {bucket} versioning is {versioning}, not Enabled",
                f"aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled",
            )
        )

    try:
        notifications = s3.get_bucket_notification_configuration(Bucket=bucket)
    except ClientError as error:
        findings.append(
            _cannot_check("notifications", error, f"s3:GetBucketNotification on {bucket}")
        )
    else:
        others = sum(len(notifications.get(kind, [])) for kind in OTHER_NOTIFICATIONS)
        if others:
            findings.append(
                Finding(
                    "warning",
                    f"bucket {bucket} has {others} SNS, SQS or Lambda notification(s): terraform "
                    "apply replaces the bucket's whole notification configuration",
                    "declare them in aws_s3_bucket_notification.eventbridge (events.tf), or use "
                    "a bucket of this project's own",
                )
            )
        elif "EventBridgeConfiguration" in notifications:
            findings.append(Finding("ok", f"bucket {bucket} sends its events to EventBridge"))
        else:
            findings.append(
                Finding(
                    "ok", f"bucket {bucket}: terraform apply turns on EventBridge notifications"
                )
            )
    return findings


def check_kms_key(kms, env: EnvConfig) -> Finding:
    key = env.kms_key
    try:
        metadata = kms.describe_key(KeyId=key)["KeyMetadata"]
    except ClientError as error:
        if _code(error) == "NotFoundException":
            return Finding(
                "missing",
                f"KMS key {key} does not exist",
                f"create a symmetric customer managed key in {env.region} whose key policy lets "
                "the role use it, and set kms_key to its ARN",
            )
        return _cannot_check(f"KMS key {key}", error, f"kms:DescribeKey on {key}")
    if metadata["KeyState"] != "Enabled":
        return Finding(
            "missing",
            f"KMS key {key} is {metadata['KeyState']}, not Enabled",
            f"aws kms enable-key --key-id {metadata['Arn']} (PendingDeletion: "
            "aws kms cancel-key-deletion first)",
        )
    if metadata.get("KeySpec", "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
        return Finding(
            "missing",
            f"KMS key {key} is a {metadata['KeySpec']} key; S3 and SageMaker need a symmetric "
            "encryption key",
            "set kms_key to a symmetric (SYMMETRIC_DEFAULT) customer managed key",
        )
    try:
        kms.generate_data_key(KeyId=key, KeySpec="AES_256", DryRun=True)
    except ClientError as error:
        if _code(error) != "DryRunOperation":  # DryRun's way of saying "would have succeeded"
            return Finding(
                "missing",
                f"KMS key {key} is not usable by these credentials ({_code(error)}); upsert "
                "uploads the step code encrypted with it",
                f"allow kms:GenerateDataKey on {metadata['Arn']} to the identity running "
                "upsert, in the key policy or its IAM policy",
            )
    return Finding("ok", f"KMS key {key} is Enabled and usable")


def _example_resource(resource: str, env: EnvConfig) -> str:
    """A concrete ARN a statement's resource pattern covers (the simulator wants real ones)."""
    return resource.replace("*", f"pipelines-{env.user_id}-example")


# Values for the condition keys of the role policy, as the service would send them.
def _context(env: EnvConfig) -> list[dict]:
    entries = {
        "iam:PassedToService": SAGEMAKER_PRINCIPAL,
        "s3:prefix": f"{env.bucket_prefix.strip('/')}/example",
        "cloudwatch:namespace": "/aws/sagemaker/TrainingJobs",
    }
    if ":alias/" in env.kms_key:
        entries["kms:ResourceAliases"] = env.kms_key.split(":", 5)[5]
    return [
        {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
        for k, v in entries.items()
    ]


def check_role_permissions(iam, config: ProjectConfig) -> Finding:
    """Asks IAM whether role_arn is allowed each action of the generated role policy."""
    from pipeline_scripts.role_policy import role_policy

    env = config.env
    denied = []
    try:
        for statement in role_policy(config)["Statement"]:
            resources = statement["Resource"]
            for resource in [resources] if isinstance(resources, str) else resources:
                example = _example_resource(resource, env)
                pages = iam.get_paginator("simulate_principal_policy").paginate(
                    PolicySourceArn=env.role_arn,
                    ActionNames=statement["Action"],
                    ResourceArns=[example],
                    ContextEntries=_context(env),
                )
                for page in pages:
                    denied += [
                        f"{r['EvalActionName']} on {example}"
                        for r in page["EvaluationResults"]
                        if r["EvalDecision"] != "allowed"
                    ]
    # moto, the local stand-in, has no policy simulator: NotImplementedError in process, and
    # an HTML error page (ResponseParserError) at AWS_ENDPOINT_URL.
    except (ClientError, BotoCoreError, NotImplementedError, ResponseParserError) as error:
        reason = _code(error) if isinstance(error, ClientError) else type(error).__name__
        return Finding(
            "warning",
            f"cannot check the permissions of role {env.role_arn} "
            f"(iam:SimulatePrincipalPolicy: {reason or error})",
            "compare its policies with build/role-policy.json from 'make role-policy', or "
            "allow iam:SimulatePrincipalPolicy on the role to the identity running preflight",
        )
    if denied:
        return Finding(
            "missing",
            f"role {env.role_arn} is not allowed {len(denied)} action(s) the pipelines need: "
            + ", ".join(denied[:5])
            + (" ..." if len(denied) > 5 else ""),
            "attach build/role-policy.json from 'make role-policy' to the role",
        )
    return Finding("ok", f"role {env.role_arn} is allowed every action of the role policy")


def check_subscriptions(sns, env: EnvConfig) -> list[Finding]:
    """Only once the topic exists: Terraform creates it and the subscriptions."""
    topic = notification_topic_name(env)
    topic_arn = f"arn:{env.partition}:sns:{env.region}:{env.account_id}:{topic}"
    try:
        sns.get_topic_attributes(TopicArn=topic_arn)
    except ClientError as error:
        if _code(error) == "NotFound":
            return [Finding("ok", f"topic {topic} not created yet: terraform apply creates it")]
        return [_cannot_check(f"topic {topic}", error, f"sns:GetTopicAttributes on {topic_arn}")]
    subscriptions = {}
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for subscription in page["Subscriptions"]:
            if subscription["Protocol"] == "email":
                subscriptions[subscription["Endpoint"].lower()] = subscription["SubscriptionArn"]
    findings = []
    for email in env.email_recipient:
        state = subscriptions.get(email.lower())
        if state is None:
            findings.append(
                Finding(
                    "warning",
                    f"{email} is not subscribed to {topic}",
                    "terraform apply subscribes every email_recipient",
                )
            )
        elif state == "PendingConfirmation":
            findings.append(
                Finding(
                    "warning",
                    f"{email} has not confirmed its subscription to {topic}, so it gets no "
                    "notification",
                    f"{email} opens the 'AWS Notification - Subscription Confirmation' e-mail and "
                    "clicks 'Confirm subscription'",
                )
            )
        else:
            findings.append(Finding("ok", f"{email} is subscribed to {topic}"))
    return findings


def preflight(env: EnvConfig, session: boto3.Session | None = None) -> list[Finding]:
    """Every check, in the order a user would fix them."""
    session = session or boto3.Session()
    # The role policy names the image of pipelines.yaml; tags play no part in it.
    config = ProjectConfig(env=env, settings=load_pipeline_settings(), tags={})

    def client(service: str):
        return session.client(service, region_name=env.region)

    try:
        account = check_account(client("sts"), env)
        if account.status != "ok":
            return [account]
        return [
            account,
            check_role(client("iam"), env),
            *check_bucket(client("s3"), env),
            check_kms_key(client("kms"), env),
            check_role_permissions(client("iam"), config),
            *check_subscriptions(client("sns"), env),
        ]
    except NoCredentialsError:
        return [
            Finding(
                "missing",
                "no AWS credentials",
                "configure the default credential chain (e.g. AWS_PROFILE), or in GitLab CI the "
                "AWS_ROLE_ARN variable (README, Deploy with GitLab CI)",
            )
        ]
    except (BotoCoreError, ClientError) as error:
        return [Finding("missing", f"AWS API call failed: {error}", "check network and endpoint")]
