"""Terraform, checked without downloading a provider.

python-hcl2 reads every .tf file; a small evaluator computes the locals that must agree with
the Python side (event template values, helper function names, pipeline parameters) for each
shipped env file; checkov runs from its own virtualenv (.venv-checkov, installed by
`make test`) on each env file, all in one process (tests/checkov_runner.py). The real terraform
binary runs in tests/test_terraform_apply.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import hcl2
import pytest

from pipeline_scripts import contract, event_rules
from pipeline_scripts.config import (
    EnvConfig,
    ProjectConfig,
    load_config,
    load_env_config,
    parse_tfvars,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
TF_FILES = sorted(REPO_ROOT.glob("*.tf"))
ENV_FILES = sorted((REPO_ROOT / "env_files").glob("*.tfvars"))
README = REPO_ROOT / "README.md"
CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_PYTHON = CHECKOV.with_name("python")
CHECKOV_RUNNER = REPO_ROOT / "tests" / "checkov_runner.py"

# Read by the Python pipeline builders only (from the same tfvars file); declared in
# variables.tf so one file configures both and Terraform accepts the file.
PYTHON_ONLY_VARIABLES = {
    "recreate_pipelines": "pipeline_scripts upsert: delete and recreate changed pipelines",
}

README_START = re.compile(r"<!-- variables:start[^>]*-->\n")
README_END = "<!-- variables:end -->"

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False)


def parse(path: Path) -> dict[str, Any]:
    return hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=HCL_OPTIONS)


@pytest.fixture(scope="module")
def parsed() -> dict[str, dict[str, Any]]:
    return {path.name: parse(path) for path in TF_FILES}


@pytest.fixture(scope="module")
def declared(parsed) -> dict[str, dict[str, Any]]:
    return {
        name: body for block in parsed["variables.tf"]["variable"] for name, body in block.items()
    }


@pytest.fixture(scope="module")
def locals_(parsed) -> dict[str, Any]:
    """Every local value of the configuration, by name, as python-hcl2 returns it."""
    values: dict[str, Any] = {}
    for content in parsed.values():
        for block in content.get("locals", []):
            for name, value in block.items():
                if name != "__is_block__":
                    assert name not in values, f"local.{name} is defined twice"
                    values[name] = value
    # contract.tf reads contract.json; the evaluator takes the file's values as they are.
    assert values["contract"] == '${jsondecode(file("${path.module}/contract.json"))}'
    values["contract"] = contract.CONTRACT
    return values


def strings(node: Any):
    """Every string in a parsed HCL tree (expressions come back as "${...}" strings)."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


# --------------------------------------------------------------------------- a tiny evaluator

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<name>[A-Za-z_][\w-]*)"
    r"|(?P<punct>[().,\[\]]))"
)


