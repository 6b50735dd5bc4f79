# ruff: noqa: RUF001 - dates in several scripts are asserted on purpose
"""The shared gettext and Babel plumbing: direction, dates, times and numbers per locale."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from lotse_runtime import i18n

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("language", "expected"), [("ar", "rtl"), ("fa", "rtl"), ("he", "rtl"), ("de", "ltr"), ("tr", "ltr"), ("xx", "ltr")]
)
def test_the_direction_comes_from_the_locale(language: str, expected: str) -> None:
    assert i18n.direction(language) == expected


def test_dates_times_and_numbers_follow_the_locale() -> None:
    moment = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert i18n.format_datetime(moment, "de", BERLIN) == "28.11.2026, 09:00"
    assert i18n.format_datetime(moment, "tr", BERLIN) == "28 Kas 2026 09:00"
    assert i18n.format_date(date(2026, 12, 3), "en") == "Dec 3, 2026"
    assert i18n.format_time_range(time(9), time(12), "de") == "09:00–12:00 Uhr"
    assert i18n.format_number(2.345, "de", decimals=1) == "2,3" and i18n.format_number(2.345, "en", decimals=1) == "2.3"
    assert i18n.format_percent(33, "tr") == "%33" and i18n.format_percent(33, "en") == "33%"


def test_pick_falls_back_to_the_source_language(tmp_path) -> None:  # type: ignore[no-untyped-def]
    catalogues = i18n.Catalogues(tmp_path, ("de", "en"))
    assert catalogues.pick("ru", "en") == "en" and catalogues.pick(None, "ru") == "de"
    assert catalogues.translations("ru").gettext("Hallo") == "Hallo"
