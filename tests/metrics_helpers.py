"""Prometheus text-format helpers of the /metrics tests: scrape, parse, read one value."""

from __future__ import annotations

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str, accept: str = "") -> tuple[str, str]:
    """``url``'s ``/metrics``: its content type and text."""
    request = urllib.request.Request(f"{url}/metrics", headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


def parse(text: str) -> Samples:
    """Samples by name (Prometheus' own parser)."""
    samples: Samples = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` with ``labels`` (it must be exactly one)."""
    found = [v for lbl, v in samples[name] if all(lbl.get(k) == want for k, want in labels.items())]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]
