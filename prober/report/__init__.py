"""``prober report``: PSD2 availability and performance per site × interface × day.

The figures banks publish every quarter for their PSD2 dedicated interface (EBA/GL/2018/07
guidelines 2.2–2.4; the FCA/OBIE template in the UK), measured from outside by the
prober's own probes:

* :mod:`~prober.report.interfaces` — which checks feed which interface (account
  information, payment initiation, confirmation of funds);
* :mod:`~prober.report.intervals` — pure interval arithmetic (union, clip, overlap, days);
* :mod:`~prober.report.downtime` — the five-failures-in-30-seconds rule, incidents and
  maintenance windows as intervals (pure functions);
* :mod:`~prober.report.influx` — the InfluxQL ``/query`` client and the queries,
  one request per day of data, a few at once;
* :mod:`~prober.report.compute` — fetched data → :class:`~prober.report.model.Report`;
* :mod:`~prober.report.formats` — the table of formats: table, CSV, JSON, and the
  self-contained HTML page of :mod:`~prober.report.page`; their words and figures in
  :mod:`~prober.report.text`.
"""

from prober.report.model import DayStats, RangeSummary, Report

__all__ = ["DayStats", "RangeSummary", "Report"]
