"""preflight against moto: all prerequisites present passes; each missing one gives its line."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, replace

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer
from moto.sns.models import sns_backends

from pipeline_scripts.cli import main
from pipeline_scripts.config import EnvConfig, load_config
from pipeline_scripts.preflight import (
    PREFLIGHT_ACTIONS,
    SAGEMAKER_PRINCIPAL,
    Finding,
    notification_topic_name,
    preflight,
)
from tests.conftest import REPO_ROOT

DEV_ENV = REPO_ROOT / "env_files" / "dev_env.tfvars"
OTHER_ACCOUNT = "210987654321"


def trust_policy(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def moto_reports_eventbridge(monkeypatch):
    """moto 5.2.5 stores a bucket's EventBridgeConfiguration but leaves it out of
    GetBucketNotificationConfiguration; put it back the way S3 returns it."""
    original = S3Response.get_bucket_notification

    def get_bucket_notification(self):
        status, headers, body = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is not None and config.event_bridge is not None:
            closing = "</NotificationConfiguration>"
            if closing in body:
                body = body.replace(closing, "<EventBridgeConfiguration/>" + closing)
            else:  # the root element is empty: <NotificationConfiguration xmlns="..."/>
                body = body.replace("/>", "><EventBridgeConfiguration/>" + closing, 1)
        return status, headers, body

    monkeypatch.setattr(S3Response, "get_bucket_notification", get_bucket_notification)


@dataclass
class Account:
    """The moto account with every prerequisite of `env` in place."""

    env: EnvConfig
    iam: object
    s3: object
    kms: object
    sns: object


def create_prerequisites(env: EnvConfig) -> EnvConfig:
    """Creates what the README's prerequisites ask for; returns env with the key moto made."""
    region = env.region
    iam = boto3.client("iam", region_name=region)
    iam.create_role(
        RoleName=env.role_arn.rsplit("/", 1)[1],
        AssumeRolePolicyDocument=trust_policy(SAGEMAKER_PRINCIPAL),
    )
    s3 = boto3.client("s3", region_name=region)
    s3.create_bucket(
        Bucket=env.bucket_name, CreateBucketConfiguration={"LocationConstraint": region}
    )
    s3.put_bucket_versioning(Bucket=env.bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=env.bucket_name, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    key = boto3.client("kms", region_name=region).create_key()["KeyMetadata"]
    return replace(env, kms_key=key["Arn"])


@pytest.fixture
def aws_credentials(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    # No ~/.aws files or instance metadata may answer for the test.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def account(aws_credentials, moto_reports_eventbridge):
    env = load_config(DEV_ENV).env
    with mock_aws():
        env = create_prerequisites(env)
        yield Account(
            env=env,
            iam=boto3.client("iam", region_name=env.region),
            s3=boto3.client("s3", region_name=env.region),
            kms=boto3.client("kms", region_name=env.region),
            sns=boto3.client("sns", region_name=env.region),
        )


# moto has no IAM policy simulator: the role-permission check says it cannot check (tested
# below); the other tests leave that line out.
CANNOT_SIMULATE = "warning: cannot check the permissions of role "


def lines(env: EnvConfig, session: boto3.Session | None = None, *, role_check=False) -> list[str]:
    found = [finding.line() for finding in preflight(env, session)]
    return [line for line in found if role_check or not line.startswith(CANNOT_SIMULATE)]


def problems(env: EnvConfig) -> list[str]:
    return [line for line in lines(env) if not line.startswith("ok: ")]


def create_topic(account: Account, *emails: str) -> str:
    topic_arn = account.sns.create_topic(Name=notification_topic_name(account.env))["TopicArn"]
    for email in emails:
        account.sns.subscribe(TopicArn=topic_arn, Protocol="email", Endpoint=email)
    return topic_arn


def test_all_prerequisites_present_passes_through_the_cli(account, tmp_path, capsys):
    # The CLI reads the env file, so write one naming the key moto created.
    env_file = tmp_path / "dev_env.tfvars"
    text = DEV_ENV.read_text()
    original_key = load_config(DEV_ENV).env.kms_key
    env_file.write_text(text.replace(f'"{original_key}"', f'"{account.env.kms_key}"'))

    assert main(["preflight", "--env-file", str(env_file)]) == 0

    out = capsys.readouterr().out.splitlines()
    env = account.env
    topic = notification_topic_name(env)
    assert out == [
        f"ok: credentials are for account {env.account_id}",
        f"ok: role {env.role_arn} exists and SageMaker can assume it",
        f"ok: bucket {env.bucket_name} exists",
        f"ok: bucket {env.bucket_name} has versioning Enabled",
        f"ok: bucket {env.bucket_name} sends its events to EventBridge",
        f"ok: KMS key {env.kms_key} is Enabled and usable",
        f"{CANNOT_SIMULATE}{env.role_arn} (iam:SimulatePrincipalPolicy: NotImplementedError); "
        "fix: compare its policies with build/role-policy.json from 'make role-policy', or allow "
        "iam:SimulatePrincipalPolicy on the role to the identity running preflight",
        f"ok: topic {topic} not created yet: terraform apply creates it",
    ]


def test_confirmed_subscriptions_pass(account):
    create_topic(account, *account.env.email_recipient)
    topic = notification_topic_name(account.env)
    assert problems(account.env) == []
    assert (
        lines(account.env)[-1] == f"ok: {account.env.email_recipient[0]} is subscribed to {topic}"
    )


def test_missing_prerequisite_fails_the_cli_with_exit_1(account, tmp_path, capsys):
    account.s3.put_bucket_versioning(
        Bucket=account.env.bucket_name, VersioningConfiguration={"Status": "Suspended"}
    )
    env_file = tmp_path / "dev_env.tfvars"
    original_key = load_config(DEV_ENV).env.kms_key
    env_file.write_text(
        DEV_ENV.read_text().replace(f'"{original_key}"', f'"{account.env.kms_key}"')
    )

    assert main(["preflight", "--env-file", str(env_file)]) == 1

    captured = capsys.readouterr()
    assert f"missing: bucket {account.env.bucket_name} versioning is Suspended" in captured.out
    assert captured.err == f"error: {env_file}: 1 prerequisite(s) missing, see above\n"


def test_missing_role(account):
    account.iam.delete_role(RoleName=account.env.role_arn.rsplit("/", 1)[1])
    assert problems(account.env) == [
        f"missing: role {account.env.role_arn} does not exist; fix: create it (see README, "
        f"Prerequisites), then give role {account.env.role_arn.rsplit('/', 1)[1]} a trust policy "
        f'statement allowing Principal {{"Service": "{SAGEMAKER_PRINCIPAL}"}} the action '
        "sts:AssumeRole"
    ]


def test_role_sagemaker_cannot_assume(account):
    name = account.env.role_arn.rsplit("/", 1)[1]
    account.iam.update_assume_role_policy(
        RoleName=name, PolicyDocument=trust_policy("lambda.amazonaws.com")
    )
    assert problems(account.env) == [
        f"missing: SageMaker cannot assume role {account.env.role_arn}; fix: give role {name} a "
        f'trust policy statement allowing Principal {{"Service": "{SAGEMAKER_PRINCIPAL}"}} the '
        "action sts:AssumeRole"
    ]


def test_role_with_another_path(account):
    name = account.env.role_arn.rsplit("/", 1)[1]
    account.iam.delete_role(RoleName=name)
    role = account.iam.create_role(
        RoleName=name, Path="/ml/", AssumeRolePolicyDocument=trust_policy(SAGEMAKER_PRINCIPAL)
    )["Role"]
    assert problems(account.env) == [
        f"missing: role_arn is {account.env.role_arn}, but the role named {name} is "
        f"{role['Arn']}; fix: set role_arn = '{role['Arn']}' in the env file"
    ]


def test_credentials_of_another_account(account):
    env = account.env
    env = replace(env, role_arn=env.role_arn.replace(env.account_id, OTHER_ACCOUNT))
    assert problems(env) == [
        f"missing: credentials are for account {account.env.account_id}, but role_arn is in "
        f"account {OTHER_ACCOUNT}; fix: use credentials for account {OTHER_ACCOUNT} "
        "(AWS_PROFILE, or the CI role AWS_ROLE_ARN of that account)"
    ]


def test_missing_bucket(account):
    bucket = account.env.bucket_name
    account.s3.delete_bucket(Bucket=bucket)
    assert problems(account.env) == [
        f"missing: bucket {bucket} does not exist; fix: create it in {account.env.region} with "
        "versioning enabled (README, Prerequisites)"
    ]


def test_bucket_in_another_region(account):
    bucket = account.env.bucket_name
    account.s3.delete_bucket(Bucket=bucket)
    elsewhere = boto3.client("s3", region_name="us-west-2")
    elsewhere.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-west-2"}
    )
    elsewhere.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    elsewhere.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    assert problems(account.env) == [
        f"missing: bucket {bucket} is in us-west-2, not in region {account.env.region}; fix: use "
        f"a bucket in {account.env.region}: S3 sends its events to EventBridge in its own region"
    ]


@pytest.mark.parametrize("status", [None, "Suspended"])
def test_bucket_versioning_not_enabled(aws_credentials, moto_reports_eventbridge, status):
    env = load_config(DEV_ENV).env
    with mock_aws():
        env = create_prerequisites(env)
        s3 = boto3.client("s3", region_name=env.region)
        if status is None:  # a bucket whose versioning was never turned on
            s3.delete_bucket(Bucket=env.bucket_name)
            s3.create_bucket(
                Bucket=env.bucket_name,
                CreateBucketConfiguration={"LocationConstraint": env.region},
            )
            s3.put_bucket_notification_configuration(
                Bucket=env.bucket_name,
                NotificationConfiguration={"EventBridgeConfiguration": {}},
            )
        else:
            s3.put_bucket_versioning(
                Bucket=env.bucket_name, VersioningConfiguration={"Status": status}
            )
        assert problems(env) == [
            f"missing: bucket {env.bucket_name} versioning is {status or 'never enabled'}, not "
            f"Enabled; fix: aws s3api put-bucket-versioning --bucket {env.bucket_name} "
            "--versioning-configuration Status=Enabled"
        ]


def test_bucket_without_eventbridge_notifications_is_left_to_terraform(account):
    bucket = account.env.bucket_name
    account.s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    assert problems(account.env) == []
    assert f"ok: bucket {bucket}: terraform apply turns on EventBridge notifications" in lines(
        account.env
    )


def test_other_bucket_notifications_warn_that_apply_replaces_them(account):
    bucket = account.env.bucket_name
    topic_arn = account.sns.create_topic(Name="data-arrivals")["TopicArn"]
    account.s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "TopicConfigurations": [{"TopicArn": topic_arn, "Events": ["s3:ObjectCreated:*"]}],
            "EventBridgeConfiguration": {},
        },
    )
    findings = preflight(account.env)
    assert [
        line
        for line in map(Finding.line, findings)
        if not line.startswith(("ok:", CANNOT_SIMULATE))
    ] == [
        f"warning: bucket {bucket} has 1 SNS, SQS or Lambda notification(s): terraform apply "
        "replaces the bucket's whole notification configuration; fix: declare them in "
        "aws_s3_bucket_notification.eventbridge (events.tf), or use a bucket of this project's own"
    ]


