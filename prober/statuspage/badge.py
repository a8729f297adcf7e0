"""SVG badges, one per site × capability, for embedding in a wiki or a README.

``/badge/<site>/<kind>.svg`` shows e.g. ``simbank accounts | outage`` in the state's
colour. The text goes through the same autoescaping Jinja2 environment as the page.
"""

from __future__ import annotations

from prober.statuspage.page import environment

COLOURS = {"ok": "#1a7f37", "degraded": "#9a6700", "outage": "#cf222e", "unknown": "#6e7781"}
WORDS = {"ok": "ok", "degraded": "degraded", "outage": "outage", "unknown": "no data"}
CHAR_WIDTH = 7
"""Approximate width of a character of 11 px Verdana, in pixels."""


def render_badge(site: str, kind: str, state: str) -> str:
    """The SVG of one badge (``state``: ok, degraded, outage or unknown)."""
    label = f"{site} {kind}"
    value = WORDS.get(state, state)
    left = len(label) * CHAR_WIDTH + 12
    right = len(value) * CHAR_WIDTH + 12
    return environment().get_template("badge.svg").render(
        label=label, value=value, left=left, width=left + right, colour=COLOURS.get(state, COLOURS["unknown"]),
    )
