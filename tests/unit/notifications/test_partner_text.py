"""Text the municipality did not write (need descriptions, districts, names) never becomes a link in
its mails: URLs and host names in it are defanged, in the text and in the HTML part."""

from __future__ import annotations

import html
import re

import pytest

from lotse_notifications import catalogue
from lotse_notifications.templates import MessageFacts, defang, render, sample_facts


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("https://evil.example/login", "https[:]//evil[.]example/login"),
        ("see www.evil.example now", "see www[.]evil[.]example now"),
        ("HTTP://Evil.Example", "HTTP[:]//Evil[.]Example"),
        ("info@evil.example", "info@evil[.]example"),
        ("http://10.0.0.1/admin", "http[:]//10[.]0[.]0[.]1/admin"),
        ("evil\u3002example", "evil[.]example"),  # an ideographic full stop some clients read as a dot
        # Ordinary writing stays as it is.
        ("Termin am 3.12.2026 um 9.30 Uhr, z.B. im Rathaus.", "Termin am 3.12.2026 um 9.30 Uhr, z.B. im Rathaus."),
        ("Dr. Müller begleitet zum Amt.", "Dr. Müller begleitet zum Amt."),
    ],
)
def test_urls_and_host_names_are_defanged_and_ordinary_text_is_not(written: str, shown: str) -> None:
    assert defang(written) == shown


@pytest.mark.parametrize("kind", [catalogue.MATCH_PROPOSED, catalogue.NEED_UNSTAFFED, catalogue.WEEKLY_DIGEST])
@pytest.mark.parametrize("language", catalogue.LANGUAGES)
def test_a_need_description_with_links_links_nothing_in_either_part(kind: str, language: str) -> None:
    facts = sample_facts(kind)
    payload = dict(facts.payload)
    hostile = "Formular: https://evil.example/login oder www.evil.example"
    if "need" in payload:
        payload["need"] = dict(payload["need"]) | {"description": hostile, "district": "evil.example"}
    else:
        digest = dict(payload["digest"])
        digest["unstaffed_needs"] = [{"category": "mobility", "district": "Nord", "description": hostile}]
        payload["digest"] = digest
    rendered = render(kind, [language], MessageFacts(**(facts.__dict__ | {"payload": payload})))
    for part in (rendered.text, rendered.html):
        assert "www[.]evil[.]example" in part
        assert not re.search(r"(https?://|www\.)[^\s<]*evil", part, re.IGNORECASE)
    hrefs = re.findall(r'href="([^"]*)"', rendered.html)
    assert not [href for href in hrefs if "evil" in href]
    if payload.get("accept_url"):  # the municipality's own answer links stay links
        assert payload["accept_url"] in [html.unescape(href) for href in hrefs]
