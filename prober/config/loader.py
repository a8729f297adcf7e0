"""Load a configuration from a TOML file or a directory of ``*.toml`` files.

Steps: parse each file (``tomllib``), expand ``${VAR}`` / ``${VAR:-default}`` in string
values, merge (``[[sites]]`` are concatenated in file-name order; any other section may
be written in one file only), validate into the typed :class:`~prober.config.model.Config`.
Every problem is reported at once, each naming the file and the line (TOML syntax, text
that is not UTF-8) or the field path.

This module only reads: compiling the journey plans (templates, signers, what needs the
whole tree) and the rules on what the daemon will schedule are :mod:`prober.loading`'s,
on top of it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prober.config.errors import ConfigError
from prober.config.model import STEP_OR_INCLUDE_TAGS, Config
from prober.config.unions import TaggedUnion, union_of_error, union_of_tag

_ENV_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass(slots=True, frozen=True)
class ReadConfig:
    """A validated configuration and where each part of it came from (for messages)."""

    config: Config
    files: tuple[Path, ...]
    site_origin: dict[int, str]
    """Index of a site in ``config.sites`` → the file it was written in."""
    daemon_file: Path
    """The file holding ``[daemon]`` (the first file when there is none)."""


def config_files(path: str | Path) -> list[Path]:
    """The file itself, or the directory's ``*.toml`` files in name order."""
    root = Path(path)
    if root.is_dir():
        files = sorted(p for p in root.glob("*.toml") if p.is_file())
        if not files:
            raise ConfigError([f"{root}: no *.toml files in this directory"])
        return files
    if not root.exists():
        raise ConfigError([f"{root}: no such file or directory"])
    return [root]


def read(path: str | Path, environ: Mapping[str, str] | None = None) -> ReadConfig:
    """Parse, expand, merge and validate; raises :class:`ConfigError` with every problem."""
    env = os.environ if environ is None else environ
    files = config_files(path)
    problems: list[str] = []
    merged: dict[str, Any] = {}
    owners: dict[str, Path] = {}
    site_origin: dict[int, str] = {}
    for file in files:
        data = _parse(file, problems)
        if data is None:
            continue
        data = _expand(data, env, f"{file}: ", problems)
        for key, value in data.items():
            if key == "sites" and isinstance(value, list):
                for site in value:
                    site_origin[len(merged.setdefault("sites", []))] = str(file)
                    merged["sites"].append(site)
            elif key in owners:
                problems.append(f"{file}: [{key}] is already defined in {owners[key]}; define it in one file only")
            else:
                owners[key] = file
                merged[key] = value
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, merged, site_origin, owners, files[0])) from None
    return ReadConfig(config=config, files=tuple(files), site_origin=site_origin,
                      daemon_file=owners.get("daemon", files[0]))