def test_missing_kms_key(account):
    env = replace(account.env, kms_key=load_config(DEV_ENV).env.kms_key)
    assert problems(env) == [
        f"missing: KMS key {env.kms_key} does not exist; fix: create a symmetric customer "
        f"managed key in {env.region} whose key policy lets the role use it, and set kms_key to "
        "its ARN"
    ]


def test_disabled_kms_key(account):
    account.kms.disable_key(KeyId=account.env.kms_key.rsplit("/", 1)[1])  # moto: id, not ARN
    assert problems(account.env) == [
        f"missing: KMS key {account.env.kms_key} is Disabled, not Enabled; fix: aws kms "
        f"enable-key --key-id {account.env.kms_key} (PendingDeletion: aws kms "
        "cancel-key-deletion first)"
    ]


def test_asymmetric_kms_key(account):
    key = account.kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    env = replace(account.env, kms_key=key["Arn"])
    assert problems(env) == [
        f"missing: KMS key {key['Arn']} is a RSA_2048 key; S3 and SageMaker need a symmetric "
        "encryption key; fix: set kms_key to a symmetric (SYMMETRIC_DEFAULT) customer managed key"
    ]


def test_kms_key_by_alias(account):
    account.kms.create_alias(AliasName="alias/mlops", TargetKeyId=account.env.kms_key)
    alias_arn = f"arn:aws:kms:{account.env.region}:{account.env.account_id}:alias/mlops"
    assert problems(replace(account.env, kms_key=alias_arn)) == []


