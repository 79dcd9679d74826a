"""Each shared name is spelled once, in contract.json (issue 12, "Shared names in one place").

For every value of the contract, the non-test sources (Python, Terraform, events/*.json,
Makefile, .gitlab-ci.yml) are scanned for it as a literal: a Python string constant (not a
docstring or comment), a Terraform string (not a comment), a JSON string of a rule (not its
description), or a word of the Makefile or CI file outside comments. Each hit fails the test
with its file:line; the allow-list below holds the exceptions, each with its reason.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
from pathlib import Path

import pytest

from pipeline_scripts import contract, lambda_package
from tests.conftest import all_steps

REPO_ROOT = Path(__file__).resolve().parents[1]
EXCLUDED_DIRS = {".git", ".venv", ".venv-checkov", "node_modules", "build", "tests", "bench"}

# (path relative to the repo, value) -> why that file may spell it.
ALLOWED = {
    # EventBridge target ids that happen to equal the function suffixes; an id is the target's
    # identity, so deriving it from a name that may change would replace the targets.
    ("dispatcher.tf", "batch-dispatcher"): "the dispatch_batch rule's target_id",
    ("dispatcher.tf", "retrain-gate"): "the model_quality_failed rule's target_id",
    # The step scripts run inside the SageMaker containers, where only scripts/ is shipped
    # (README "Where things live"): they name their own folders under /opt/ml/processing,
    # which the pipelines map to the contract's output names (tests/test_step_contracts.py
    # runs each script against the paths its step declares), and their own names in errors.
    ("scripts/training_data_comparison.py", "training_data_comparison"): "the script's name",
    ("scripts/data_quality.py", "data_quality"): "the script's name (run_step)",
    ("scripts/explain.py", "explanations"): "its output folder",
    ("scripts/model_quality.py", "data_quality"): "its input folder",
    ("scripts/model_quality.py", "model_quality"): "its output folder and its own name",
    ("scripts/evaluate.py", "champion_version"): "evaluation.json's field (training_pipeline.py "
    "registers it under the metadata key of the same name)",
    ("scripts/evaluate.py", "champion_mse"): "evaluation.json's field, as champion_version",
    **{
        ("scripts/model_card.py", key): "the card's lineage field for the metadata key"
        for key in (
            "transform_uri",
            "git_commit",
            "training_data_version",
            "pipeline_execution_arn",
        )
    },
    # The data-version Lambda's code directory and module, code/training_data_version/.
    ("lambda.tf", "training_data_version"): "the data-version Lambda's code_dir and handler",
    ("local_runtime/lambdas.py", "training_data_version"): "the data-version Lambda's file",
    ("scripts/model_card.py", "champion_attributions"): "its input folder",
    ("scripts/training_data_comparison.py", "previous_version"): "its argument and report field",
    # The ModelCard step's input of the champion's attributions (the folder scripts/model_card.py
    # reads), and render_card's argument for them: named like the champion action's output.
    ("pipeline_scripts/card_step.py", "champion_attributions"): "ModelCard's input name",
    ("pipeline_scripts/model_card.py", "champion_attributions"): "render_card's argument",
    # The local RegisterModel step's own output (local_runtime), not the resolver's.
    ("local_runtime/jobs.py", "model_package_arn"): "the local RegisterModel step's output",
}

# Whole strings that may hold a contract value: JsonGet paths into evaluate.py's
# evaluation.json, whose field names are the script's own (it runs in the container).
ALLOWED_STRINGS = {
    "formatted.champion_version": "a JsonGet path into evaluation.json",
    "formatted.champion_mse": "a JsonGet path into evaluation.json",
}

# Contract values too common to scan for: each is also a name that is not the contract's
# (generic words, event input fields, the Lambdas' own keys), so a scan would flag unrelated
# code. The builders and handlers still take them from the contract, and
# tests/test_pipeline_lambdas.py checks that every action returns exactly its contract names.
UNSCANNED = {
    "message": "a generic word (log fields, error texts, the notifier's settings)",
    "data_version": "also the data-version Lambda's key (lambda_suffixes, lambda.tf, "
    "local_runtime/lambdas.py) and compare_fingerprint's input field",
    "labelled_batches": "also the action's name, scripts/labelled_batches.py's name and a "
    "metadata key of the training pipelines",
    "snapshot_uri": "also the labelled_batches action's input field (the parent prefix)",
}


def contract_values() -> set[str]:
    """Every name the contract gives (not the keys naming them, nor the rule targets'
    descriptions), less UNSCANNED."""
    values: set[str] = {contract.SNS_TOPIC_SUFFIX, *contract.INTEGRITY_OUTPUTS}
    for section in ("steps", "parameters", "outputs", "lambda_suffixes", "metadata_keys"):
        values.update(contract.CONTRACT[section].values())
    for actions in contract.LAMBDA_OUTPUTS.values():
        for outputs in actions.values():
            values.update(outputs.values())
    return values - set(UNSCANNED)


def source_files() -> list[Path]:
    files = []
    # os.walk prunes the excluded folders (.venv, node_modules, build: ~70 k files) unread.
    for folder, subfolders, names in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if name not in EXCLUDED_DIRS]
        for name in names:
            path = Path(folder) / name
            rule = path.suffix == ".json" and path.parent.name == "events"
            if rule or path.suffix in (".py", ".tf") or name in ("Makefile", ".gitlab-ci.yml"):
                files.append(path)
    return sorted(files)


def _python_strings(text: str):
    """(line, string) of every string constant that is not a docstring."""
    tree = ast.parse(text)
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            yield node.lineno, node.value


_TF_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _terraform_strings(text: str):
    """Each line's code without its comment: strings, and names used as map keys too."""
    for number, line in enumerate(text.splitlines(), 1):
        # Comments start with # or //; a '#' inside a string would end the line early (none do).
        code = "" if line.lstrip().startswith("//") else line.split("#", 1)[0]
        for part in [*(m.group(0)[1:-1] for m in _TF_STRING.finditer(code)), code]:
            yield number, part


