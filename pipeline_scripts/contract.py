"""The names other components rely on, read from their one home, contract.json.

Step names the event rules and the notifier match, pipeline parameters the rules and the
batch dispatcher pass, the helper Lambdas' name suffixes and output names, model-registry
metadata keys that other components read, output names in S3 paths, the SNS topic suffix and
the rule targets.
Terraform reads the same file (contract.tf); each Lambda zip carries a copy
(pipeline_scripts/lambda_package.py). tests/test_contract.py fails when a value is spelled
anywhere else.

Standard library only, like the Lambdas that read the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

CONTRACT_FILE = Path(__file__).resolve().parents[1] / "contract.json"
CONTRACT: dict = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))

STEPS: dict[str, str] = CONTRACT["steps"]
PARAMETERS: dict[str, str] = CONTRACT["parameters"]
MODES: dict[str, str] = CONTRACT["modes"]
OUTPUTS: dict[str, str] = CONTRACT["outputs"]
LAMBDA_SUFFIXES: dict[str, str] = CONTRACT["lambda_suffixes"]
METADATA_KEYS: dict[str, str] = CONTRACT["metadata_keys"]
INTEGRITY_OUTPUTS: tuple[str, ...] = tuple(CONTRACT["integrity_outputs"])
RULE_TARGETS: tuple[str, ...] = tuple(CONTRACT["rule_targets"])
SNS_TOPIC_SUFFIX: str = CONTRACT["sns_topic_suffix"]

# The helper Lambdas' outputs (role -> name, in the order the steps declare them), per action.
LAMBDA_OUTPUTS: dict[str, dict[str, dict[str, str]]] = CONTRACT["lambda_outputs"]
RESOLVE_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["model_resolver"]["resolve"]
COMPARE_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["model_resolver"]["compare_fingerprint"]
PREVIOUS_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["model_resolver"]["previous_training_data"]
CHAMPION_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["model_resolver"]["champion"]
DATA_VERSION_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["data_version"]["data_version"]
VERIFY_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["data_version"]["verify_integrity"]
LABELLED_OUTPUTS: dict[str, str] = LAMBDA_OUTPUTS["data_version"]["labelled_batches"]
