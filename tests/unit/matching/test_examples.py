"""Examples of matching's pure parts: local time, reasons and the answer pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_contracts import Availability
from lotse_matching import pages
from lotse_matching.candidates import MatchContext, assess, rank
from lotse_matching.domain import Outcome
from lotse_matching.profiles import need_from_document, volunteer_from_document
from lotse_matching.schedule import availability_pieces, find_overlap, hours_mask, unavailable_ranges, window_pieces

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def window(day: int, start: int, end: int, zone: ZoneInfo, *, written_in: ZoneInfo = BERLIN) -> tuple:
    """The pieces of a one-off window in December 2026, written in one zone, seen in another."""
    first = datetime(2026, 12, day, start, tzinfo=written_in)
    last = (
        datetime(2026, 12, day, end, tzinfo=written_in) if end > start else first.replace(hour=end) + timedelta(days=1)
    )
    return window_pieces(first, last, zone)


def test_a_one_off_window_is_compared_in_the_tenants_time_zone() -> None:
    # 15:00 UTC on Tuesday 1 December 2026 is 16:00 in Berlin, inside a Tuesday 16-19 slot.
    availability = Availability.model_validate(
        {"weekly_slots": [{"weekday": "tuesday", "start": "16:00", "end": "19:00"}], "max_concurrent_engagements": 1}
    )
    slots = availability_pieces(availability)
    in_berlin = window_pieces(datetime(2026, 12, 1, 15, tzinfo=UTC), datetime(2026, 12, 1, 16, tzinfo=UTC), BERLIN)
    assert find_overlap(in_berlin, slots) is not None
    in_utc = window_pieces(
        datetime(2026, 12, 1, 15, tzinfo=UTC), datetime(2026, 12, 1, 16, tzinfo=UTC), ZoneInfo("UTC")
    )
    assert find_overlap(in_utc, slots) is None
    across_midnight = window_pieces(
        datetime(2026, 12, 1, 22, tzinfo=BERLIN), datetime(2026, 12, 2, 2, tzinfo=BERLIN), BERLIN
    )
    assert [(p.weekday, p.start, p.first) for p in across_midnight] == [
        (1, time(22), date(2026, 12, 1)),
        (2, time(0), date(2026, 12, 2)),
    ]


def test_holidays_block_only_their_days_and_the_hour_mask_ends_before_the_end() -> None:
    availability = Availability.model_validate(
        {
            "weekly_slots": [{"weekday": "tuesday", "start": "16:00", "end": "19:00"}],
            "unavailable": [{"start": "2026-12-01", "end": "2026-12-07"}],
            "max_concurrent_engagements": 1,
        }
    )
    slots, away = availability_pieces(availability), unavailable_ranges(availability)
    first_tuesday = window_pieces(
        datetime(2026, 12, 1, 17, tzinfo=BERLIN), datetime(2026, 12, 1, 18, tzinfo=BERLIN), BERLIN
    )
    second_tuesday = window_pieces(
        datetime(2026, 12, 8, 17, tzinfo=BERLIN), datetime(2026, 12, 8, 18, tzinfo=BERLIN), BERLIN
    )
    assert find_overlap(first_tuesday, slots, away) is None
    found = find_overlap(second_tuesday, slots, away)
    assert found is not None and found.day == date(2026, 12, 8)
    assert hours_mask(slots) == sum(1 << (24 + hour) for hour in (16, 17, 18))


def volunteer(**overrides: object) -> dict:
    document = {
        "tenant": "musterstadt",
        "volunteer_id": "00000000-0000-4000-8000-000000000001",
        "active": True,
        "profile": {
            "skills": ["accompaniment"],
            "languages": [{"language": "ar", "level": "c1"}, {"language": "de", "level": "b2"}],
            "home_area": {"point": {"lat": 52.52 + 1.2 / 111.195, "lon": 13.405}},
            "travel_radius_km": 5,
            "certificates": [],
        },
        "availability": {
            "weekly_slots": [{"weekday": "tuesday", "start": "15:00:00", "end": "18:00:00"}],
            "periods": [],
            "unavailable": [],
            "max_concurrent_engagements": 1,
        },
    }
    document.update(overrides)
    return document


LATE_SLOT = {"weekday": "tuesday", "start": "17:00:00", "end": "18:00:00"}
NEED = {
    "tenant": "musterstadt",
    "need_id": "00000000-0000-4000-8000-0000000000aa",
    "details": {
        "organisation_id": "00000000-0000-4000-8000-0000000000bb",
        "category": "accompaniment_to_authorities",
        "description": "Begleitung",
        "required_skills": ["accompaniment"],
        "languages": [{"language": "ar", "min_level": "b2"}],
        "place": {"point": {"lat": 52.52, "lon": 13.405}},
        "schedule": {
            "kind": "weekly",
            "slots": [{"weekday": "tuesday", "start": "16:00:00", "end": "17:00:00"}],
            "starts_on": "2026-12-01",
        },
        "volunteers_needed": 1,
    },
}


def test_a_proposal_explains_itself_in_plain_words() -> None:
    need = need_from_document(NEED, BERLIN)
    (found,) = rank([volunteer_from_document(volunteer())], need, MatchContext(date(2026, 11, 25)), 5)
    assert [(r.code.value, r.detail) for r in found.reasons] == [
        ("distance", "about 1.5 km away"),
        ("language", "speaks Arabic (C1)"),
        ("skills", "has the skills needed: accompaniment"),
        ("availability", "free on Tuesday afternoons"),
    ]
    assert 0 < found.score <= 1


def at_home(lat: float, lon: float) -> dict:
    profile: dict = volunteer()["profile"]
    return volunteer(profile={**profile, "home_area": {"point": {"lat": lat, "lon": lon}}})


def test_a_volunteer_cannot_trilaterate_a_need_from_home_points_of_their_choice() -> None:
    """Issue 18: distances read before committing are to the need's ~1 km cell, in 0.5 km steps."""
    need = need_from_document(NEED, BERLIN)
    context = MatchContext(date(2026, 11, 25))
    metre = 1 / 111_195  # in degrees of latitude
    # Three home points around the need (none within metres of a step's edge), each nudged by a
    # few metres in every direction: exact distances would differ in every reading.
    homes = ((52.53, 13.405), (52.51, 13.40), (52.505, 13.40))
    for lat, lon in homes:
        read = set()
        for north, east in ((0, 0), (7, 0), (-7, 0), (0, 7), (0, -7), (5, 5)):
            home = volunteer_from_document(at_home(lat + north * metre, lon + east * metre * 1.64))
            (found,) = rank([home], need, context, 1)
            read.add((found.rough_distance_km, found.reasons[0].detail))
        assert len(read) == 1, f"metres apart, the same reading: {read}"
        ((rough, detail),) = read
        assert rough % 0.5 == 0 and detail == f"about {rough:g} km away"
    # Needs anywhere within the same ~1 km cell read the same from every home point.
    details: Any = NEED["details"]
    nearby = {**NEED, "details": {**details, "place": {"point": {"lat": 52.5195, "lon": 13.4061}}}}
    for lat, lon in homes:
        home = volunteer_from_document(at_home(lat, lon))
        (one,) = rank([home], need, context, 1)
        (other,) = rank([home], need_from_document(nearby, BERLIN), context, 1)
        assert one.rough_distance_km == other.rough_distance_km and one.reasons == other.reasons
        assert one.distance_km != other.distance_km, "the exact distances (the office's) differ"