def _parse(file: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        data = file.read_bytes()
        return tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        problems.append(f"{file}: cannot read: {exc.strerror or exc}")
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position:
            line, column = position.groups()
            problems.append(f"{file}:{line}:{column}: invalid TOML: {message[: position.start()]}")
        else:
            problems.append(f"{file}: invalid TOML: {message}")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        problems.append(f"{file}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x})")
    return None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset``, as TOML errors give them."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _expand(value: Any, env: Mapping[str, str], where: str, problems: list[str], path: str = "") -> Any:
    """Expand environment references in every string value (keys are left alone)."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(f"{where}{path or '<top>'}: environment variable {name} is not set and has no default")
            return ""

        return _ENV_REF.sub(substitute, value) if "$" in value else value
    if isinstance(value, dict):
        return {k: _expand(v, env, where, problems, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, where, problems, _index(path, i, v)) for i, v in enumerate(value)]
    return value


def _index(path: str, i: int, item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    return f"{path}[{name}]" if isinstance(name, str) and name else f"{path}[{i}]"


_TABLE_EXPECTED = frozenset({"model_type", "dict_type", "model_attributes_type"})
"""Error types of a value that should have been a table."""

_MESSAGES = {
    "missing": "missing required field",
    "missing_argument": "missing required field",
    "extra_forbidden": "unknown key",
    "unexpected_keyword_argument": "unknown key",
}


def _describe(
    exc: ValidationError, data: dict[str, Any], site_origin: dict[int, str], owners: dict[str, Path], default: Path
) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = tuple(part for part in error["loc"] if part not in STEP_OR_INCLUDE_TAGS)
        at = _walk(loc, data)
        if loc and loc[0] == "sites" and len(loc) > 1 and isinstance(loc[1], int):
            file = site_origin.get(loc[1], str(default))
        else:
            file = str(owners.get(str(loc[0]), default)) if loc else str(default)
        path, message = at.path, _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        if (union := union_of_error(error["type"])) is not None:
            path, message = _wrong_tag(union, at.node, at.path)
        elif error["type"] in _TABLE_EXPECTED and not isinstance(at.node, dict):
            message = f"expected a table, got {_type_name(at.node)}"  # never the value: it may be a secret
        elif error["type"] == "extra_forbidden" and error["loc"][-2:-1] == ("Include",):
            message = (f'{loc[-1]} does not go with include: {{ include = "NAME" }} has no other key '
                       "(the steps come from the step group)")
        elif error["type"] == "extra_forbidden" and at.member is not None and isinstance(at.parent, dict):
            message = _key_of_another_member(at.member, at.parent, str(loc[-1])) or message
        problems.append(f"{file}: {path or '<top>'}: {message}")
    return problems


@dataclass(slots=True)
class _Place:
    """Where an error's location leads in the data as written."""

    path: str = ""
    """As messages write it: ``sites[bank].checks[login].steps[token].oauth``."""
    node: Any = None
    """The value there (None when it is absent)."""
    parent: Any = None
    """The table or array holding it."""
    member: TaggedUnion | None = None
    """The union whose member ``parent`` is, when the location names its tag."""


def _walk(loc: tuple[int | str, ...], data: dict[str, Any]) -> _Place:
    """Follow ``loc`` through ``data``, leaving out the unions' tags (not keys)."""
    at = _Place(node=data)
    union: TaggedUnion | None = None
    for part in loc:
        if (tagged := union_of_tag(at.node, part)) is not None:
            union = tagged
            continue
        at.parent, at.member, union = at.node, union, None
        if isinstance(part, int) and isinstance(at.node, list) and part < len(at.node):
            at.path = _index(at.path, part, at.node[part])
            at.node = at.node[part]
        else:
            at.path = f"{at.path}.{part}" if at.path else str(part)
            at.node = at.node.get(part) if isinstance(at.node, dict) else None
    return at


def _wrong_tag(union: TaggedUnion, node: Any, path: str) -> tuple[str, str]:
    """Where and what is wrong when no member of ``union`` could be picked for ``node``."""
    if not isinstance(node, dict):
        return path, f"expected a table, got {_type_name(node)}"
    where = f"{path}.{union.field}" if path else union.field
    if union.field not in node:
        return where, "missing required field"
    return where, f"{_shown(node[union.field])} is not {union.noun} ({union.choices})"


def _key_of_another_member(union: TaggedUnion, table: dict[str, Any], key: str) -> str | None:
    """``urls applies to type = "apprise" only, not to type = "slack"`` for an unknown
    ``key`` of ``table`` that another member of ``union`` has (None when none has it)."""
    others = union.tags_accepting(key)
    tag = union.tag_of(table)
    if not others or tag is None:
        return None
    listed = " or ".join(_shown(other) for other in others)
    unset = "" if union.field in table else " (the default)"
    return f"{key} applies to {union.field} = {listed} only, not to {union.field} = {_shown(tag)}{unset}"


def _type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array"}
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """A value as TOML writes it (``"email"``, ``3``, ``true``), for messages."""
    return json.dumps(value, ensure_ascii=False, default=str)
