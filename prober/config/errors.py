"""The one error type configuration problems are reported with."""

from __future__ import annotations


class ConfigError(Exception):
    """One or more problems in the configuration, each a line naming where it is.

    Lines read ``FILE:LINE:COLUMN: message`` for TOML syntax, and
    ``FILE: field.path: message`` for everything else. Values are never quoted when they
    may be secret.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