def session_allowed(account: Account, actions: list[str]) -> boto3.Session:
    """Credentials of an IAM user allowed exactly `actions`, as moto enforces them."""
    account.iam.create_user(UserName="ci")
    # AWS authorises HeadBucket with s3:ListBucket; moto asks for an action named s3:HeadBucket.
    actions = [*actions, "s3:HeadBucket"] if "s3:ListBucket" in actions else actions
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": actions, "Resource": "*"}
    ]}  # fmt: skip
    account.iam.put_user_policy(UserName="ci", PolicyName="ci", PolicyDocument=json.dumps(policy))
    key = account.iam.create_access_key(UserName="ci")["AccessKey"]
    return boto3.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )


def test_documented_permissions_are_enough(account):
    create_topic(account, *account.env.email_recipient)
    session = session_allowed(account, list(PREFLIGHT_ACTIONS))
    with enable_iam_authentication():
        assert [line for line in lines(account.env, session) if not line.startswith("ok: ")] == []


def test_kms_key_not_usable_by_these_credentials(account):
    actions = [action for action in PREFLIGHT_ACTIONS if action != "kms:GenerateDataKey"]
    session = session_allowed(account, actions)
    with enable_iam_authentication():
        found = [line for line in lines(account.env, session) if not line.startswith("ok: ")]
    assert len(found) == 1
    assert found[0].startswith(f"missing: KMS key {account.env.kms_key} is not usable by these ")
    assert found[0].endswith(
        f"; fix: allow kms:GenerateDataKey on {account.env.kms_key} to the identity running "
        "upsert, in the key policy or its IAM policy"
    )