def _rule_strings(text: str):
    """Strings of a rule file except its description, with the line they are on."""
    lines = text.splitlines()
    rule = json.loads(text)
    rule.pop("description", None)

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)
        elif isinstance(node, str):
            yield node

    for value in walk(rule):
        encoded = json.dumps(value)[1:-1]
        number = next((i for i, line in enumerate(lines, 1) if encoded in line), 0)
        yield number, value


def _plain_words(text: str):
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0]
        if code.strip():
            yield number, code


def strings_of(path: Path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return _python_strings(text)
    if path.suffix == ".tf":
        return _terraform_strings(text)
    if path.suffix == ".json":
        return _rule_strings(text)
    return _plain_words(text)


def spelled(value: str, text: str) -> bool:
    """value as a whole name in text: not part of a longer identifier or path word. Output
    names are plain words ("explanations"): they count as the whole string or a path segment."""
    if value in contract.OUTPUTS.values():
        return text == value or re.search(rf"(^|/){re.escape(value)}(/|$)", text) is not None
    # Not a command-line flag (--data-version) nor a script's file name (data_quality.py).
    pattern = rf"(?<![A-Za-z0-9_])(?<!--){re.escape(value)}(?![A-Za-z0-9_])(?!\.py)"
    return re.search(pattern, text) is not None


@functools.cache
def spellings() -> tuple[tuple[str, int, str, str], ...]:
    """(file, line, string, contract value) for every contract value spelled in a source file
    (scanned once for the tests below)."""
    values = sorted(contract_values(), key=len, reverse=True)
    found = []
    for path in source_files():
        relative = path.relative_to(REPO_ROOT).as_posix()
        for number, text in strings_of(path):
            found += [(relative, number, text, v) for v in values if v in text and spelled(v, text)]
    return tuple(found)


def test_every_shared_name_is_spelled_only_in_the_contract():
    problems = {
        f"{relative}:{number}: {value!r} (use the contract)"
        for relative, number, text, value in spellings()
        if (relative, value) not in ALLOWED and text not in ALLOWED_STRINGS
    }
    assert not problems, "\n".join(sorted(problems))


def test_the_allow_list_is_still_needed():
    """An exception that no longer matches anything is removed, so the list stays honest."""
    hits = {(relative, value) for relative, _, _, value in spellings()}
    strings = {text for _, _, text, _ in spellings()}
    assert set(ALLOWED) <= hits, sorted(set(ALLOWED) - hits)
    assert set(ALLOWED_STRINGS) <= strings, sorted(set(ALLOWED_STRINGS) - strings)


def test_unscanned_values_are_contract_values():
    """Each UNSCANNED entry names a value the contract still gives."""
    every = set()
    for actions in contract.LAMBDA_OUTPUTS.values():
        every.update(v for outputs in actions.values() for v in outputs.values())
    assert set(UNSCANNED) <= every, sorted(set(UNSCANNED) - every)


@pytest.mark.parametrize("text, found", [
    ('x = "ModelQualityCheck"', True),
    ('x = f"{a}/ModelQualityCheck/model_quality/statistics.json"', True),
    ('x = "ModelQualityCheckpoint"', False),
    ('"""The ModelQualityCheck docstring."""\n# ModelQualityCheck in a comment', False),
])  # fmt: skip
def test_the_scanner_finds_literals_not_prose(text, found):
    hits = [s for _, s in _python_strings(text) if spelled("ModelQualityCheck", s)]
    assert bool(hits) is found


def test_every_lambda_zip_carries_the_contract(tmp_path):
    """The Lambdas read the names from the contract.json in their zip."""
    import zipfile

    for name in lambda_package.FUNCTIONS:
        archive = lambda_package.package(lambda_package.CODE_DIR / name, tmp_path / f"{name}.zip")
        with zipfile.ZipFile(archive) as zipped:
            assert json.loads(zipped.read("contract.json")) == contract.CONTRACT, name


# The actions called without an "action" field (contract.json "about").
DEFAULT_ACTIONS = {"model_resolver": "resolve", "data_version": "data_version"}


def action_outputs(function: str, action: str) -> list[str]:
    """The outputs the contract gives a Lambda action; integrity_outputs are what
    record_integrity returns and what resolve returns after its own (contract.json "about")."""
    if (function, action) == ("data_version", "record_integrity"):
        return list(contract.INTEGRITY_OUTPUTS)
    own = list(contract.LAMBDA_OUTPUTS[function][action].values())
    return own + list(contract.INTEGRITY_OUTPUTS) * (action == "resolve")


@pytest.fixture(scope="module")
def definitions() -> dict:
    """The dev environment's rendered pipeline definitions (name -> JSON)."""
    from pipeline_scripts.config import load_config
    from pipeline_scripts.render import render

    config = load_config(REPO_ROOT / "env_files" / "dev_env.tfvars")
    return {p.name: json.loads(p.definition) for p in render(config).pipelines}


def test_every_lambda_step_declares_its_actions_contract_outputs_and_reads_only_them(definitions):
    """Each rendered Lambda step declares exactly the contract outputs of the action it calls
    (tests/test_pipeline_lambdas.py checks the handlers return exactly those), and every
    Steps.<step>.OutputParameters['name'] a pipeline reads is one its step declares."""
    by_suffix = {suffix: key for key, suffix in contract.LAMBDA_SUFFIXES.items()}
    reference = re.compile(r"Steps\.(\w+)\.OutputParameters\['(\w+)'\]")
    called = set()
    for name, definition in definitions.items():
        declared = {}
        for step in all_steps(definition):
            if step["Type"] != "Lambda":
                continue
            suffix = next(s for s in by_suffix if step["FunctionArn"].endswith(f"-{s}"))
            function = by_suffix[suffix]
            action = step["Arguments"].get("action", DEFAULT_ACTIONS[function])
            called.add((function, action))
            declared[step["Name"]] = [o["OutputName"] for o in step["OutputParameters"]]
            assert declared[step["Name"]] == action_outputs(function, action), (name, step["Name"])
        read = set(reference.findall(json.dumps(definition)))
        assert read, name  # every pipeline reads a Lambda output
        undeclared = {(s, o) for s, o in read if o not in declared.get(s, ())}
        assert not undeclared, (name, sorted(undeclared))
    # Every action the contract lists is one a pipeline calls.
    listed = {(f, a) for f, actions in contract.LAMBDA_OUTPUTS.items() for a in actions}
    assert listed | {("data_version", "record_integrity")} == called
