"""scripts/step_common.py's data conventions: one number syntax and one list of missing-value
tokens, read the same by Python's re, pandas and Arrow, and no step script with its own copy."""

import ast
import importlib.util
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tests.conftest import SCRIPTS

spec = importlib.util.spec_from_file_location("step_common", SCRIPTS / "step_common.py")
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)

NUMBERS = ["0", "-0", "+3", "42", "5.", ".5", "1.5e3", "1E-2", "1.e5", "007"]
NOT_NUMBERS = ["", ".", "e5", "1e", "1.5e", "inf", "nan", "NaN", "1,5", "1_000", "0x1A", "1d5"]
NOT_NUMBERS += ["١٢", "１２", "5 kg", "--1", "1e5.5", "True"]  # Arabic-Indic, full-width digits


def test_number_syntax_is_the_same_in_re_pandas_and_arrow():
    """preprocess (pandas), data_quality (Arrow) and model_quality (re) must agree on which
    cells are numbers: a digit Python's \\d accepts and Arrow's does not would split them."""
    cells = NUMBERS + NOT_NUMBERS
    by_re = [common.is_number(cell) for cell in cells]
    by_pandas = pd.Series(cells).str.match(common.NUMBER_PATTERN).tolist()
    by_arrow = pc.match_substring_regex(pa.array(cells), common.NUMBER_PATTERN).to_pylist()
    assert by_re == by_pandas == by_arrow == [True] * len(NUMBERS) + [False] * len(NOT_NUMBERS)
    assert common.is_number("1e999") is False  # matches, but overflows: not a usable number
    integers = pc.match_substring_regex(pa.array(cells), common.INTEGER_PATTERN).to_pylist()
    assert [c for c, whole in zip(cells, integers, strict=True) if whole] == [
        "0", "-0", "+3", "42", "007"
    ]  # fmt: skip


def test_parse_numbers_reads_the_syntax_and_marks_everything_else():
    values = common.parse_numbers([" 2.5 ", "1e3", "ten", "", "١٢", "inf", "-4"])
    assert values[[0, 1, 6]].tolist() == [2.5, 1000.0, -4.0]
    assert np.isnan(values[[2, 3, 4, 5]]).all()
    assert common.parse_numbers([]).shape == (0,)


def test_missing_tokens_are_stripped_text_without_duplicates():
    tokens = common.MISSING_TOKENS
    assert len(set(tokens)) == len(tokens) and all(t == t.strip() for t in tokens)
    assert {"", "NA", "NaN", "null", "None"} <= set(tokens)
    assert not any(common.is_number(t) for t in tokens) and math.isnan(float("nan"))


def test_no_step_script_keeps_its_own_copy_of_the_conventions():
    """Only step_common spells the missing-value tokens and the number pattern; the others
    import them (a private copy is how preprocess and data_quality would drift apart)."""
    marks = ("#N/A", "[eE]", r"\d+")  # a token only the missing list has; regex pieces
    copies = []
    for path in sorted(SCRIPTS.rglob("*.py")):
        if path.name == "step_common.py" or "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and any(mark in text for mark in marks):
                copies.append(f"{path.relative_to(SCRIPTS)}:{node.lineno}")
    assert copies == []


def test_every_step_script_ends_through_exit_step():
    """A step's process ends through exit_step, not sys.exit: Arrow's thread pool can abort
    the interpreter's own exit (exit status -6 after the failure was reported)."""
    ends = {}
    for path in sorted(SCRIPTS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                ends[path.name] = ast.unparse(node.body[-1])
    assert len(ends) >= 9, ends
    assert {name for name, end in ends.items() if end != "exit_step(main())"} == set()


def test_exit_step_exits_with_the_status_and_flushes_output(tmp_path):
    """Piped stdout is block-buffered and os._exit skips the interpreter's flush."""
    import subprocess
    import sys

    probe = "import step_common\nprint('written')\nstep_common.exit_step(3)\nprint('not reached')\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=SCRIPTS,
        env={"PATH": "", "PYTHONPATH": str(SCRIPTS)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (3, "written\n"), result.stderr
