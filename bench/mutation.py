"""A small mutation check: would the tests notice a plausible bug in a core decision?

    .venv/bin/python bench/mutation.py [--only NAME ...] [--record] [--keep]

Each mutant below is one exact snippet of one file and the bug that replaces it. For each, a
copy of the working tree gets the change and the mutant's tests run there (pytest -x, fast
tests only unless the mutant says otherwise): a failing test kills the mutant; passing tests
mean it survived, i.e. nothing pins that decision. The unchanged copy runs the same tests
first, so a kill is the mutation's doing, not an already red suite.

A mutant's `files` are globs: the snippet must occur exactly once in exactly one matching
file, else the mutant is reported as "snippet not found" (code moved or rewritten: update the
table) or "snippet ambiguous". Exit status: 0 when every mutant was killed, 1 when one
survived, 2 when a snippet was not found/ambiguous or the unchanged copy failed.
`--record` writes the table into bench/README.md (section "Mutation check").
Not part of `make test`: it runs the selected tests once per mutant (a few minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "bench" / "README.md"
# Not copied: big, generated or shared installs (linked into the copy instead, if present).
LINKED = (".venv", ".venv-checkov", "node_modules")
SKIPPED = {".git", "build", "__pycache__", ".pytest_cache", ".ruff_cache", *LINKED}


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    files: tuple[str, ...]  # globs relative to the repository
    original: str
    replacement: str
    tests: tuple[str, ...]  # pytest arguments: files or node ids
    select: str = ""  # pytest -k expression: the tests about this decision (keeps it quick)
    markers: str = "not e2e"


MUTANTS = (
    Mutant(
        "threshold: mse > threshold becomes >=",
        ("scripts/model_quality.py", "scripts/**/model_quality*.py"),
        'failed = value["mse"] > threshold',
        'failed = value["mse"] >= threshold',
        ("tests/test_step_scripts.py", "tests/test_labels.py"),
        "model_quality or threshold or labels",
    ),
    Mutant(
        "drift distance: Kolmogorov-Smirnov one-sided (batch CDF above baseline only)",
        ("scripts/dq/*.py",),
        "return float(np.max(np.abs(cdf(*a) - cdf(*b))))",
        "return float(np.max(cdf(*a) - cdf(*b)))",
        ("tests/test_data_quality.py", "tests/test_drift_tests.py"),
        "cdf or drift or shift or ks or symmetr",
    ),
    Mutant(
        "transform: missing numbers filled with 0, not the training median",
        ("scripts/preprocess.py",),
        'values = np.where(np.isnan(values), stats["fill"], values)',
        "values = np.where(np.isnan(values), 0.0, values)",
        ("tests/test_transform.py", "tests/test_step_scripts.py"),
        "apply or transform or fill or missing or preprocess",
    ),
    Mutant(
        "model resolver: oldest version first instead of newest",
        ("code/model_resolver/*.py",),
        'SortBy="CreationTime", SortOrder="Descending"',
        'SortBy="CreationTime", SortOrder="Ascending"',
        ("tests/test_pipeline_lambdas.py", "tests/test_rollback.py"),
        "resolve or approved or newest or rollback",
    ),
    Mutant(
        "rule status filter: retraining also on a passing model-quality step",
        ("events/model_quality_failed.json",),
        '"currentStepStatus": [\n        "Failed"\n      ]',
        '"currentStepStatus": [\n        "Failed",\n        "Succeeded"\n      ]',
        ("tests/test_event_rules.py",),
    ),
    Mutant(
        "rule status filter: the approval e-mail also for a rejected version",
        ("events/model_package_approved.json",),
        '"ModelApprovalStatus": [\n        "Approved"\n      ]',
        '"ModelApprovalStatus": [\n        "Approved",\n        "Rejected"\n      ]',
        ("tests/test_event_rules.py",),
    ),
    Mutant(
        "notifier status filter: an e-mail for every succeeded step by default",
        ("code/notifier/*.py",),
        '"step": ("Failed",)}',
        '"step": ("Failed", "Succeeded")}',
        ("tests/test_notifier.py",),
    ),
)


def copy_repo(target: Path) -> Path:
    """The working tree (uncommitted changes included) at target/repo, with ../shared as the
    repository has it, so tests that read ../shared behave as in the repository."""
    repo = target / "repo"
    shutil.copytree(REPO, repo, ignore=lambda _, names: [n for n in names if n in SKIPPED])
    for name in LINKED:
        if (REPO / name).exists():
            (repo / name).symlink_to((REPO / name).resolve())
    if (REPO.parent / "shared").is_dir():
        (target / "shared").symlink_to((REPO.parent / "shared").resolve())
    return repo


def locate(repo: Path, mutant: Mutant) -> tuple[Path | None, str]:
    """(file, "") where the snippet occurs exactly once in exactly one file, else (None, why)."""
    matches = {}
    for pattern in mutant.files:
        for path in sorted(repo.glob(pattern)):
            count = path.read_text().count(mutant.original) if path.is_file() else 0
            if count:
                matches[path] = count
    if not matches:
        return None, f"snippet not found in {', '.join(mutant.files)}"
    if len(matches) > 1 or next(iter(matches.values())) > 1:
        where = ", ".join(f"{p.relative_to(repo)} ({n}x)" for p, n in matches.items())
        return None, f"snippet ambiguous: {where}"
    return next(iter(matches)), ""


def run_tests(repo: Path, mutant: Mutant) -> tuple[int, float, str]:
    """pytest exit code, seconds, and its last output line, for the mutant's tests in repo."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-m", mutant.markers, *(["-k", mutant.select] if mutant.select else [])]
    command += mutant.tests
    start = time.monotonic()
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=1800)
    lines = (result.stdout.strip() or result.stderr.strip() or "(no output)").splitlines()
    return result.returncode, time.monotonic() - start, lines[-1]


