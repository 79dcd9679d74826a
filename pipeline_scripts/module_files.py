"""The one loader for Python files that are not modules of a package here: Lambda handlers and
the files beside them (code/<function>/), and the step scripts (scripts/), each imported by
path the way its runtime runs it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from pipeline_scripts.lambda_package import CODE_DIR, COMMON_DIR


def load_module(path: Path | str, name: str | None = None, *, beside: bool = True) -> ModuleType:
    """Runs the file at `path` as a new module named `name` (default: the file's stem) and
    returns it; each call gives a fresh module.

    The module is in sys.modules under `name` from the moment it runs (a dataclass looks its
    module up there while it is built). With `beside` (the default), the file's folder is first
    on sys.path while it runs, as where it really runs: Lambda puts the function's folder on
    sys.path, and `python script.py` in a processing container puts the script's folder
    there. So `import step_common` in a step script, or a handler's import of a module beside
    it, finds the same file here. A handler of code/<function>/ also finds code/common/'s
    modules, which its zip holds beside it (lambda_package.py)."""
    path = Path(path).resolve()
    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python file that can be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folders = [path.parent, COMMON_DIR] if path.parent.parent == CODE_DIR else [path.parent]
    added = [str(f) for f in folders if beside and str(f) not in sys.path]
    sys.path[:0] = added
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        for folder in added:
            sys.path.remove(folder)
    return module
