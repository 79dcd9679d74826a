"""The shared names (contract.json) as every Lambda function here reads them.

In a function's zip this file and contract.json sit at the root, beside the handler
(pipeline_scripts/lambda_package.py puts them there); in a checkout this file is in code/common/
and contract.json at the repository root (pipeline_scripts/module_files.py puts code/common/ on
sys.path while it loads a handler, as the zip's root is). Standard library only.
"""

from __future__ import annotations

import json
from pathlib import Path


def _contract_file() -> Path:
    here = Path(__file__).resolve().parent
    for path in (here / "contract.json", here.parents[1] / "contract.json"):
        if path.is_file():
            return path
    raise FileNotFoundError(f"{here}: contract.json is missing (build the zip with make package)")


CONTRACT: dict = json.loads(_contract_file().read_text(encoding="utf-8"))
