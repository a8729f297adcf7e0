"""The status page: what is broken, since when, and the history, for people and machines.

* :mod:`~prober.statuspage.view` — what is shown, built from the running prober
* :mod:`~prober.statuspage.page` — the HTML page (Jinja2, autoescape, strict CSP)
* :mod:`~prober.statuspage.feed` — the Atom feed of incidents
* :mod:`~prober.statuspage.badge` — SVG badges per site × capability
* :mod:`~prober.statuspage.history` — daily uptime per site × capability, in ``state_dir``
* :mod:`~prober.statuspage.influx` — the same, read from InfluxDB through InfluxQL
* :mod:`~prober.statuspage.server` — the routes, on the health listener or their own, and
  :class:`PageSource`, what the page reads of the running prober (which builds it)
"""

from prober.statuspage.history import DailyHistory
from prober.statuspage.server import PageSource, StatusPage, StatusPageServer

__all__ = ["DailyHistory", "PageSource", "StatusPage", "StatusPageServer"]
