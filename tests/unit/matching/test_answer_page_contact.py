"""The page after a yes says what comes next and whom to ask, in the page's language and escaped."""

from __future__ import annotations

import pytest
from markupsafe import escape

from lotse_matching import pages
from lotse_matching.domain import Outcome


@pytest.mark.parametrize("language", pages.LANGUAGES)
def test_the_page_after_a_yes_names_whom_to_ask_and_what_happens_next(language: str) -> None:
    contact = pages.ContactPoint("<b>Willkommen</b> Mitte", "hallo@willkommen-mitte.example")
    html = pages.render(pages.Page(Outcome.ACCEPTED, language, contact=contact))
    gettext = pages.CATALOGUES.translations(language).gettext
    lead = pages.TEXTS[Outcome.ACCEPTED][1]
    assert str(escape(gettext(lead))) in html and "Koordination meldet sich" not in html
    assert "&lt;b&gt;Willkommen&lt;/b&gt; Mitte" in html and "<b>Willkommen" not in html
    assert "hallo@willkommen-mitte.example" in html


def test_other_pages_name_no_contact() -> None:
    html = pages.render(pages.Page(Outcome.DECLINED, "de"))
    assert 'class="contact"' not in html
