""".gitlab-ci.yml: GitLab's schema, and the jobs gitlab-ci-local lists for each kind of pipeline.

gitlab-ci-local (pinned in package.json; `make test` installs it) evaluates the rules exactly as
GitLab does, from the git state of its working directory, so each test runs it in a throwaway
repository holding only .gitlab-ci.yml, on the branch the pipeline is for.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipeline_scripts.config import ENVIRONMENTS
from tests.conftest import REPO_ROOT, shared_path

CI_FILE = REPO_ROOT / ".gitlab-ci.yml"
GITLAB_CI_LOCAL = REPO_ROOT / "node_modules" / ".bin" / "gitlab-ci-local"
DEFAULT_BRANCH = "main"

TEST_JOBS = {"lint", "unit-tests", "checkov", "demo"}
# Build jobs that need no AWS access, so they run for every pipeline.
OFFLINE_BUILD_JOBS = {"render", "terraform-validate"}
STAGES = {
    **dict.fromkeys(TEST_JOBS, "test"),
    **dict.fromkeys(OFFLINE_BUILD_JOBS | {"upsert", "terraform-plan"}, "build"),
    "terraform-apply": "deploy",
    "upsert-approved": "deploy",
    "terraform-destroy": "destroy",
}
# Every job that changes or reads the AWS account, and so gets credentials.
AWS_JOBS = {"upsert", "terraform-plan", "terraform-apply", "upsert-approved", "terraform-destroy"}
# The jobs among them that change it.
CHANGING_JOBS = AWS_JOBS - {"terraform-plan"}
# Predefined variables the tests set to stand for a kind of pipeline, as GitLab would.
PREDEFINED = [
    "CI_DEFAULT_BRANCH",
    "CI_COMMIT_BRANCH",
    "CI_PIPELINE_SOURCE",
    "CI_MERGE_REQUEST_IID",
    "CI_OPEN_MERGE_REQUESTS",
    "CI_COMMIT_TAG",
]
# A job whose rules are the workflow's: it runs exactly when GitLab creates a pipeline
# (gitlab-ci-local lists jobs even when workflow:rules would create no pipeline).
WORKFLOW_PROBE = """
workflow-probe:
  stage: test
  script: [exit 0]
  rules: !reference [workflow, rules]
"""


class CiLoader(yaml.SafeLoader):
    """Reads GitLab's !reference tag as the list it holds, as the schema expects it."""


CiLoader.add_constructor("!reference", lambda loader, node: loader.construct_sequence(node))


def load_ci() -> dict:
    return yaml.load(CI_FILE.read_text(), Loader=CiLoader)


# --------------------------------------------------------------------------- schema


