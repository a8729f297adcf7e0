"""UTC ISO 8601 formatting (prober/timefmt.py)."""

from __future__ import annotations

from prober.timefmt import utc_date, utc_iso, utc_iso_ns

T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


def test_nanoseconds_format_exactly_to_the_millisecond():
    # Through a float of seconds, 129 of these 1,000 instants lose a millisecond.
    for ms in range(1000):
        assert utc_iso_ns(T0 + ms * 1_000_000 + 999_999, millis=True) == f"2023-11-14T22:13:20.{ms:03d}Z"
    assert utc_iso_ns(T0 + 999_999_999) == "2023-11-14T22:13:20Z" == utc_iso(T0 // 1_000_000_000)


def test_date():
    assert utc_date(T0 / 1e9) == "2023-11-14"
