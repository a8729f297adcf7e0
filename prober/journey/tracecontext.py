"""W3C Trace Context (https://www.w3.org/TR/trace-context/): a ``traceparent`` header on
every request a journey sends, so that a bank can find the prober's requests in its own
traces.

``traceparent: 00-<trace-id>-<parent-id>-01``: version ``00``; the trace id (32 lowercase
hex digits) is the journey run's (its ``run_id``, random, never all zeros), shared by all
its requests; the parent id (16 hex digits, random, never all zeros) is new for every
request sent — each step, each poll attempt, each redirect hop — since each is a span of
its own; the flags ``01`` say *sampled* (the prober records every run). The header is set
as each request is sent (by :class:`~prober.journey.hops.Hops`), before a signature is
computed (:mod:`prober.journey.signing`),
so a profile whose covered headers include ``traceparent`` signs it. No ``tracestate``
is sent, and what a bank answers in its own ``traceparent`` (or anything else) is never
read.
"""

from __future__ import annotations

import random
import re

HEADER = "traceparent"
_VALID = re.compile(r"^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")


def new_span_id() -> str:
    """16 random lowercase hex digits, not all zeros."""
    value = random.getrandbits(64)
    while not value:  # one chance in 2**64
        value = random.getrandbits(64)
    return f"{value:016x}"


def traceparent(trace_id: str, span_id: str) -> str:
    """The header's value for a sampled span ``span_id`` of trace ``trace_id``."""
    return f"00-{trace_id}-{span_id}-01"


def is_valid(value: str) -> bool:
    """Whether ``value`` is a version-00 ``traceparent`` as the specification writes it."""
    return _VALID.match(value) is not None
