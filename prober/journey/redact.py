"""Keep secrets out of everything a run reports.

Every error string a step produces passes through a :class:`Redactor` holding the site's
secrets and the values extracted as secret during the run (tokens, session cookies).
"""

from __future__ import annotations

MASK = "***"
_MIN_LENGTH = 3  # shorter values would mask unrelated digits and letters


class Redactor:
    """Replaces known secret values in text with ``***``."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._secrets = [s for s in secrets if len(s) >= _MIN_LENGTH]

    def add(self, value: str) -> None:
        if len(value) >= _MIN_LENGTH and value not in self._secrets:
            self._secrets.append(value)
            # Longest first, so a secret containing another is masked whole.
            self._secrets.sort(key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
