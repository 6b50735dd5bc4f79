"""Rendering pages: one Jinja environment per language with that language's gettext catalogue.

Every string a person reads is in ``templates/`` or marked with ``N_`` and goes through the
catalogues in ``locale/`` (German message ids; de, en, ar, uk, fa, tr). HTML is autoescaped; the
page's ``lang`` and ``dir`` come from the language, so Arabic and Persian read right to left.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from lotse_portal import domain
from lotse_portal.domain import LANGUAGES as LANGUAGES
from lotse_runtime import i18n
from lotse_runtime.i18n import Catalogues

HERE = Path(__file__).parent
CATALOGUES = Catalogues(HERE / "locale", LANGUAGES)


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    direction: str


def languages() -> list[Language]:
    return [Language(code, i18n.endonym(code), i18n.direction(code)) for code in LANGUAGES]


@lru_cache(maxsize=len(LANGUAGES))
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        auto_reload=False,  # they ship with the package: no stat of each at every page
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(CATALOGUES.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        categories=domain.NEED_CATEGORIES,
        reason_labels=domain.REASONS,
        statuses=domain.PROPOSAL_STATUSES,
        need_statuses=domain.NEED_STATUSES,
        format_date=lambda value: i18n.format_date(value, language),
        format_number=lambda value, decimals=0: i18n.format_number(value, language, decimals=decimals),
    )
    return env


def render(language: str, template: str, context: dict[str, Any]) -> str:
    return (
        environment(language)
        .get_template(template)
        .render(lang=language, dir=i18n.direction(language), languages=languages(), **context)
    )


def translate(language: str, message: str) -> str:
    return CATALOGUES.translations(language).gettext(message)
