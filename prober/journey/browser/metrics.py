"""Figures of a page as its customer feels them: Navigation Timing and Web Vitals.

:data:`VITALS_SCRIPT` runs in every document of a run before the page's own scripts
(a context init script): it observes the paint, largest-contentful-paint and
layout-shift entries Chromium reports (``buffered: true``, so none is missed) and keeps
First Contentful Paint, Largest Contentful Paint and Cumulative Layout Shift (shifts
right after an input excluded, as Web Vitals count them) in a page global.

:func:`read_page` reads them at the end of a step, with the document's
``PerformanceNavigationTiming``, in one evaluation, bounded: a page stuck in a script
gives no figures rather than a stuck step. A step that loaded a new document (its time
origin changed) reports them; a step on the same document reports none.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prober.results import PageMetrics, Phases

VITALS_SCRIPT = """(() => {
  if (window.__bankProberVitals) return;
  const v = window.__bankProberVitals = {fcp: null, lcp: null, cls: 0};
  const watch = (type, take) => {
    try { new PerformanceObserver(list => list.getEntries().forEach(take)).observe({type, buffered: true}); }
    catch (e) { /* not reported by this browser */ }
  };
  watch('paint', e => { if (e.name === 'first-contentful-paint') v.fcp = e.startTime; });
  watch('largest-contentful-paint', e => { v.lcp = e.renderTime || e.loadTime || e.startTime; });
  watch('layout-shift', e => { if (!e.hadRecentInput) v.cls += e.value; });
})();"""

FRAME_WAIT_MS = 500
"""Longest wait for the first contentful paint before the figures are read without it."""

# A step may end on the load event before the first contentful paint (a slow or busy
# machine, content rendered by a script after load): then, and only then, the read waits,
# frame by frame, for the first contentful paint and one frame more (for its LCP entry),
# capped by FRAME_WAIT_MS so a page that never paints anything still gives its navigation
# figures. Asking for frames costs Chromium CPU, so a painted page is read at once.
READ_SCRIPT = """() => new Promise(settle => {
  let done = false;
  const read = () => {
    if (done) return;
    done = true;
    const n = performance.getEntriesByType('navigation')[0];
    painted();
    settle({origin: performance.timeOrigin, vitals: v, nav: n ? {
      dnsStart: n.domainLookupStart, dnsEnd: n.domainLookupEnd, connectStart: n.connectStart,
      secureStart: n.secureConnectionStart, connectEnd: n.connectEnd, requestStart: n.requestStart,
      responseStart: n.responseStart, responseEnd: n.responseEnd, dcl: n.domContentLoadedEventEnd,
      load: n.loadEventEnd, size: n.decodedBodySize, status: n.responseStatus || 0} : null});
  };
  const painted = () => {
    if (!v || v.fcp !== null) return true;
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    if (fcp) v.fcp = fcp.startTime;
    return v.fcp !== null;
  };
  const v = window.__bankProberVitals || null;
  // one more frame after the first contentful paint: its LCP entry arrives behind it
  const frame = () => requestAnimationFrame(
    () => painted() ? requestAnimationFrame(() => setTimeout(read, 0)) : frame());
  if (painted() && (!v || v.lcp !== null)) { read(); return; }  // the usual case: nothing to wait for
  frame();
  setTimeout(read, FRAME_WAIT_MS);
})""".replace("FRAME_WAIT_MS", str(FRAME_WAIT_MS))

READ_TIMEOUT = 1.0
"""Seconds the figures may take to read before the step goes without them."""


@dataclass(slots=True)
class PageReading:
    """One reading of the document's figures."""

    origin: float
    phases: Phases | None
    metrics: PageMetrics
    bytes: int
    status: int | None


async def read_page(page: Any) -> PageReading | None:
    """The current document's figures, or None when the page does not answer in time."""
    try:
        data = await asyncio.wait_for(page.evaluate(READ_SCRIPT), READ_TIMEOUT)
    except Exception:  # noqa: BLE001 - a page stuck in a script, closed or crashed: no figures
        return None
    return parse_reading(data)


def _ms(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


def parse_reading(data: Any) -> PageReading | None:
    """A :class:`PageReading` from what :data:`READ_SCRIPT` returned (pure, for tests)."""
    if not isinstance(data, dict) or not isinstance(data.get("origin"), int | float):
        return None
    nav, vitals = data.get("nav"), data.get("vitals")
    if not isinstance(nav, dict):
        nav = None
    if not isinstance(vitals, dict):
        vitals = {}
    phases = None
    if nav is not None:
        n = {k: float(v) if isinstance(v, int | float) else 0.0 for k, v in nav.items()}
        secure = n["secureStart"] > 0
        phases = Phases(
            dns_ms=max(n["dnsEnd"] - n["dnsStart"], 0.0),
            connect_ms=max((n["secureStart"] if secure else n["connectEnd"]) - n["connectStart"], 0.0),
            tls_ms=max(n["connectEnd"] - n["secureStart"], 0.0) if secure else 0.0,
            ttfb_ms=max(n["responseStart"] - n["requestStart"], 0.0),
            transfer_ms=max(n["responseEnd"] - n["responseStart"], 0.0),
        )
    cls = vitals.get("cls")
    metrics = PageMetrics(
        dcl_ms=_ms(nav.get("dcl")) if nav else None,
        load_ms=_ms(nav.get("load")) if nav else None,
        fcp_ms=_ms(vitals.get("fcp")),
        lcp_ms=_ms(vitals.get("lcp")),
        cls=float(cls) if isinstance(cls, int | float) else None,
    )
    size = int(nav.get("size") or 0) if nav else 0
    status = int(nav["status"]) if nav and isinstance(nav.get("status"), int | float) and nav["status"] else None
    return PageReading(origin=float(data["origin"]), phases=phases, metrics=metrics, bytes=size, status=status)