def test_validates_against_gitlab_schema():
    schema = json.loads(shared_path("schemas/gitlab-ci.schema.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(load_ci())
    ]
    assert errors == []


def test_validates_with_check_jsonschema_when_installed():
    venv_tool = REPO_ROOT / ".venv" / "bin" / "check-jsonschema"
    tool = str(venv_tool) if venv_tool.exists() else shutil.which("check-jsonschema")
    if tool is None:
        pytest.skip("check-jsonschema is not installed")
    result = subprocess.run(
        [
            tool,
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
            str(CI_FILE),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- gitlab-ci-local


def gitlab_ci_local() -> Path:
    if not GITLAB_CI_LOCAL.exists():
        pytest.fail(
            f"{GITLAB_CI_LOCAL.relative_to(REPO_ROOT)} is missing: run make test, which "
            "installs it (npm ci)",
            pytrace=False,
        )
    if shutil.which("node") is None:
        pytest.fail("gitlab-ci-local needs Node.js 20 or newer on PATH", pytrace=False)
    return GITLAB_CI_LOCAL


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def ci_repo(tmp_path_factory) -> Path:
    """A repository with .gitlab-ci.yml (plus the workflow probe) on the default branch."""
    repo = tmp_path_factory.mktemp("ci-repo")
    (repo / ".gitlab-ci.yml").write_text(CI_FILE.read_text() + WORKFLOW_PROBE)
    git(repo, "init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}")
    git(repo, "remote", "add", "origin", "git@gitlab.example.com:ml/batch-inference.git")
    git(repo, "add", ".gitlab-ci.yml")
    git(repo, "commit", "--quiet", "-m", "ci")
    return repo


def run_gitlab_ci_local(repo: Path, branch: str, *options: str, **variables: str) -> str:
    git(repo, "checkout", "--quiet", "-B", branch)
    home = repo.parent / f"{repo.name}-home"  # no ~/.gitlab-ci-local/variables.yml of the user
    home.mkdir(exist_ok=True)
    command = [str(gitlab_ci_local()), *options, "--home", str(home)]  # in cwd=repo
    # The schema tests above validate the file already; gitlab-ci-local's own validation would
    # repeat it on every run (~0.6 of its ~1.1 CPU-s, measured).
    command.append("--no-json-schema-validation")
    command += ["--ignore-predefined-vars", ",".join(PREDEFINED)]
    variables = {"CI_DEFAULT_BRANCH": DEFAULT_BRANCH, **variables}
    for name, value in variables.items():
        command += ["--variable", f"{name}={value}"]
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def list_jobs(repo: Path, branch: str, **variables: str) -> dict[str, dict] | None:
    """The jobs of the pipeline GitLab creates, or None when it creates none."""
    jobs = {job["name"]: job for job in json.loads(run_gitlab_ci_local(
        repo, branch, "--list-json", **variables
    ))}  # fmt: skip
    if jobs.pop("workflow-probe")["when"] == "never":
        return None
    return jobs


def runnable(jobs: dict[str, dict]) -> dict[str, str]:
    return {name: job["when"] for name, job in jobs.items() if job["when"] != "never"}


def needs(jobs: dict[str, dict]) -> dict[str, list[str]]:
    return {
        name: [need["job"] for need in job["needs"]]
        for name, job in jobs.items()
        if job.get("needs") is not None
    }


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
def test_default_branch_tests_builds_and_waits_for_approval(ci_repo):
    jobs = list_jobs(ci_repo, DEFAULT_BRANCH, CI_PIPELINE_SOURCE="push")

    assert jobs is not None
    assert {name: job["stage"] for name, job in jobs.items()} == STAGES
    assert runnable(jobs) == {
        **dict.fromkeys(TEST_JOBS | OFFLINE_BUILD_JOBS, "on_success"),
        "upsert": "on_success",
        "terraform-plan": "on_success",
        "terraform-apply": "manual",
        "terraform-destroy": "manual",
    }
    # apply blocks the pipeline until approved; destroy is optional
    assert jobs["terraform-apply"]["allow_failure"] is False
    assert jobs["terraform-destroy"]["allow_failure"] is True
    assert needs(jobs) == {
        "terraform-apply": ["terraform-plan", "upsert"],
        "upsert-approved": ["terraform-apply"],
        "terraform-destroy": [],
    }


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_staging_and_prod_change_nothing_before_the_approval(ci_repo, environment):
    """dev upserts automatically; staging and prod upsert only after terraform-apply."""
    jobs = list_jobs(ci_repo, DEFAULT_BRANCH, CI_PIPELINE_SOURCE="web", ENVIRONMENT=environment)
    assert jobs is not None
    run = runnable(jobs)
    assert "upsert" not in run and run["upsert-approved"] == "on_success"
    graph = needs(jobs)

    def after_approval(name: str) -> bool:
        return name == "terraform-apply" or any(after_approval(n) for n in graph.get(name, []))

    for name in CHANGING_JOBS & set(run):
        # A job that changes AWS is itself a manual approval or waits for terraform-apply.
        assert run[name] == "manual" or after_approval(name), name


@pytest.mark.e2e
def test_manual_run_on_default_branch_can_deploy(ci_repo):
    """Run pipeline page: the same jobs and gate as a push (staging and prod: see below)."""
    push = list_jobs(ci_repo, DEFAULT_BRANCH, CI_PIPELINE_SOURCE="push")
    web = list_jobs(ci_repo, DEFAULT_BRANCH, CI_PIPELINE_SOURCE="web", ENVIRONMENT="dev")
    assert web is not None and runnable(web) == runnable(push)


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
def test_feature_branch_tests_and_builds_but_deploys_nothing(ci_repo):
    jobs = list_jobs(ci_repo, "feature/new-features", CI_PIPELINE_SOURCE="push")

    assert jobs is not None
    assert runnable(jobs) == dict.fromkeys(TEST_JOBS | OFFLINE_BUILD_JOBS, "on_success")
    assert not AWS_JOBS & set(runnable(jobs))


MERGE_REQUEST = {
    "CI_PIPELINE_SOURCE": "merge_request_event",
    "CI_MERGE_REQUEST_IID": "7",
    "CI_COMMIT_BRANCH": "",  # GitLab leaves it unset in merge request pipelines
}


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
def test_merge_request_tests_and_builds_without_upsert(ci_repo):
    jobs = list_jobs(ci_repo, "feature/new-features", **MERGE_REQUEST)

    assert jobs is not None
    assert runnable(jobs) == dict.fromkeys(TEST_JOBS | OFFLINE_BUILD_JOBS, "on_success")


@pytest.mark.e2e
def test_merge_request_plans_with_the_read_only_role(ci_repo):
    plan_role = "arn:aws:iam::123456789012:role/gitlab-plan"
    jobs = list_jobs(ci_repo, "feature/x", AWS_PLAN_ROLE_ARN=plan_role, **MERGE_REQUEST)

    assert jobs is not None
    assert runnable(jobs) == {
        **dict.fromkeys(TEST_JOBS | OFFLINE_BUILD_JOBS, "on_success"),
        "terraform-plan": "on_success",  # shown in the merge request as the terraform report
    }


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
def test_branch_with_open_merge_request_runs_only_the_merge_request_pipeline(ci_repo):
    jobs = list_jobs(
        ci_repo,
        "feature/new-features",
        CI_PIPELINE_SOURCE="push",
        CI_OPEN_MERGE_REQUESTS="ml/batch-inference!7",
    )
    assert jobs is None


@pytest.mark.e2e  # a gitlab-ci-local run (Node): ~0.5 s of CPU
def test_tags_run_no_pipeline(ci_repo):
    jobs = list_jobs(
        ci_repo, DEFAULT_BRANCH, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="", CI_COMMIT_TAG="v1"
    )
    assert jobs is None


@pytest.fixture(scope="module")
def resolved(ci_repo) -> dict:
    """The configuration with extends, !reference and defaults resolved, as GitLab sees it."""
    return yaml.safe_load(run_gitlab_ci_local(ci_repo, DEFAULT_BRANCH, "--preview"))


def test_deploy_and_destroy_share_an_environment_and_never_overlap(resolved):
    apply, destroy = resolved["terraform-apply"], resolved["terraform-destroy"]
    assert apply["environment"] == {
        "name": "$ENVIRONMENT",
        "action": "start",
        "on_stop": "terraform-destroy",
    }
    assert destroy["environment"] == {"name": "$ENVIRONMENT", "action": "stop"}
    for name in AWS_JOBS:
        assert resolved[name]["resource_group"] == "terraform-$ENVIRONMENT", name
        assert resolved[name]["interruptible"] is False, name


def test_aws_only_through_oidc(resolved):
    text = CI_FILE.read_text()
    assert not re.search(r"AWS_(SECRET_)?ACCESS_KEY|AWS_SESSION_TOKEN", text)
    for name, job in resolved.items():
        if name not in STAGES:
            continue
        if name in AWS_JOBS:
            assert job["id_tokens"] == {"AWS_ID_TOKEN": {"aud": "$CI_SERVER_URL"}}, name
            setup = "\n".join(job["before_script"])
            assert 'printf \'%s\' "$AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE"' in setup
        else:
            assert "id_tokens" not in job, f"{name} needs no AWS credentials"


def test_terraform_uses_gitlab_managed_state_and_applies_the_saved_plan(resolved):
    plan = resolved["terraform-plan"]
    init = next(line for line in plan["before_script"] if line.startswith("terraform init"))
    for setting in [
        "address=${TF_STATE_ADDRESS}",
        "lock_address=${TF_STATE_ADDRESS}/lock",
        "unlock_address=${TF_STATE_ADDRESS}/lock",
        "username=gitlab-ci-token",
    ]:
        assert f'-backend-config="{setting}"' in init
    assert "password" not in init  # TF_HTTP_PASSWORD keeps the token out of plan.cache
    assert plan["variables"]["TF_STATE_ADDRESS"] == (
        "${CI_API_V4_URL}/projects/${CI_PROJECT_ID}/terraform/state/${ENVIRONMENT}"
    )
    assert 'terraform plan -var-file="$ENV_FILE" -out=plan.cache' in plan["script"]
    assert plan["artifacts"]["reports"] == {"terraform": "plan.json"}
    assert {"plan.cache", "plan.json"} <= set(plan["artifacts"]["paths"])
    assert resolved["terraform-apply"]["script"] == ["terraform apply plan.cache"]


def test_merge_request_plans_without_the_state_lock(resolved):
    """Developers may read GitLab-managed state only with -lock=false; the default-branch
    plan (run by Maintainers, before an apply) keeps the lock."""
    rules = resolved["terraform-plan"]["rules"]
    merge_request = [r for r in rules if "merge_request_event" in r["if"]]
    assert [r["variables"] for r in merge_request] == [{"TF_CLI_ARGS_plan": "-lock=false"}]
    others = [r for r in rules if r not in merge_request]
    assert others and all("variables" not in r for r in others)


def test_pipelines_are_deleted_only_after_a_successful_destroy(resolved):
    # In the destroy job itself, after terraform destroy: a failing line ends the job. A
    # separate job needing the allow_failure destroy job would run after it failed.
    destroy = resolved["terraform-destroy"]["script"]
    assert destroy[-2:] == [
        'terraform destroy -auto-approve -var-file="$ENV_FILE"',
        'make delete ENV_FILE="$ENV_FILE"',
    ]
    # Before it, only the line that keeps the sample data (tests/test_terraform_apply.py).
    assert destroy[:-2] == [
        "if terraform state list aws_s3_object.sample_data | grep -q .; "
        "then terraform state rm aws_s3_object.sample_data; fi"
    ]
    for name, job in resolved.items():
        if name in STAGES and name != "terraform-destroy":
            assert not any("make delete" in line for line in job.get("script", [])), name
            assert "terraform-destroy" not in str(job.get("needs", [])), name


def test_every_job_running_terraform_has_the_pinned_terraform(resolved):
    for name, job in resolved.items():
        if name not in STAGES:
            continue
        lines = job.get("before_script", []) + job.get("script", [])
        runs_terraform = any(re.search(r"(^|\s)terraform |make test", line) for line in lines)
        if not runs_terraform:
            continue
        if job["image"]["name"] != "hashicorp/terraform:1.11.4":
            installs = "\n".join(lines)
            assert "releases.hashicorp.com/terraform/${TF_VERSION}" in installs, name
            assert 'echo "${TF_ZIP_SHA256}  /tmp/terraform.zip" | sha256sum -c -' in installs, name
    variables = load_ci()["variables"]
    assert variables["TF_VERSION"] == "1.11.4"
    assert re.fullmatch(r"[0-9a-f]{64}", variables["TF_ZIP_SHA256"])


def test_unit_tests_run_the_terraform_tests(resolved):
    """The unit-test job has terraform and the provider mirror, so the Terraform-backed tests
    run (CI=true turns their skip into a failure, tests/conftest.py missing_tool)."""
    job = resolved["unit-tests"]
    assert job["variables"]["TF_PROVIDER_MIRROR"] == "${CI_PROJECT_DIR}/.cache/terraform-mirror"
    assert any(
        line.startswith("terraform providers mirror -platform=linux_amd64")
        for line in job["before_script"]
    )
    assert any("releases.hashicorp.com/terraform" in line for line in job["before_script"])


def test_terraform_jobs_build_the_lambda_packages(resolved):
    for name in ("terraform-validate", "terraform-plan", "terraform-apply", "terraform-destroy"):
        lines = resolved[name]["before_script"] + resolved[name]["script"]
        package = lines.index("python3 pipeline_scripts/lambda_package.py build/lambda")
        init = next(i for i, line in enumerate(lines) if line.startswith("terraform init"))
        assert package < init, name


def test_images_are_pinned_to_exact_versions(resolved):
    for name in STAGES:
        image = resolved[name]["image"]["name"]
        assert re.fullmatch(r"[\w./-]+:\d+\.\d+\.\d+(-[a-z]+)?", image), f"{name}: {image}"


def test_environment_choices_are_the_env_files():
    variable = load_ci()["variables"]["ENVIRONMENT"]
    env_files = sorted(p.name.removesuffix("_env.tfvars") for p in REPO_ROOT.glob("env_files/*"))
    assert sorted(variable["options"]) == env_files == sorted(ENVIRONMENTS)
    assert variable["value"] == "dev"
    assert load_ci()["variables"]["ENV_FILE"] == "env_files/${ENVIRONMENT}_env.tfvars"


def test_make_targets_and_variables_exist(resolved):
    """Every `make` the jobs run names a Makefile target and variables the Makefile reads."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w./-]+):", makefile, flags=re.MULTILINE))
    calls = [
        line
        for name in STAGES
        for line in resolved[name].get("script", [])
        if line.startswith("make ")
    ]
    assert calls
    for call in calls:
        for word in call.split()[1:]:
            if "=" in word:
                assert f"$({word.split('=')[0]})" in makefile, call
            else:
                assert word in targets, call