def test_the_travel_radius_has_no_exact_edge_at_the_needs_point() -> None:
    """Whether a need is offered must not tell more than its distance does: metres either side of
    the radius around the exact point read the same (the radius reaches the need's cell centre)."""
    need = need_from_document(NEED, BERLIN)
    context = MatchContext(date(2026, 11, 25))
    answers = set()
    for metres in (-5, 5):
        profile: dict = volunteer()["profile"]
        north = 52.52 + (2000 + metres) / 111_195  # metres per degree of latitude
        home = volunteer(
            profile={**profile, "home_area": {"point": {"lat": north, "lon": 13.405}}, "travel_radius_km": 2}
        )
        found = assess(volunteer_from_document(home), need, context)
        answers.add(found if isinstance(found, str) else "fits")
    assert len(answers) == 1, f"the exact edge shows: {answers}"


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"tenant": "nachbarstadt"}, "tenant"),
        ({"active": False}, "consent"),
        ({"profile": {**volunteer()["profile"], "skills": ["driving"]}}, "skills"),
        ({"profile": {**volunteer()["profile"], "languages": [{"language": "ar", "level": "b1"}]}}, "languages"),
        ({"profile": {**volunteer()["profile"], "travel_radius_km": 1}}, "distance"),
        ({"profile": {**volunteer()["profile"], "home_area": {"postcode": "10115"}}}, "distance"),
        (
            {
                "availability": {
                    **volunteer()["availability"],
                    "weekly_slots": [{"weekday": "tuesday", "start": "17:00:00", "end": "18:00:00"}],
                }
            },
            "availability",
        ),
    ],
)
def test_each_hard_rule_alone_keeps_a_volunteer_out(change: dict, rule: str) -> None:
    need = need_from_document(NEED, BERLIN)
    assert assess(volunteer_from_document(volunteer(**change)), need, MatchContext(date(2026, 11, 25))) == rule


