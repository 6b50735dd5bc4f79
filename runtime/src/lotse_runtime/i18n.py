# ruff: noqa: RUF001, RUF002 - dashes in dates and times are typographic on purpose
"""Translations and locale formatting: gettext catalogues, plural forms, dates, times, numbers and
text direction, with Babel. Mechanism only: each service keeps its own texts in its own catalogue.

A service's catalogue is a folder ``<locale_dir>/<language>/LC_MESSAGES/<domain>.po`` (German
message ids, one ``.po`` per language) beside a ``<domain>.pot`` that ``pybabel extract`` writes.
The ``.po`` files are the only source: they are compiled in memory on first use (no ``.mo`` files
in the repository, no build step; ``pybabel compile`` still works for a translator's check). A
fuzzy or empty translation falls back to the German message id, as gettext does.

``catalogue_problems`` is what each service's completeness test calls: every message that
``pybabel extract`` finds in the code and templates must be in the ``.pot`` and translated, not
fuzzy, in every language, and the catalogues hold nothing the code no longer uses.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, time, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

Direction = Literal["ltr", "rtl"]


def N_(message: str) -> str:
    """Marks a message for extraction where it is defined; it is translated where it is shown."""
    return message


class Catalogues:
    """One service's gettext catalogues: one domain, a fixed set of languages, German as the source."""

    def __init__(
        self, locale_dir: Path, languages: Sequence[str], *, domain: str = "messages", source_language: str = "de"
    ) -> None:
        self.locale_dir = locale_dir
        self.languages = tuple(languages)
        self.domain = domain
        self.source_language = source_language

    def pick(self, *preferred: str | None) -> str:
        """The first of ``preferred`` that has a catalogue, else the source language."""
        for language in preferred:
            if language in self.languages:
                return language
        return self.source_language

    def po_path(self, language: str) -> Path:
        return self.locale_dir / language / "LC_MESSAGES" / f"{self.domain}.po"

    @property
    def pot_path(self) -> Path:
        return self.locale_dir / f"{self.domain}.pot"

    def translations(self, language: str) -> gettext.NullTranslations:
        """The language's translations (gettext, ngettext, pgettext); unknown languages get the message ids."""
        if language not in self.languages:
            return gettext.NullTranslations()
        return _compiled(self.po_path(language), self.domain)


@lru_cache(maxsize=64)
def _compiled(po_path: Path, domain: str) -> Translations:
    with po_path.open("rb") as source:
        catalog = read_po(source)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)  # fuzzy entries are left out, so they fall back to the message id
    buffer.seek(0)
    return Translations(buffer, domain=domain)


@lru_cache(maxsize=64)
def locale(language: str) -> Locale:
    try:
        return Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return Locale.parse("de")


def direction(language: str) -> Direction:
    """``rtl`` for scripts written right to left (Arabic, Persian, ...), from the locale's data."""
    return "rtl" if locale(language).character_order == "right-to-left" else "ltr"


def format_date(value: date, language: str) -> str:
    """3 December 2026 as the language writes it: 03.12.2026, Dec 3, 2026, 3 Ara 2026, ..."""
    return babel_dates.format_date(value, "medium", locale=locale(language))


def format_time(value: time | datetime, language: str, zone: tzinfo | None = None) -> str:
    return babel_dates.format_time(value, "short", tzinfo=zone, locale=locale(language))


def format_datetime(value: datetime, language: str, zone: tzinfo) -> str:
    """A date with a time of day, in ``zone``, joined as the language joins them."""
    local = value.astimezone(zone)
    return _join(format_date(local.date(), language), format_time(local.time(), language), language)


def format_time_range(start: time, end: time, language: str) -> str:
    """09:00–12:00 Uhr, 9:00 AM – 12:00 PM, ... (the language's 12- or 24-hour clock)."""
    skeleton = "hm" if "h" in locale(language).time_formats["short"].pattern else "Hm"
    return babel_dates.format_interval(start, end, skeleton, locale=locale(language))


def format_datetime_range(start: datetime, end: datetime, language: str, zone: tzinfo) -> str:
    """One day from a time to a time: 03.12.2026, 09:00–12:00 Uhr."""
    first, last = start.astimezone(zone), end.astimezone(zone)
    if first.date() != last.date():
        return f"{format_datetime(first, language, zone)} – {format_datetime(last, language, zone)}"
    hours = format_time_range(first.time().replace(tzinfo=None), last.time().replace(tzinfo=None), language)
    return _join(format_date(first.date(), language), hours, language)


