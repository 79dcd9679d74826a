"""checkov on several env files in one process: prints {env file: report} as one JSON object.

Run with checkov's own Python (.venv-checkov/bin/python, tests/test_terraform.py), as
`python tests/checkov_runner.py <directory> <env file>... -- <checkov options>`. Each env file
gets a `checkov --directory <directory> --var-file <env file> <options>` run, the same as the
command line's (checkov/main.py: main() runs Checkov(argv).run()), but the start-up (imports,
the check registries: ~5 s of CPU) is paid once: the three shipped env files take ~7 s of CPU
here, ~25 s as three checkov commands (measured on 2026-12-02, checkov 3.3.30). The JSONPath
parser's table is built once (_yacc_table_built_once).
"""

import contextlib
import copy
import io
import json
import sys
import threading

import ply.yacc
from checkov.main import Checkov
from checkov.terraform.runner import Runner as TerraformRunner

_build_parser = ply.yacc.yacc
_parsers: dict = {}
_parsers_lock = threading.Lock()


def _yacc_table_built_once(*, module, start, **options):
    """ply.yacc.yacc with the LR table built once per grammar. checkov's JSONPath library
    (bc_jsonpath_ng/parser.py, "we regenerate the parse table every time") calls yacc() on
    every parse: ~3 of the ~10 CPU-s here. The table depends only on the grammar (the parser's
    class) and the start symbol; each call still gets a parser of its own, bound to its module
    as yacc() binds it (ply/yacc.py: bind_callables, LRParser)."""
    key = (type(module), start)
    with _parsers_lock:
        if key not in _parsers:
            _parsers[key] = _build_parser(module=module, start=start, **options)
    parser = copy.copy(_parsers[key])
    parser.productions = [copy.copy(production) for production in parser.productions]
    for production in parser.productions:
        if production.func:
            production.callable = getattr(module, production.func)
    parser.errorfunc = getattr(module, "p_error", None)
    return parser


ply.yacc.yacc = _yacc_table_built_once

directory, *rest = sys.argv[1:]
separator = rest.index("--")
env_files, options = rest[:separator], rest[separator + 1 :]
reports = {}
for env_file in env_files:
    checkov = Checkov(["--directory", directory, "--var-file", env_file, *options])
    # checkov.main.DEFAULT_RUNNERS are made once, at import, and the Terraform runner keeps what
    # it parsed (checkov/terraform/runner.py: run() parses only while self.definitions is None):
    # without a new one, every env file after the first gets the first one's definitions.
    checkov.runners = [
        TerraformRunner() if isinstance(r, TerraformRunner) else r for r in checkov.runners
    ]
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exit_code = checkov.run()
    try:
        reports[env_file] = json.loads(output.getvalue())
    except json.JSONDecodeError:
        sys.exit(
            f"checkov gave no JSON report for {env_file} (exit {exit_code}):\n{output.getvalue()}"
        )
print(json.dumps(reports))