def certificate_need(**schedule: str) -> dict:
    """NEED requiring an extended police certificate, weekly from 1 December 2026 (``ends_on`` given or not)."""
    details: dict = {**NEED["details"], "certificate_required": "extended_police_certificate"}  # type: ignore[dict-item]
    details["schedule"] = {**details["schedule"], **schedule}
    return {**NEED, "details": details}


DECLARED_2099 = {"kind": "extended_police_certificate", "issued_on": "2026-01-01", "valid_until": "2099-12-31"}


def checked_until(day: str) -> dict:
    return {
        "certificate_checks": [{"kind": "extended_police_certificate", "seen_on": "2026-11-20", "valid_until": day}]
    }


@pytest.mark.parametrize(
    ("schedule", "change", "rule"),
    [
        # Typed in by the volunteer, valid until 2099: declared, not checked, so no fit.
        ({}, {"profile": {**volunteer()["profile"], "certificates": [DECLARED_2099]}}, "certificate"),
        ({}, {}, "certificate"),
        # Checked by the office: an open-ended need asks for its first day (and today).
        ({}, checked_until("2026-12-01"), None),
        ({}, checked_until("2026-11-30"), "certificate"),
        # A need with a last day asks for every day up to it.
        ({"ends_on": "2027-03-31"}, checked_until("2027-03-31"), None),
        ({"ends_on": "2027-03-31"}, checked_until("2027-03-30"), "certificate"),
        # Another kind checked does not stand in.
        ({}, {"certificate_checks": [{"kind": "first_aid", "seen_on": "2026-11-20", "valid_until": "2030-01-01"}]},
         "certificate"),
    ],
)  # fmt: skip
def test_only_a_certificate_the_office_checked_counts_and_on_the_needs_dates(
    schedule: dict, change: dict, rule: str | None
) -> None:
    need = need_from_document(certificate_need(**schedule), BERLIN)
    found = assess(volunteer_from_document(volunteer(**change)), need, MatchContext(date(2026, 11, 25)))
    assert (found if isinstance(found, str) else None) == rule


def test_a_check_that_runs_out_before_today_keeps_a_volunteer_out_whatever_the_need() -> None:
    need = need_from_document(certificate_need(), BERLIN)
    checked = volunteer_from_document(volunteer(**checked_until("2026-12-10")))
    assert not isinstance(assess(checked, need, MatchContext(date(2026, 12, 8))), str)
    assert assess(checked, need, MatchContext(date(2026, 12, 11))) == "certificate"


def test_an_answer_page_speaks_the_volunteers_language_then_the_tenants_then_the_browsers() -> None:
    assert pages.choose_language(None, "uk", "de", "en-GB,en;q=0.9") == "uk"
    assert pages.choose_language("fa", "uk", "de", None) == "fa"
    assert pages.choose_language(None, None, "ar", "tr") == "ar"
    assert pages.choose_language(None, "xx", None, "tr-TR,tr;q=0.9") == "tr"
    assert pages.choose_language(None, None, None, None) == "de"
    html = pages.render(pages.Page(Outcome.NO_LONGER_NEEDED, "ar", tenant_name="<script>"))
    assert '<html lang="ar" dir="rtl">' in html and "<script>" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("language", "title", "direction"),
    [
        ("fa", "این درخواست را می‌پذیرید؟", "rtl"),
        ("tr", "Bu talebi kabul ediyor musunuz?", "ltr"),
        ("uk", "Прийняти запит?", "ltr"),
        ("en", "Accept this request?", "ltr"),
    ],
)
def test_answer_pages_speak_persian_and_turkish_too(language: str, title: str, direction: str) -> None:
    html = pages.render(pages.Page(pages.CONFIRM_ACCEPT, language, choice="accept"))
    assert f'<html lang="{language}" dir="{direction}">' in html and title in html
    assert "Anfrage annehmen?" not in html


def test_every_outcome_has_a_page_in_every_language() -> None:
    for kind in [*pages.STATUS, pages.CONFIRM_ACCEPT, pages.CONFIRM_DECLINE]:
        for language in pages.LANGUAGES[1:]:
            title, text = pages.TEXTS[kind]
            translations = pages.CATALOGUES.translations(language)
            assert translations.gettext(title) != title and translations.gettext(text) != text