def format_date_range(first: date, last: date | None, language: str) -> str:
    if last is None:
        return f"{format_date(first, language)} –"
    return babel_dates.format_interval(first, last, "yMMMd", locale=locale(language))


def format_number(value: float, language: str, *, decimals: int = 0) -> str:
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return babel_numbers.format_decimal(value, pattern, locale=locale(language))


def format_percent(percent: float, language: str) -> str:
    """33 → 33 %, 33%, %33, ... as the language writes a share."""
    return babel_numbers.format_percent(percent / 100, locale=locale(language))


def _join(day: str, hours: str, language: str) -> str:
    pattern = babel_dates.get_datetime_format("medium", locale=locale(language))
    return str(pattern).replace("{1}", day).replace("{0}", hours)


# --- completeness -------------------------------------------------------------------------------


def extract(root: Path, mapping_file: Path) -> dict[str | tuple[str, str], set[str]]:
    """What ``pybabel extract -F <mapping_file> <root>`` finds: message id → files it is used in
    (a plural message's id is its singular and plural)."""
    with mapping_file.open() as config:
        method_map, options_map = parse_mapping_cfg(config, filename=str(mapping_file))  # type: ignore[no-untyped-call]
    found: dict[str | tuple[str, str], set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(str(root), method_map, options_map):
        key: str | tuple[str, str] = message if isinstance(message, str) else (message[0], message[1])
        found.setdefault(key, set()).add(filename)
    return found


def _read(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=language)


def catalogue_problems(catalogues: Catalogues, root: Path, mapping_file: Path) -> list[str]:
    """Everything a translator or developer still has to do, one line each (empty: complete)."""
    used = extract(root, mapping_file)
    problems: list[str] = []
    template = _read(catalogues.pot_path)
    known = {_key(message.id) for message in template if message.id}
    problems += [
        f"{catalogues.pot_path.name}: lacks {key!r} (used in {sorted(used[key])})" for key in used.keys() - known
    ]
    problems += [f"{catalogues.pot_path.name}: {key!r} is no longer used" for key in known - used.keys()]
    for language in catalogues.languages:
        path = catalogues.po_path(language)
        if not path.exists():
            problems.append(f"{language}: no catalogue at {path}")
            continue
        catalog = _read(path, language)
        entries = {_key(message.id): message for message in catalog if message.id}
        for key in used:
            entry = entries.get(key)
            if entry is None:
                problems.append(f"{language}: lacks {key!r}")
            elif entry.fuzzy:
                problems.append(f"{language}: fuzzy translation of {key!r}")
            elif not _translated(entry.string, catalog.num_plurals if isinstance(key, tuple) else 1):
                problems.append(f"{language}: empty translation of {key!r}")
        problems += [f"{language}: {key!r} is no longer used" for key in entries.keys() - used.keys()]
    return problems


def _key(message_id: str | Iterable[str]) -> str | tuple[str, str]:
    if isinstance(message_id, str):
        return message_id
    singular, plural = tuple(message_id)[:2]
    return (singular, plural)


def _translated(string: str | Iterable[str] | None, forms: int) -> bool:
    if isinstance(string, str):
        return bool(string.strip())
    strings = tuple(string or ())
    return len(strings) >= forms and all(text.strip() for text in strings[:forms])


def endonym(language: str) -> str:
    """The language named in itself, for a language switcher: Deutsch, English, العربية, Українська."""
    name = locale(language).get_display_name(language) or language
    return name[:1].upper() + name[1:]


def describe_schedule(schedule: Mapping[str, Any], language: str, zone: tzinfo, weekday: Callable[[str], str]) -> str:
    """When a need is (a contract ``Schedule`` as JSON), as people read it: one day from a time to a
    time in ``zone``, or the weekdays with their hours and the weeks they run. ``weekday`` names a
    weekday code (``monday``) in the language, as the caller's catalogue words it ("montags")."""
    if schedule.get("kind") == "one_off":
        start, end = datetime.fromisoformat(schedule["start"]), datetime.fromisoformat(schedule["end"])
        return format_datetime_range(start, end, language, zone)
    if schedule.get("kind") == "weekly":
        slots = "; ".join(
            f"{weekday(slot['weekday'])} "
            + format_time_range(time.fromisoformat(slot["start"]), time.fromisoformat(slot["end"]), language)
            for slot in schedule.get("slots", [])
        )
        first = date.fromisoformat(schedule["starts_on"])
        last = date.fromisoformat(schedule["ends_on"]) if schedule.get("ends_on") else None
        return f"{slots} ({format_date_range(first, last, language)})"
    return ""
