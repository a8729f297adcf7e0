"""The status page as HTML: Jinja2 with autoescape, one served stylesheet, no script.

Every text on the page (bank and check names from the configuration, a bank's error
text, maintenance descriptions) goes through Jinja2's autoescape. The page works
without JavaScript and reloads itself with a meta refresh; its
:data:`~prober.access.CONTENT_SECURITY_POLICY` (sent by the listener with every answer)
allows nothing but the stylesheet served beside it (``/status.css``): no script, no
inline style, no frame, no form.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined

from prober.access.headers import CONTENT_SECURITY_POLICY
from prober.statuspage.view import StatusView, plain_duration, plain_time

__all__ = ["CONTENT_SECURITY_POLICY", "environment", "render_page", "stylesheet"]


@cache
def environment() -> Environment:
    """The Jinja2 environment of the page and the badges (autoescape on for every template)."""
    env = Environment(
        loader=PackageLoader("prober.statuspage", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
    )
    env.globals.update(plain_time=plain_time, plain_duration=plain_duration)
    return env


def render_page(view: StatusView, prefix: str = "") -> str:
    """The HTML page of ``view``; ``prefix`` is prepended to its links (``""``: relative)."""
    return environment().get_template("page.html").render(view=view, prefix=prefix)


@cache
def stylesheet(days: int) -> bytes:
    """The page's stylesheet (``/status.css``), with the widths of history segments of
    1 to ``days`` days (``.wN``: N days wide; no inline style under the CSP)."""
    widths = "".join(f".bars .w{n}{{flex-grow:{n};background-size:calc(100%/{n}) 100%}}" for n in range(2, days + 1))
    return resources.files("prober.statuspage").joinpath("status.css").read_bytes() + widths.encode() + b"\n"
