"""Every person-facing text is in the gettext catalogues, translated in every language.

What ``pybabel extract`` finds in a service's code and templates (its ``babel.cfg``) must be in its
``messages.pot`` and translated — not empty, not fuzzy — in de, en, ar, uk, fa and tr, and the
catalogues carry nothing the code no longer uses. The workflow that fixes a failure is in the
notifications README ("Translations").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lotse_matching import pages
from lotse_notifications import catalogue
from lotse_portal import pages as portal_pages
from lotse_registry import portal
from lotse_runtime.i18n import Catalogues, catalogue_problems

SERVICES = Path(__file__).resolve().parents[2] / "services"
LANGUAGES = ("de", "en", "ar", "uk", "fa", "tr")


@pytest.mark.parametrize(
    ("service", "catalogues"),
    [
        ("notifications", catalogue.CATALOGUES),
        ("matching", pages.CATALOGUES),
        ("registry", portal.CATALOGUES),
        ("portal", portal_pages.CATALOGUES),
    ],
)
def test_every_text_is_translated_in_every_language(service: str, catalogues: Catalogues) -> None:
    assert catalogues.languages == LANGUAGES
    root = SERVICES / service
    assert catalogue_problems(catalogues, root, root / "babel.cfg") == []


def test_a_catalogue_missing_a_text_or_with_an_empty_fuzzy_or_stale_one_fails(tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text(
        'from lotse_runtime.i18n import N_\nA = N_("Eins")\nB = N_("Zwei")\nC = N_("Drei")\n', encoding="utf-8"
    )
    (tmp_path / "babel.cfg").write_text("[python: **.py]\n", encoding="utf-8")
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
    (tmp_path / "locale").mkdir()
    (tmp_path / "locale" / "messages.pot").write_text(
        header + 'msgid "Eins"\nmsgstr ""\n\nmsgid "Zwei"\nmsgstr ""\n\nmsgid "Alt"\nmsgstr ""\n', encoding="utf-8"
    )
    (tmp_path / "locale" / "en" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "locale" / "en" / "LC_MESSAGES" / "messages.po").write_text(
        header + 'msgid "Eins"\nmsgstr "One"\n\n#, fuzzy\nmsgid "Zwei"\nmsgstr "Two?"\n\n'
        'msgid "Drei"\nmsgstr ""\n\nmsgid "Alt"\nmsgstr "Old"\n',
        encoding="utf-8",
    )
    catalogues = Catalogues(tmp_path / "locale", ("en", "tr"))
    problems = catalogue_problems(catalogues, tmp_path, tmp_path / "babel.cfg")
    assert sorted(problems) == sorted(
        [
            "messages.pot: lacks 'Drei' (used in ['code.py'])",
            "messages.pot: 'Alt' is no longer used",
            "en: fuzzy translation of 'Zwei'",
            "en: empty translation of 'Drei'",
            "en: 'Alt' is no longer used",
            f"tr: no catalogue at {catalogues.po_path('tr')}",
        ]
    )
    # At run time a fuzzy or empty translation falls back to the German message id.
    assert catalogues.translations("en").gettext("Zwei") == "Zwei"
    assert catalogues.translations("en").gettext("Eins") == "One"
