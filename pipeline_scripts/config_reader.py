"""The reader machinery of the configuration: files to typed dataclasses, and one-line errors.

Reads tfvars (python-hcl2, refusing what Terraform refuses), YAML (refusing duplicate keys) and
JSON, builds the schema's dataclasses from them (exact keys, right types, every field's
checks) and formats every problem as ONE line naming the file, the field and what was
expected: ``<file>: variable '<name>': expected ..., got ...``. The schema itself lives in
env_schema.py and settings_schema.py; config.py puts the two together.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
import typing
from collections.abc import Hashable
from pathlib import Path
from typing import Any, Literal

import hcl2
import lark
import yaml


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or holds a value that cannot work."""


def terraform_jsonencode(value: Any) -> str:
    """Terraform's jsonencode(): compact, keys sorted, <, >, & and U+2028/9 escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&\u2028\u2029":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def plain(value: Any) -> Any:
    """Tuples and dataclasses as the lists and dicts a parser returns."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return value


# --------------------------------------------------------------------------- generic reader


class Source:
    """One file being read: formats every error as `<file>: <field>: expected ..., got ...`."""

    def __init__(self, file: Path | str, *, tfvars: bool) -> None:
        self.file = str(file)
        self.tfvars = tfvars

    def error(self, key: str, expected: str, got: str) -> ConfigError:
        field = f"variable '{key}'" if self.tfvars else f"'{key or '(top level)'}'"
        return ConfigError(f"{self.file}: {field}: expected {expected}, got {got}")

    def bad(self, key: str, expected: str, value: Any) -> ConfigError:
        return self.error(key, expected, show(value))


def show(value: Any) -> str:
    # Booleans and null as written in tfvars and YAML, so true and "true" look different.
    text = json.dumps(value) if value is None or isinstance(value, bool) else repr(plain(value))
    return text if len(text) <= 160 else text[:157] + "..."


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _describe(tp: Any, value: Any = None) -> str:
    """What a value of annotation `tp` looks like, with a hint for the usual mistakes."""
    unquote = " (without quotes)" if isinstance(value, str) else ""
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false" + unquote
    if tp is int:
        return "an integer" + unquote
    if tp is float:
        return "a number" + unquote
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        # YAML 1.1 reads bare Off/On/Yes/No as booleans.
        hint = " (quote it in YAML)" if isinstance(value, bool) else ""
        return "one of " + ", ".join(map(repr, args)) + hint
    if origin is tuple:
        if args[0] is str:
            return "a list of strings"
        return "a list of objects with keys " + _keys(args[0])
    if origin is dict:
        return f"a mapping of names to {_describe(args[1])}"
    return f"an object with keys {_keys(tp)}"


