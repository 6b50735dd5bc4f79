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


def test_each_language_is_named_in_itself_for_the_switcher() -> None:
    from lotse_runtime.i18n import endonym

    assert [endonym(code) for code in ("de", "en", "ar", "uk", "fa", "tr")] == [
        "Deutsch",
        "English",
        "العربية",
        "Українська",
        "فارسی",
        "Türkçe",
    ]


def test_a_schedule_reads_as_people_say_it_in_the_tenants_zone() -> None:
    from zoneinfo import ZoneInfo

    from lotse_runtime.i18n import describe_schedule

    berlin = ZoneInfo("Europe/Berlin")
    one_off = {"kind": "one_off", "start": "2026-12-03T08:00:00Z", "end": "2026-12-03T10:00:00Z"}
    assert describe_schedule(one_off, "de", berlin, str) == "03.12.2026, 09:00–11:00 Uhr"
    weekly = {
        "kind": "weekly",
        "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "18:00:00"}],
        "starts_on": "2026-12-01",
        "ends_on": "2027-03-31",
    }
    described = describe_schedule(weekly, "de", berlin, {"tuesday": "dienstags"}.__getitem__)
    assert described.startswith("dienstags 16:00–18:00 Uhr (") and "2027" in described
    assert describe_schedule({"kind": "unknown"}, "de", berlin, str) == ""
