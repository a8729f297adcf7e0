"""Keep secrets out of everything a run reports.

Every error string a step produces passes through a :class:`Redactor` holding the site's
secrets and the values extracted as secret during the run (tokens, session cookies).
Excerpts of a response are redacted *before* they are cut to length, and the redactor
masks fragments too, so that neither a cut nor a bank that splits a secret across fields
gets part of one through:

* a whole secret of at least :data:`MIN_SECRET` characters is masked wherever it appears;
* so is any run of at least :data:`MIN_FRAGMENT` consecutive characters of a secret (an
  excerpt cut in the middle of a token, a token split across two fields). Shorter
  fragments are left alone: they would mask ordinary words and numbers, and say little;
* the same holds for the secret's percent-encoded and base64 forms (a password echoed
  in a URL query, a ``Basic`` credential or a token quoted as base64).
"""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 3
"""Shorter values would mask unrelated digits and letters."""
MIN_FRAGMENT = 8
"""Runs of a secret's characters at least this long are masked wherever they appear."""


def _encoded_forms(secret: str) -> set[str]:
    """The secret as it may appear percent-encoded or in base64 (any alignment)."""
    raw = secret.encode()
    forms = {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    for offset in range(3):
        # Base64 of a longer string holding the secret at byte ``offset`` mod 3: keep only
        # the characters that depend on the secret's bytes alone.
        encoded = base64.b64encode(b"\0" * offset + raw).decode("ascii")
        core = encoded[-(-8 * offset // 6): (8 * (offset + len(raw))) // 6]
        forms.add(core)
        forms.add(core.translate(str.maketrans("+/", "-_")))
    forms.discard(secret)
    return {form for form in forms if len(form) >= MIN_FRAGMENT}


class Redactor:
    """Replaces known secret values, and long enough fragments of them, with ``***``.

    The fragment index is built on the first call with text to redact: most runs report
    no error and never pay for it.
    """

    __slots__ = ("_secrets", "_grams", "_indexed")

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        self._secrets: list[str] = []
        self._grams: set[str] = set()
        self._indexed = 0  # how many of the secrets, in order added, are in ``_grams``
        for secret in secrets:
            self.add(secret)

    def add(self, value: str) -> None:
        """Know ``value`` as a secret from now on."""
        if len(value) >= MIN_SECRET and value not in self._secrets:
            self._secrets.append(value)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The secrets known so far, in the order they were added."""
        return tuple(self._secrets)

    def holds(self, text: str) -> bool:
        """Whether ``text`` contains a whole secret (cheap: no fragment index)."""
        return any(secret in text for secret in self._secrets)

    def __call__(self, text: str) -> str:
        if not text or not self._secrets:
            return text
        if self._indexed < len(self._secrets):
            self._index()
        # Longest first, so a secret containing another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        if len(text) >= MIN_FRAGMENT:
            text = self._mask_fragments(text)
        return text

    def _index(self) -> None:
        for value in self._secrets[self._indexed:]:
            for form in {value} | _encoded_forms(value):
                self._grams.update(form[i: i + MIN_FRAGMENT] for i in range(len(form) - MIN_FRAGMENT + 1))
        self._indexed = len(self._secrets)

    def _mask_fragments(self, text: str) -> str:
        grams, size = self._grams, MIN_FRAGMENT
        spans: list[list[int]] = []
        for i in range(len(text) - size + 1):
            if text[i: i + size] in grams:
                if spans and i <= spans[-1][1]:
                    spans[-1][1] = i + size
                else:
                    spans.append([i, i + size])
        if not spans:
            return text
        out: list[str] = []
        kept = 0
        for begin, end in spans:
            out += (text[kept:begin], MASK)
            kept = end
        out.append(text[kept:])
        return "".join(out)