def _keys(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def build(cls: type, data: Any, key: str, src: Source) -> Any:
    """Instantiate dataclass `cls` from `data`: exact keys, right types, every field's checks."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if not isinstance(data, dict):
        raise src.bad(key, _describe(cls), data)
    for name in data:
        if name not in fields:
            close = difflib.get_close_matches(str(name), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            if src.tfvars and not key:
                expected = "a variable declared in variables.tf"
            else:
                expected = "one of the keys " + ", ".join(fields)
            raise src.error(_join(key, name), expected + hint, f"unknown name {str(name)!r}")
    hints = typing.get_type_hints(cls)
    missing = [
        src.error(
            _join(key, name),
            (f.metadata.get("doc", "").rstrip(".") or _describe(hints[name]))
            + " (required, it has no default)",
            "nothing",
        )
        for name, f in fields.items()
        if name not in data and f.default is dataclasses.MISSING
    ]
    if missing:  # all of them at once, one line each: an empty file is fixed in one go
        raise ConfigError("\n".join(str(error) for error in missing))
    values = {}
    for name, f in fields.items():
        field_key = _join(key, name)
        if name not in data:
            continue
        value = _convert(hints[name], data[name], field_key, src)
        for i, item in enumerate(value if f.metadata.get("items") else ()):
            if (expected := f.metadata["items"](item)) is not None:
                raise src.bad(f"{field_key}[{i}]", expected, item)
        if f.metadata.get("check") and (expected := f.metadata["check"](value)) is not None:
            raise src.bad(field_key, expected, value)
        values[name] = value
    return cls(**values)


def _convert(tp: Any, value: Any, key: str, src: Source) -> Any:
    """Type-check `value` against annotation `tp`, turning lists into tuples."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key, src)
    if origin is tuple:
        if not isinstance(value, list):
            raise src.bad(key, _describe(tp), value)
        return tuple(_convert(args[0], v, f"{key}[{i}]", src) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict) or not value:
            raise src.bad(key, "a non-empty " + _describe(tp).removeprefix("a "), value)
        return {k: _convert(args[1], v, _join(key, k), src) for k, v in value.items()}
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise src.bad(key, _describe(tp, value), value)
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    ok = {
        str: isinstance(value, str),
        bool: isinstance(value, bool),
        int: is_number and isinstance(value, int),
        float: is_number and math.isfinite(value),
    }[tp]
    if not ok:
        raise src.bad(key, _describe(tp, value), value)
    return value


def read_text(path: Path | str) -> str:
    try:
        # utf-8-sig: a leading byte-order mark (Windows editors write one) is not content;
        # Terraform reads such a tfvars file too.
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{path}: expected an existing file, got no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: expected a readable UTF-8 text file, got {exc}") from None


# --------------------------------------------------------------------------- tfvars


_HCL_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True,  # values, not source text: "abc" rather than '"abc"'
    with_comments=False,
    explicit_blocks=False,
    # python-hcl2 turns a heredoc into an escaped string but keeps the escapes (\") and drops
    # the final newline, so heredocs stay source text for _evaluate_heredocs().
    preserve_heredocs=True,
    preserve_scientific_notation=False,  # 1e3 becomes 1000.0, not the string "${1e3}"
)


def parse_tfvars(path: Path | str) -> dict[str, Any]:
    """The assignments of a .tfvars file as plain Python values (lists, dicts, str, ...)."""
    return parse_hcl(read_text(path), path)


def parse_hcl(text: str, path: Path | str) -> dict[str, Any]:
    """parse_tfvars() of `text`; errors name it as `path`."""
    try:
        tree = hcl2.parses_to_tree(text)
    except lark.exceptions.UnexpectedInput as exc:
        token = getattr(exc, "token", None) or getattr(exc, "char", None) or ""
        got = repr(str(token).strip()) if str(token).strip() else "end of line or file"
        lines = text.splitlines()
        near = lines[exc.line - 1].strip() if 0 < exc.line <= len(lines) else ""
        raise ConfigError(
            f"{path}: line {exc.line}, column {exc.column}: expected valid HCL "
            f"('name = value' assignments), got {got} in {near!r}"
        ) from None
    _check_assignments(tree, path)
    try:
        values = hcl2.serialize(hcl2.transform(tree), serialization_options=_HCL_OPTIONS)
    except (lark.exceptions.LarkError, RuntimeError) as exc:
        raise ConfigError(f"{path}: expected valid HCL, got {exc}".replace("\n", " ")) from None
    return _evaluate_heredocs(values)


_HEREDOC = re.compile(r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n(.*\n)?[ \t]*\2", re.DOTALL)


def _evaluate_heredocs(value: Any) -> Any:
    """Terraform's value of every heredoc: its lines, each ending in a newline, and for <<-
    without their common indentation."""
    if isinstance(value, dict):
        return {k: _evaluate_heredocs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_evaluate_heredocs(v) for v in value]
    match = _HEREDOC.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return value
    lines = (match.group(3) or "").splitlines(keepends=True)
    indents = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip()]
    trim = min(indents, default=0) if match.group(1) else 0
    return "".join(line[trim:] for line in lines)


# Parse-tree nodes of literal values. Anything else (a bare word, reference, function call,
# operator, interpolation) is an expression: Terraform refuses those in tfvars, and
# python-hcl2 would return a bare word such as eu-west-1 as if it were the string "eu-west-1".
_LITERAL_NODES = {
    "expr_term",
    "string",
    "string_part",
    "int_lit",
    "float_lit",
    "literal_value",
    "tuple",
    "object",
    "object_elem",
    "object_elem_key",
    "heredoc_template",
    "heredoc_template_trim",
    "new_line_or_comment",
}