class Evaluator:
    """Terraform's value of a local, for the subset these tests need: "${...}" templates of
    var.X, local.X(.attr), (expression), lower(), tostring(), split() and [index]. Anything
    else fails the test, asking for simpler locals rather than a bigger evaluator."""

    def __init__(self, variables: dict[str, Any], locals_: dict[str, Any]) -> None:
        self.variables = variables
        self.locals = locals_

    def value(self, node: Any) -> Any:
        if isinstance(node, dict):  # a key may be an expression: {(local.x) = ...}
            return {self.value(k): self.value(v) for k, v in node.items() if k != "__is_block__"}
        if isinstance(node, str):
            return self.template(node)
        return node

    def template(self, text: str) -> Any:
        parts, i = [], 0
        while (start := text.find("${", i)) >= 0:
            end = self._closing(text, start + 2)
            parts += [text[i:start], self.expression(text[start + 2 : end])]
            i = end + 1
        parts.append(text[i:])
        if len(parts) == 3 and parts[0] == parts[2] == "":
            return parts[1]  # "${expr}" alone keeps the expression's type
        return "".join(p if isinstance(p, str) else self.tostring(p) for p in parts)

    @staticmethod
    def _closing(text: str, i: int) -> int:
        depth, quoted = 0, False
        for j in range(i, len(text)):
            c = text[j]
            if c == '"' and text[j - 1] != "\\":
                quoted = not quoted
            elif not quoted and c == "{":
                depth += 1
            elif not quoted and c == "}":
                if depth == 0:
                    return j
                depth -= 1
        raise AssertionError(f"unterminated ${{ in {text!r}")

    def expression(self, text: str) -> Any:
        tokens, i = [], 0
        while text[i:].strip():
            match = _TOKEN.match(text, i)
            assert match, f"evaluator: unsupported syntax at {text[i:]!r} in {text!r}"
            tokens.append((match.lastgroup, match.group(match.lastgroup)))
            i = match.end()
        value, rest = self._postfix(tokens)
        assert not rest, f"evaluator: unsupported expression {text!r}"
        return value

    def _postfix(self, tokens):
        value, tokens = self._primary(tokens)
        while tokens and tokens[0][1] in (".", "["):
            if tokens[0][1] == ".":
                value, tokens = value[tokens[1][1]], tokens[2:]
            else:
                value, tokens = value[int(tokens[1][1])], tokens[3:]
        return value, tokens

    def _primary(self, tokens):
        (kind, text), tokens = tokens[0], tokens[1:]
        if text == "(":  # a parenthesised expression
            value, tokens = self._postfix(tokens)
            assert tokens[0][1] == ")", f"evaluator: expected ')' at {tokens!r}"
            return value, tokens[1:]
        if kind == "string":
            return json.loads(text), tokens
        if kind == "number":
            return (float(text) if "." in text else int(text)), tokens
        if kind == "name" and tokens and tokens[0][1] == "(":
            args, tokens = [], tokens[1:]
            while tokens[0][1] != ")":
                arg, tokens = self._postfix(tokens)
                args.append(arg)
                if tokens[0][1] == ",":
                    tokens = tokens[1:]
            return self.call(text, args), tokens[1:]
        if text == "var":
            return self.variables[tokens[1][1]], tokens[2:]
        if text == "local":
            return self.value(self.locals[tokens[1][1]]), tokens[2:]
        raise AssertionError(f"evaluator: unsupported term {text!r}")

    def call(self, function: str, args: list) -> Any:
        if function == "lower":
            return args[0].lower()
        if function == "tostring":
            return self.tostring(args[0])
        if function == "split":
            return args[1].split(args[0])
        raise AssertionError(f"evaluator: unsupported function {function}()")

    @staticmethod
    def tostring(value: Any) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, float) and value.is_integer():
            return str(int(value))  # Terraform prints 6.0 as 6
        return str(value)


def evaluator(env: Path | EnvConfig, locals_: dict[str, Any]) -> Evaluator:
    """An evaluator with the values of an env file (or an EnvConfig) as var.*."""
    if not isinstance(env, EnvConfig):
        env = load_env_config(env)
    variables = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in vars(env).items()
    }
    return Evaluator(variables, locals_)


def test_evaluator_follows_terraform_on_a_known_example(locals_):
    ev = evaluator(ENV_FILES[0], locals_)
    assert ev.template("${tostring(6.0)}") == "6" and ev.template("${tostring(6.5)}") == "6.5"
    assert ev.template('x-${lower(split(":", "A:B")[1])}') == "x-b"
    with pytest.raises(AssertionError, match="unsupported function"):
        ev.template('${upper("a")}')


# --------------------------------------------------------------------------- files and versions


@pytest.mark.parametrize("path", TF_FILES, ids=lambda p: p.name)
def test_every_tf_file_parses(path):
    assert parse(path), f"{path.name} holds no blocks"


def test_terraform_and_providers_are_pinned(parsed):
    (terraform,) = parsed["main.tf"]["terraform"]
    # One patch series (~> 1.x.y) or an exact version, at least 1.9 (cross-variable checks).
    match = re.fullmatch(r"(~> )?1\.(\d+)\.\d+", terraform["required_version"])
    assert match and int(match.group(2)) >= 9, terraform["required_version"]
    (providers,) = terraform["required_providers"]
    providers = {k: v for k, v in providers.items() if k != "__is_block__"}
    assert set(providers) == {"aws"}, "the AWS provider only: others cannot be installed offline"
    for name, requirement in providers.items():
        assert requirement["source"] == f"hashicorp/{name}"
        assert re.fullmatch(r"\d+\.\d+\.\d+", requirement["version"]), (name, requirement)
    assert terraform["backend"] == [{"http": {"__is_block__": True}}], "GitLab-managed state"