def check(mutant: Mutant, workdir: Path, baselines: dict) -> tuple[str, str]:
    """(outcome, detail): killed, survived, snippet not found/ambiguous, or error.
    baselines caches the unchanged copy's result per test selection."""
    repo = copy_repo(workdir)
    path, why = locate(repo, mutant)
    if path is None:
        return why.split(":")[0], why
    where = path.relative_to(repo).as_posix()
    selection = (mutant.tests, mutant.select, mutant.markers)
    if selection not in baselines:
        baselines[selection] = run_tests(repo, mutant)
    code, _, last = baselines[selection]
    if code != 0:
        return "error", f"{where}: the unchanged copy fails these tests ({last})"
    path.write_text(path.read_text().replace(mutant.original, mutant.replacement))
    code, seconds, last = run_tests(repo, mutant)
    outcome = {0: "survived", 1: "killed"}.get(code, "error")
    return outcome, f"{where}; {seconds:.0f} s: {last}"


def table(results: list[tuple[Mutant, str, str]]) -> str:
    lines = ["| mutant | tests run | outcome | detail |", "| --- | --- | --- | --- |"]
    for mutant, outcome, detail in results:
        tests = ", ".join(f"`{t}`" for t in mutant.tests)
        tests += f" `-k '{mutant.select}'`" if mutant.select else ""
        lines.append(f"| {mutant.name} | {tests} | **{outcome}** | {detail} |")
    return "\n".join(lines) + "\n"


def record(section: str) -> None:
    text = README.read_text()
    start, end = "<!-- mutation:start -->", "<!-- mutation:end -->"
    before, rest = text.split(start)
    _, after = rest.split(end)
    README.write_text(f"{before}{start}\n{section}{end}{after}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", default=[], help="mutants whose name contains this")
    parser.add_argument("--record", action="store_true", help="write the table to bench/README")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copies")
    options = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not options.only or any(o in m.name for o in options.only)]
    results, baselines = [], {}
    for mutant in chosen:
        workdir = Path(tempfile.mkdtemp(prefix="mutant-"))
        try:
            outcome, detail = check(mutant, workdir, baselines)
        finally:
            if not options.keep:
                shutil.rmtree(workdir, ignore_errors=True)
        print(f"{outcome}: {mutant.name} ({detail})", flush=True)
        results.append((mutant, outcome, detail))
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    section = f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on commit {commit}:\n\n"
    section += table(results)
    print(section)
    if options.record:
        record(section)
    outcomes = {outcome for _, outcome, _ in results}
    if outcomes - {"killed", "survived"}:
        return 2
    return 1 if "survived" in outcomes else 0


if __name__ == "__main__":
    sys.exit(main())