def test_check_not_allowed_is_reported(account):
    actions = [action for action in PREFLIGHT_ACTIONS if action != "iam:GetRole"]
    session = session_allowed(account, actions)
    with enable_iam_authentication():
        found = [line for line in lines(account.env, session) if not line.startswith("ok: ")]
    assert len(found) == 1
    assert found[0].startswith(f"missing: cannot check role {account.env.role_arn}: ")
    assert found[0].endswith(
        f"; fix: allow iam:GetRole on {account.env.role_arn} to the identity running preflight "
        "(the CI role, or you)"
    )


def test_unconfirmed_and_absent_subscriptions_warn_without_failing(account, tmp_path):
    env = replace(account.env, email_recipient=("a@example.com", "b@example.com"))
    topic_arn = create_topic(account, "a@example.com")
    # moto confirms e-mail subscriptions at once; SNS lists an unconfirmed one like this.
    backend = sns_backends[env.account_id][env.region]
    next(
        s for s in backend.subscriptions.values() if s.topic.arn == topic_arn
    ).arn = "PendingConfirmation"
    topic = notification_topic_name(env)

    findings = preflight(env)

    assert [
        line
        for line in map(Finding.line, findings)
        if not line.startswith(("ok:", CANNOT_SIMULATE))
    ] == [
        f"warning: a@example.com has not confirmed its subscription to {topic}, so it gets no "
        "notification; fix: a@example.com opens the 'AWS Notification - Subscription "
        "Confirmation' e-mail and clicks 'Confirm subscription'",
        f"warning: b@example.com is not subscribed to {topic}; fix: terraform apply subscribes "
        "every email_recipient",
    ]
    assert not [f for f in findings if f.status == "missing"]