def test_every_resource_takes_the_tags_json_tags(parsed):
    # default_tags reach every taggable resource of the provider; there is no other provider.
    (provider,) = parsed["main.tf"]["provider"]
    assert set(provider) == {"aws"}
    assert provider["aws"]["default_tags"][0]["tags"] == "${local.tags}"
    tags_local = next(b["tags"] for b in parsed["main.tf"]["locals"] if "tags" in b)
    assert tags_local.startswith('${merge(jsondecode(file("${path.module}/tags.json")), ')


def test_lambda_packages_are_deterministic(tmp_path):
    from pipeline_scripts import lambda_package

    code = tmp_path / "code"
    (code / "pkg" / "__pycache__").mkdir(parents=True)
    (code / "pkg" / "b.py").write_text("B = 1\n")
    (code / "a.py").write_text("A = 1\n")
    (code / "pkg" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"cache")
    first = lambda_package.package(code, tmp_path / "one.zip")
    # Another checkout: other mtimes and modes, same content -> the same bytes.
    os.utime(code / "a.py", (0, 2_000_000_000))
    (code / "a.py").chmod(0o600)
    second = lambda_package.package(code, tmp_path / "two.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        # sorted, no __pycache__, and the shared names and code/common beside the handler
        assert archive.namelist() == ["a.py", "contract.json", "lambda_contract.py", "pkg/b.py"]
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_STORED
    # Changed code changes the package.
    (code / "a.py").write_text("A = 2\n")
    assert lambda_package.package(code, tmp_path / "three.zip").read_bytes() != first.read_bytes()


def test_lambda_tf_packages_every_function_the_module_builds(parsed):
    from pipeline_scripts import lambda_package

    module_locals = {
        k: v for tf in parsed.values() for b in tf.get("locals", []) for k, v in b.items()
    }
    functions = [  # an entry may be a reference to a local of another file (dispatcher.tf)
        module_locals[f.removeprefix("${local.").removesuffix("}")] if isinstance(f, str) else f
        for f in module_locals["functions"].values()
    ]
    assert {f["code_dir"] for f in functions} == set(lambda_package.FUNCTIONS)
    assert all((lambda_package.CODE_DIR / name).is_dir() for name in lambda_package.FUNCTIONS)


# --------------------------------------------------------------------------- variables


def test_every_variable_is_typed_described_and_validated(declared):
    for name, body in declared.items():
        assert body.get("type"), f"variable {name} has no type"
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert body.get("validation"), f"variable {name} has no validation block"


def test_every_variable_is_used_by_terraform(parsed, declared):
    used = {
        match
        for name, content in parsed.items()
        if name != "variables.tf"
        for text in strings(content)
        for match in re.findall(r"\bvar\.(\w+)", text)
    }
    assert used <= set(declared), f"undeclared: {sorted(used - set(declared))}"
    assert set(declared) - used == set(PYTHON_ONLY_VARIABLES), (
        "variables declared but used by neither Terraform nor listed as Python-only: "
        f"{sorted(set(declared) - used - set(PYTHON_ONLY_VARIABLES))}"
    )


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_sets_declared_variables_and_every_required_one(env_file, declared):
    keys = set(parse_tfvars(env_file))
    assert keys <= set(declared), f"undeclared: {sorted(keys - set(declared))}"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= keys, f"required but not set: {sorted(required - keys)}"


# --------------------------------------------------------------------------- event templates


def placeholders() -> set[str]:
    return {
        name
        for path in sorted(event_rules.EVENTS_DIR.glob("*.json"))
        for name in re.findall(r"\$\{(\w+)\}", path.read_text())
    }


def test_event_templates_get_a_value_for_every_placeholder(locals_):
    terraform_vars = set(locals_["event_template_vars"])
    assert placeholders() == terraform_vars
    assert set(event_rules.template_variables(load_config(ENV_FILES[0]))) == terraform_vars


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_terraform_renders_the_templates_with_the_python_values(env_file, locals_):
    terraform = evaluator(env_file, locals_).value(locals_["event_template_vars"])
    assert terraform == event_rules.template_variables(load_config(env_file))


def test_pipeline_arns_are_lowercased_on_both_sides(locals_):
    # SageMaker lowercases pipeline names in ARNs; the shipped names are lowercase already.
    config = load_config(ENV_FILES[0])
    env = dataclasses.replace(config.env, pipeline_train="Training-Pipeline", pipeline_inf="Batch")
    terraform = evaluator(env, locals_).value(locals_["event_template_vars"])
    python = event_rules.template_variables(ProjectConfig(env, config.settings, config.tags))
    assert terraform == python
    assert terraform["pipeline_train_arn"].endswith(":pipeline/training-pipeline")


def test_rules_target_what_events_tf_deploys(locals_):
    targets = {rule.target for rule in event_rules.load_rules(load_config(ENV_FILES[0])).values()}
    # start_inference: the inference_schedule rule of events.tf (a prefix run, no batch).
    assert targets | {"start_inference"} == set(event_rules.TARGETS)
    # Function targets; the others start pipelines.
    lambdas = {"notifier", "dispatch_batch", "retrain_gate"}
    assert set(locals_["pipeline_targets"]) == set(event_rules.TARGETS) - lambdas


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_helper_functions_have_the_names_the_pipelines_call(env_file, locals_):
    from pipeline_scripts.lambda_steps import lambda_function_arn

    names = evaluator(env_file, locals_).value(locals_["function_names"])
    config = load_config(env_file)
    for key, suffix in (("model_resolver", "model-resolver"), ("data_version", "data-version")):
        assert lambda_function_arn(config, suffix).endswith(f":function:{names[key]}")
    # The EventBridge-invoked functions of dispatcher.tf, as the local router calls them.
    from local_runtime.router import function_arn

    for key, suffix in (("batch_dispatcher", "batch-dispatcher"), ("retrain_gate", "retrain-gate")):
        assert function_arn(config, suffix).endswith(f":function:{names[key]}")


@pytest.mark.e2e
def test_pipeline_start_parameters_are_parameters_of_the_started_pipeline(locals_):
    from pipeline_scripts.render import render

    config = load_config(ENV_FILES[0])
    definitions = {p.name.lower(): json.loads(p.definition) for p in render(config).pipelines}
    targets = evaluator(ENV_FILES[0], locals_).value(locals_["pipeline_targets"])
    for target, spec in targets.items():
        declared = {
            p["Name"]: p for p in definitions[spec["pipeline_arn"].rsplit("/", 1)[1]]["Parameters"]
        }
        for name, value in spec["parameters"].items():
            assert name in declared, f"{target}: {name} is not a parameter of the pipeline"
            parameter = declared[name]
            # The value EventBridge passes parses as the parameter's type and equals its
            # default: both come from the same tfvars file.
            if parameter["Type"] == "Float":
                assert float(value) == parameter["DefaultValue"], (target, name)
            elif parameter["Type"] == "Boolean":
                assert value == str(parameter["DefaultValue"]).lower(), (target, name)
            else:
                assert value == parameter["DefaultValue"], (target, name)


# --------------------------------------------------------------------------- README


def variables_table(declared: dict[str, dict[str, Any]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| variable | type | default | description |", "| --- | --- | --- | --- |"]
    for name, body in declared.items():
        type_ = re.sub(r"\s+", " ", body["type"].removeprefix("${").removesuffix("}"))
        default = f"`{json.dumps(body['default'])}`" if "default" in body else "required"
        rows.append(
            f"| `{name}` | `{cell(type_)}` | {cell(default)} | {cell(body['description'])} |"
        )
    return "\n".join(rows) + "\n"


def test_readme_variables_table_matches_variables_tf(declared):
    text = README.read_text(encoding="utf-8")
    start = README_START.search(text)
    assert start and README_END in text, "README.md lacks the variables:start/end markers"
    table = text[start.end() : text.index(README_END)]
    expected = variables_table(declared)
    assert table == expected, f"README.md variables table is stale; it should be:\n{expected}"


# --------------------------------------------------------------------------- checkov


def run_checkov(env_files: list[Path]) -> dict[str, dict[str, Any]]:
    """checkov's report for each env file (by file name), as `checkov --var-file <env file>`
    gives it, from one process (tests/checkov_runner.py): checkov's start-up is paid once."""
    options = [
        *("--framework", "terraform"),
        # Offline: no guideline or policy download from the Prisma Cloud API.
        "--skip-download",
        *("--output", "json"),
    ]
    for path in (".venv", ".venv-checkov", "build", "node_modules", ".git"):
        options += ["--skip-path", path]
    command = [str(CHECKOV_PYTHON), str(CHECKOV_RUNNER), str(REPO_ROOT), *map(str, env_files)]
    # No worker per CPU: the suite's other workers keep the cores busy (forking them made the
    # scans that ran side by side 3x slower).
    env = {**os.environ, "CHECKOV_PARALLELIZATION_TYPE": "none"}
    result = subprocess.run(
        [*command, "--", *options],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov gave no JSON report (exit {result.returncode}):\n{result.stderr}")
    # One framework gives one report object (a list when several ran).
    return {
        Path(env_file).name: report[0] if isinstance(report, list) else report
        for env_file, report in reports.items()
    }


@pytest.fixture(scope="module")
def checkov_reports() -> dict[str, dict[str, Any]]:
    if not CHECKOV.exists():
        pytest.fail(
            f"{CHECKOV.relative_to(REPO_ROOT)} is missing: `make test` installs checkov there "
            "from requirements-checkov.lock"
        )
    reports = run_checkov(ENV_FILES)
    assert list(reports) == [p.name for p in ENV_FILES]
    return reports


@pytest.mark.e2e
@pytest.mark.parametrize("env_file", [p.name for p in ENV_FILES])
def test_checkov_reports_no_failed_check(checkov_reports, env_file):
    report = checkov_reports[env_file]
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range']}): "
        f"{c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    # Guard against a scan that silently read nothing.
    assert summary["resource_count"] >= 30 and summary["passed"] >= 100, summary


@pytest.mark.e2e
def test_every_checkov_skip_is_justified_inline_and_still_needed(checkov_reports):
    comments = {
        match.group(1): match.group(2)
        for path in TF_FILES
        for match in re.finditer(r"#checkov:skip=(CKV2?_AWS_\d+):(.*)", path.read_text())
    }
    for check_id, reason in comments.items():
        assert len(reason.split()) >= 8, f"{check_id}: give the reason for the skip"
    for report in checkov_reports.values():
        skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
        # Every skip is written inline, and every inline skip still suppresses a finding.
        assert skipped == set(comments), (skipped, set(comments))


@pytest.mark.parametrize("env_file", ENV_FILES[:1], ids=lambda p: p.name)
def test_the_notifier_may_read_every_result_file_it_reads(env_file, parsed, locals_):
    """Each batch-inference result the notifier reads (code/notifier/lookups.py) is under a
    resource of lambda.tf's ReadBatchQualityResults statement, for a sample execution."""
    import fnmatch

    from pipeline_scripts.module_files import load_module

    # The handler's imports (code/common beside it) resolve as in its zip.
    notifier = load_module(REPO_ROOT / "code" / "notifier" / "notifier.py", "notifier_for_iam")
    lookups = notifier._lookups
    files = [*lookups.OUTCOME_FILES.values(), lookups.LATE_LABELS_FILE, lookups.EXPLANATIONS_FILE]

    documents = [block["aws_iam_policy_document"] for block in parsed["lambda.tf"]["data"]]
    (document,) = [d["notifier"] for d in documents if "notifier" in d]
    (statement,) = [s for s in document["statement"] if s.get("sid") == "ReadBatchQualityResults"]
    resources = [evaluator(env_file, locals_).value(r) for r in statement["resources"]]
    env = load_env_config(env_file)
    base = f"arn:{env.partition}:s3:::{env.artifacts_uri.removeprefix('s3://')}"
    for step, output, name in files:
        key = f"{base}/{env.pipeline_inf}/execution-id/{step}/{output}/{name}"
        assert any(fnmatch.fnmatchcase(key, r) for r in resources), (key, resources)
