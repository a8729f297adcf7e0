"""The Atom feed of incidents (``/feed.atom``), for customers' feed readers and chat tools.

One entry per incident, open or recently resolved; an entry's ``updated`` moves when
the incident resolves, so readers show it again with its end and duration. The feed is
built with :mod:`xml.etree.ElementTree`, which escapes every text. In a public view an
entry says which bank and service, which step, since when and until when; the internal
view adds the check, the outcome and the error text.
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from prober.statuspage.view import IncidentLine, StatusView, plain_duration, plain_time

ATOM = "http://www.w3.org/2005/Atom"


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def entry_title(incident: IncidentLine) -> str:
    if incident.resolved_at and incident.closed:
        return f"No longer monitored: {incident.site} {incident.kind_words}"
    if incident.resolved_at:
        return f"Resolved: {incident.site} {incident.kind_words} (down {plain_duration(incident.duration_s)})"
    return f"Ongoing: {incident.site} {incident.kind_words} failing"


def entry_summary(incident: IncidentLine) -> str:
    parts = [f"{incident.kind_words} at {incident.site}"]
    if incident.step:
        parts.append(f"failing at step “{incident.step}”")
    if incident.outcome_words:
        parts.append(f"({incident.outcome_words})")
    text = " ".join(parts) + f" since {plain_time(incident.since)}"
    if incident.resolved_at and incident.closed:
        text += f"; no longer monitored from {plain_time(incident.resolved_at)}, not seen back"
    elif incident.resolved_at:
        text += f"; back at {plain_time(incident.resolved_at)}, after {plain_duration(incident.duration_s)}"
    text += "."
    if incident.check:
        text += f" Check {incident.check}"
        if incident.location:
            text += f" from {incident.location}"
        if incident.error:
            text += f": {incident.error}"
    return text


def render_feed(view: StatusView, page_url: str) -> bytes:
    """The Atom document of ``view``'s open and recent incidents; ``page_url`` is the
    page's absolute address (the feed's ``<link>`` and ``<id>``)."""
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    _text(root, f"{{{ATOM}}}title", f"{view.title}: incidents")
    _text(root, f"{{{ATOM}}}id", page_url + "feed.atom")
    ET.SubElement(root, f"{{{ATOM}}}link", {"rel": "self", "href": page_url + "feed.atom"})
    ET.SubElement(root, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html", "href": page_url})
    incidents = [*view.open, *view.recent]
    updated = max((i.resolved_at or i.since for i in incidents), default=view.generated_at)
    _text(root, f"{{{ATOM}}}updated", updated)
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, f"{{{ATOM}}}name", "bank-prober")
    for incident in incidents:
        entry = ET.SubElement(root, f"{{{ATOM}}}entry")
        _text(entry, f"{{{ATOM}}}id", f"urn:bank-prober:incident:{incident.id}")
        _text(entry, f"{{{ATOM}}}title", entry_title(incident))
        _text(entry, f"{{{ATOM}}}published", incident.since)
        _text(entry, f"{{{ATOM}}}updated", incident.resolved_at or incident.since)
        ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "type": "text/html", "href": page_url})
        ET.SubElement(entry, f"{{{ATOM}}}category", {"term": incident.kind})
        _text(entry, f"{{{ATOM}}}summary", entry_summary(incident))
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
