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

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prober.config.errors import ConfigError
from prober.config.influxdb import API_VERSIONS, other_version_of
from prober.config.model import STEP_OR_INCLUDE_TAGS, Config

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
        api = None
        if loc[:1] == ("influxdb",) and len(loc) > 1 and loc[1] in API_VERSIONS:
            api, loc = str(loc[1]), loc[:1] + loc[2:]  # the version's union tag: not a key
        path, node = "", data
        for part in loc:
            if isinstance(part, int) and isinstance(node, list) and part < len(node):
                path = _index(path, part, node[part])
                node = node[part]
            else:
                path = f"{path}.{part}" if path else str(part)
                node = node.get(part) if isinstance(node, dict) else None
        if loc and loc[0] == "sites" and len(loc) > 1 and isinstance(loc[1], int):
            file = site_origin.get(loc[1], str(default))
        else:
            file = str(owners.get(str(loc[0]), default)) if loc else str(default)
        message = _MESSAGES.get(error["type"]) or error["msg"].removeprefix("Value error, ")
        if api and error["type"] == "extra_forbidden" and (other := other_version_of(str(loc[-1]), api)):
            message = f'{loc[-1]} applies to api = "{other}" only, and api = "{api}"'
        problems.append(f"{file}: {path or '<top>'}: {message}")
    return problems