def _negative_number(node: lark.Tree) -> bool:
    """-1 or -1.5: Terraform's unary minus on a number literal, a number in tfvars too."""
    operand = node.children[-1]
    return (
        node.data == "unary_op"
        and str(node.children[0]) == "-"
        and isinstance(operand, lark.Tree)
        and operand.data == "expr_term"
        and len(operand.children) == 1
        and isinstance(operand.children[0], lark.Tree)
        and operand.children[0].data in ("int_lit", "float_lit")
    )


def _non_literal(node: Any, in_key: bool = False) -> lark.Tree | None:
    """The first part of a value that is not a literal; object keys may be bare names."""
    if not isinstance(node, lark.Tree) or (in_key and node.data == "identifier"):
        return None
    if _negative_number(node):
        return None
    if node.data not in _LITERAL_NODES:
        return node
    in_key = in_key or node.data == "object_elem_key"
    return next(filter(None, (_non_literal(child, in_key) for child in node.children)), None)


def _check_assignments(tree: lark.Tree, path: Path | str) -> None:
    """Only top-level `name = <literal>` lines, each name once: python-hcl2 silently keeps the
    last of two assignments and accepts two on one line, where Terraform rejects both."""
    seen: dict[str, int] = {}
    last_line = 0
    for node in tree.children[0].children:
        if not isinstance(node, lark.Tree) or node.data not in ("attribute", "block"):
            continue
        token = node.children[0].children[0]
        name, line = str(token), token.line
        where = f"{path}: line {line}: variable '{name}'"
        if node.data == "block":
            raise ConfigError(f"{where}: expected 'name = value', got a block 'name {{ ... }}'")
        if name in seen:
            first = seen[name]
            raise ConfigError(
                f"{where}: expected one assignment, got a second (the first is on line {first})"
            )
        if line == last_line:
            raise ConfigError(f"{where}: expected one assignment per line, got two on this line")
        seen[name], last_line = line, line
        if (expression := _non_literal(node.children[-1])) is not None:
            text = "".join(expression.scan_values(lambda v: isinstance(v, lark.Token)))
            expected = "a literal value (quote strings; tfvars cannot hold expressions)"
            raise ConfigError(f"{where}: expected {expected}, got the expression {text}")


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML would silently overwrite."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path | str) -> Any:
    """The YAML document in `path`, duplicate keys refused."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            f"{path}: line {mark.line + 1}, column {mark.column + 1}: expected valid YAML, "
            f"got {exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: expected valid YAML, got {exc}".replace("\n", " ")) from None


# --------------------------------------------------------------------------- tags.json


def load_tags(path: Path | str) -> dict[str, str]:
    """Read and validate tags.json: a flat JSON object of string keys to string values."""
    text = read_text(path)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if dup := next((k for i, k in enumerate(keys) if k in keys[:i]), None):
            raise ConfigError(f"{path}: tag {dup!r}: expected each key once, got it twice")
        return dict(pairs)

    try:
        tags = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: line {exc.lineno}, column {exc.colno}: expected valid JSON, got {exc.msg}"
        ) from None
    if not isinstance(tags, dict):
        raise ConfigError(f"{path}: expected a JSON object of tags, got {show(tags)}")
    if len(tags) > 50:
        raise ConfigError(f"{path}: expected at most 50 tags (AWS's limit), got {len(tags)}")

    def allowed(text: str) -> bool:
        return all(ch.isalnum() or ch in " _.:/=+-@" for ch in text)

    for key, value in tags.items():
        where = f"{path}: tag {key!r}"
        if not 1 <= len(key) <= 128 or not allowed(key):
            expected = "a key of 1-128 letters, digits, spaces or _.:/=+-@"
            raise ConfigError(f"{where}: expected {expected}, got {key!r}")
        if key.lower().startswith("aws:"):
            expected = "a key not starting with 'aws:' (reserved by AWS)"
            raise ConfigError(f"{where}: expected {expected}, got {key!r}")
        if not isinstance(value, str) or len(value) > 256 or not allowed(value):
            expected = "a string value of 0-256 letters, digits, spaces or _.:/=+-@"
            raise ConfigError(f"{where}: expected {expected}, got {show(value)}")
    return tags