def test_no_credentials(account, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert lines(account.env) == [
        "missing: no AWS credentials; fix: configure the default credential chain (e.g. "
        "AWS_PROFILE), or in GitLab CI the AWS_ROLE_ARN variable (README, Deploy with GitLab CI)"
    ]


def test_honours_aws_endpoint_url(aws_credentials, moto_reports_eventbridge, monkeypatch):
    """The same checks against an AWS API at AWS_ENDPOINT_URL, as upsert and delete use it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        # moto's state is per process, shared by every server it starts: begin empty, whatever
        # an earlier test created (test_runner's bucket made create_bucket fail here).
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", b""))
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        env = create_prerequisites(load_config(DEV_ENV).env)
        assert problems(env) == []
        boto3.client("s3", region_name=env.region).delete_bucket(Bucket=env.bucket_name)
        assert problems(env)[0].startswith(f"missing: bucket {env.bucket_name} does not exist")
    finally:
        server.stop()


def test_role_permissions_cannot_be_checked_without_the_simulator_permission(account):
    """Not allowed iam:SimulatePrincipalPolicy: a warning naming the fix, not a failure."""
    actions = [a for a in PREFLIGHT_ACTIONS if a != "iam:SimulatePrincipalPolicy"]
    session = session_allowed(account, actions)
    with enable_iam_authentication():
        findings = preflight(account.env, session)
    (role_check,) = [f for f in findings if f.line().startswith(CANNOT_SIMULATE)]
    assert role_check.status == "warning"
    assert "(iam:SimulatePrincipalPolicy: AccessDenied)" in role_check.what
    assert "make role-policy" in role_check.fix
    assert not [f for f in findings if f.status == "missing"]


# --------------------------------------------------------------------------- role policy


@pytest.fixture(scope="module")
def rendered():
    from pipeline_scripts.render import render

    config = load_config(DEV_ENV)
    return config, [json.loads(p.definition) for p in render(config).pipelines]


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _allows(policy: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement names `action` and a resource pattern matching `resource`."""
    from fnmatch import fnmatchcase

    for statement in policy["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if action in statement["Action"] and any(fnmatchcase(resource, r) for r in resources):
            return True
    return False


@pytest.mark.e2e
def test_role_policy_is_least_privilege_and_valid(rendered):
    """No wildcard action; every SageMaker, KMS, Logs, ECR and CloudWatch action is a real API
    operation of that service (botocore's service models); within IAM's size limit."""
    import botocore.session

    from pipeline_scripts.role_policy import role_policy

    config, _ = rendered
    policy = role_policy(config)
    session = botocore.session.get_session()
    services = {"sagemaker": "sagemaker", "kms": "kms", "logs": "logs", "ecr": "ecr"}
    services["cloudwatch"] = "cloudwatch"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            prefix, _, name = action.partition(":")
            assert "*" not in action and name, action
            if prefix in services:
                operations = session.get_service_model(services[prefix]).operation_names
                assert name in operations, f"{action} is not a {prefix} API operation"
    (pass_role,) = [s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"]]
    assert pass_role["Resource"] == config.env.role_arn
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": SAGEMAKER_PRINCIPAL}}
    # IAM: a managed policy's document is at most 6,144 characters (whitespace not counted).
    assert len(json.dumps(policy, separators=(",", ":"))) <= 6144


@pytest.mark.e2e
def test_role_policy_covers_what_the_definitions_use(rendered):
    """Each job type, Lambda, S3 location and the KMS key the rendered pipelines use."""
    from pipeline_scripts.role_policy import role_policy

    config, definitions = rendered
    env, policy = config.env, role_policy(config)
    arn = f"arn:{env.partition}:sagemaker:{env.region}:{env.account_id}"
    creates = {
        "Processing": ("CreateProcessingJob", "processing-job"),
        "Training": ("CreateTrainingJob", "training-job"),
        "Tuning": ("CreateHyperParameterTuningJob", "hyper-parameter-tuning-job"),
        "Transform": ("CreateTransformJob", "transform-job"),
        "Model": ("CreateModel", "model"),
    }
    bucket_prefix = f"s3://{env.bucket_name}/"
    seen = set()
    for definition in definitions:
        steps = list(definition["Steps"])
        while steps:
            step = steps.pop()
            steps += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])
            seen.add(step["Type"])
            if step["Type"] in creates:
                action, kind = creates[step["Type"]]
                assert _allows(policy, f"sagemaker:{action}", f"{arn}:{kind}/pipelines-x")
            if step["Type"] == "Lambda":
                assert _allows(policy, "lambda:InvokeFunction", step["FunctionArn"])
            if step["Type"] == "RegisterModel":
                group = step["Arguments"]["ModelPackageGroupName"].lower()
                assert _allows(
                    policy, "sagemaker:CreateModelPackage", f"{arn}:model-package/{group}/3"
                )
        for text in _strings(definition["Steps"]):
            if text.startswith(bucket_prefix):
                key = text.removeprefix(bucket_prefix)
                # "/x": an object under the location (a Std:Join part has no trailing slash).
                object_arn = f"arn:{env.partition}:s3:::{env.bucket_name}/{key.rstrip('/')}/x"
                assert _allows(policy, "s3:GetObject", object_arn), text
                assert _allows(policy, "s3:PutObject", object_arn), text
            if text.startswith("arn:") and ":kms:" in text:
                assert _allows(policy, "kms:Decrypt", text)
                assert _allows(policy, "kms:GenerateDataKey", text)
    assert {"Processing", "Training", "Tuning", "Transform", "Model", "Lambda"} <= seen


def test_make_role_policy_writes_the_document(tmp_path, capsys):
    from pipeline_scripts.role_policy import main as role_policy_main
    from pipeline_scripts.role_policy import role_policy

    out = tmp_path / "role-policy.json"
    assert role_policy_main(["--env-file", str(DEV_ENV), "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == role_policy(load_config(DEV_ENV))
    assert str(out) in capsys.readouterr().out
