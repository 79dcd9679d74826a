"""The check's settings: Model Monitor's monitoring_config and ours, as one typed object.

Precedence in check mode: a feature's monitoringConfigOverrides > the command-line options >
the baseline's monitoring_config > the defaults below. In baseline mode the options set what
constraints.json records. Partial settings (a monitoring_config, an override, the options) are
dicts of validated values (read_settings) applied with Settings.updated.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from step_common import InputError

from .common import NUMBER, warn

ENABLED = ("Enabled", "Disabled")
CHOICES = {  # the allowed values of each text setting
    "evaluate_constraints": ENABLED,
    "emit_metrics": ENABLED,
    "perform_comparison": ENABLED,
    "comparison_method": ("Simple", "Robust"),
    "categorical_drift_method": ("LInfinity",),  # ChiSquared is not implemented here
}
KEY_ALIASES = {"comparion_method": "comparison_method"}  # the AWS docs' schema has this typo


@dataclass(frozen=True)
class Settings:
    """Every setting of the data-quality check, validated when made (a one-line InputError)."""

    evaluate_constraints: str = "Enabled"
    emit_metrics: str = "Enabled"
    # Any value of the wrong type / outside the baseline domain is a violation by default:
    # these are data bugs, not sampling noise. Raise the thresholds to tolerate some.
    datatype_check_threshold: float = 0.0
    domain_content_threshold: float = 0.0
    perform_comparison: str = "Enabled"
    comparison_threshold: float = 0.1
    comparison_method: str = "Robust"
    categorical_comparison_threshold: float = 0.1
    categorical_drift_method: str = "LInfinity"
    completeness_tolerance: float = 0.0  # ours, not in Model Monitor's monitoring_config
    # Ours too (Robust comparison, see drift_tests.py); not written to constraints.json.
    drift_alpha: float = 0.05  # chance that a clean batch raises any drift alarm
    drift_min_shift_sd: float = 0.1  # smaller mean shifts (baseline sd) alarm only by distance
    drift_min_rows: int = 50  # fewer rows: drift verdict "inconclusive"

    def __post_init__(self) -> None:
        for name in SETTING_NAMES:  # frozen: the checked (and int -> float) value goes in here
            value = validate_setting(name, getattr(self, name), "data_quality settings")
            object.__setattr__(self, name, value)

    def updated(self, changes: dict) -> Settings:
        """A copy with `changes` (setting name -> value, e.g. from read_settings) applied."""
        return dataclasses.replace(self, **changes) if changes else self


SETTING_NAMES = tuple(field.name for field in dataclasses.fields(Settings))


def validate_setting(key: str, value: object, where: str) -> object:
    """`value` as setting `key` takes it, or an InputError naming `where` and the key."""
    if key == "drift_alpha":
        if not isinstance(value, NUMBER) or isinstance(value, bool) or not 0 < value < 1:
            raise InputError(f"{where}: drift_alpha must be a number in (0, 1), got {value!r}")
        return float(value)
    if key == "drift_min_rows":
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{where}: drift_min_rows must be an integer >= 1, got {value!r}")
        return value
    if key in CHOICES:
        if value not in CHOICES[key]:
            raise InputError(f"{where}: {key} must be one of {list(CHOICES[key])}, got {value!r}")
        return value
    # Every other setting is a threshold or tolerance: a number >= 0.
    number_ok = isinstance(value, NUMBER) and not isinstance(value, bool)
    if not number_ok or not math.isfinite(value) or value < 0:
        raise InputError(f"{where}: {key} must be a number >= 0, got {value!r}")
    return float(value)


def read_settings(config: object, where: str) -> dict:
    """Validated settings from a monitoring_config (or a per-feature override), flat or nested;
    unknown keys are ignored with a warning."""
    if not isinstance(config, dict):
        raise InputError(f"{where} must be a JSON object, got {type(config).__name__}")
    flat = dict(config)
    nested = flat.pop("distribution_constraints", {})
    if not isinstance(nested, dict):
        raise InputError(f"{where}.distribution_constraints must be a JSON object")
    flat.update(nested)
    out = {}
    for key, value in flat.items():
        key = KEY_ALIASES.get(key, key)
        if key in SETTING_NAMES:
            out[key] = validate_setting(key, value, where)
        else:
            warn(f"{where}: ignoring unknown setting {key!r}")
    return out
