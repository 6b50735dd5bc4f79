"""The office's dashboard and a need's page (pure): matching's and the registry's codes said in
words in every language, times in the tenant's zone as the language writes them, the filter form,
who of the office acted, and what the pages show and escape."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from lotse_contracts.events.matching import ReasonCode, WithdrawReason
from lotse_contracts.events.needs import CancellationReason, NeedOutcome
from lotse_contracts.events.partner import DeclineReason
from lotse_contracts.events.values import LanguageLevel
from lotse_matching.api.office import ProposalState
from lotse_matching.office import NextStep, Rule
from lotse_portal import domain, pages
from lotse_portal.api.proposals import DECLINE_REASONS
from lotse_runtime.auth import VOLUNTEER_ID_NAMESPACE
from tests.unit.portal.test_pages import COMMON, HOSTILE

BERLIN = ZoneInfo("Europe/Berlin")
ME = "5b0f7a52-0c55-4b9e-8f0e-1f3d2a6c9e01"
COLLEAGUE = "0d7c1a2e-4f5b-4c6d-9e8f-7a6b5c4d3e2f"
SUMMARY: dict[str, Any] = {
    "need_id": "n1",
    "organisation_id": "o1",
    "category": "translation",
    "description": "Übersetzen beim Elternabend",
    "district": "Mitte",
    "schedule_kind": "one_off",
    "starts_at": "2026-12-03T08:00:00Z",
    "state": "open",
    "escalated": False,
    "volunteers_needed": 2,
    "committed": 1,
    "open_proposals": 2,
    "next_expiry": "2026-12-01T10:30:00Z",
    "next_step": "call_volunteer",
}
DASHBOARD: dict[str, Any] = {
    "generated_at": "2026-12-01T08:00:00Z",
    "not_fully_proposed": [],
    "waiting_for_answers": [SUMMARY],
    "starting_soon": [SUMMARY],
    "unstaffed": [],
    "over": [{**SUMMARY, "need_id": "n2", "next_step": "close", "category": "childcare"}],
    "expiring_proposals": [
        {
            "proposal_id": "p1",
            "need_id": "n1",
            "volunteer_id": "v1",
            "proposed_at": "2026-11-28T10:00:00Z",
            "expires_at": "2026-12-01T10:30:00Z",
            "next_step": "call_volunteer",
        },
        {
            "proposal_id": "p9",
            "need_id": "unlisted",
            "volunteer_id": "v9",
            "proposed_at": "2026-11-28T10:00:00Z",
            "expires_at": "2026-12-01T11:00:00Z",
            "next_step": "call_volunteer",
        },
    ],
}


def _proposal(proposal_id: str, volunteer_id: str, state: str, **extra: Any) -> dict[str, Any]:
    return {
        "proposal_id": proposal_id,
        "volunteer_id": volunteer_id,
        "kind": "proposal",
        "state": state,
        "decline_reason": None,
        "withdraw_reason": None,
        "score": 0.8,
        "distance_km": 2.345,
        "reasons": [{"code": "language", "detail": "speaks Arabic (B2)"}, {"code": "unknown", "detail": "x"}],
        "proposed_at": "2026-11-28T10:00:00Z",
        "expires_at": "2026-12-01T10:30:00Z" if state == "proposed" else None,
        "answered_at": None if state == "proposed" else "2026-11-29T15:45:00Z",
        "answered_via": None,
        "proposed_by": None,
        "recorded_by": None,
        "released_by": None,
        **extra,
    }


STAFFING: dict[str, Any] = {
    "need": SUMMARY,
    "round_started_at": "2026-11-30T09:00:00Z",
    "round_started_by": {"subject": COLLEAGUE, "role": "coordinator"},
    "proposals": [
        _proposal("p1", "v1", "proposed"),
        _proposal(
            "p2",
            "v2",
            "accepted",
            answered_via="coordination_office",
            recorded_by={"subject": ME, "role": "coordinator"},
            proposed_by={"subject": "someone-else", "role": "initiative-admin"},
        ),
        _proposal("p3", "v3", "stepped_back", released_by={"subject": COLLEAGUE, "role": "coordinator"}),
        _proposal("p4", "v4", "declined", decline_reason="not_a_fit", answered_via="volunteer_app"),
        _proposal("p5", "v5", "stepped_back"),
        _proposal("p6", "v1", "withdrawn", withdraw_reason="need_staffed"),
    ],
    "committed": [
        {"volunteer_id": "v2", "kind": "proposal", "proposal_id": "p2", "committed_at": "2026-11-29T15:45:00Z"}
    ],
}
NEED: dict[str, Any] = {
    "need_id": "n1",
    "organisation_id": "o1",
    "category": "translation",
    "description": HOSTILE,
    "status": "cancelled",
    "cancellation_reason": "duplicate",
    "schedule": {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T11:00:00+01:00"},
    "place": {"postcode": "48143", "district": HOSTILE},
    "volunteers_needed": 2,
    "languages": [{"language": "ar", "min_level": "b1"}],
    "required_skills": ["driving", "unknown"],
    "certificate_required": "first_aid",
    "household_ref": HOSTILE,
}


def _(language: str, message: str) -> str:
    return pages.translate(language, message)


# -- every code the services answer in has words in the portal ------------------------------------


@pytest.mark.parametrize(
    ("codes", "words"),
    [
        (NextStep, domain.NEXT_STEPS),
        (Rule, domain.BROKEN_RULES),
        (ReasonCode, domain.OFFICE_REASONS),
        (DeclineReason, domain.OFFICE_DECLINE_REASONS),
        (WithdrawReason, domain.WITHDRAW_REASONS),
        (CancellationReason, domain.CANCELLATION_REASONS),
        (NeedOutcome, domain.NEED_OUTCOMES),
        (ProposalState, domain.OFFICE_PROPOSAL_STATES),
    ],
)
def test_every_code_matching_and_the_registry_answer_in_is_said_in_words(codes: Any, words: dict[str, str]) -> None:
    assert {code.value for code in codes} <= set(words)
    for message in words.values():
        assert all(_(language, message) for language in pages.LANGUAGES)
        assert _("en", message) != message, f"not translated: {message}"


def test_the_volunteers_own_decline_reasons_are_the_ones_matching_takes() -> None:
    # "not_suitable" was sent for "the task does not suit me", and matching refused it (422).
    assert set(DECLINE_REASONS) <= {reason.value for reason in DeclineReason}


# -- the dashboard ------------------------------------------------------------------------------------


def test_the_dashboard_lists_the_most_urgent_first_with_times_in_the_tenants_zone() -> None:
    sections = domain.dashboard_sections(DASHBOARD, "de", BERLIN, {"o1": "Portalia hilft"})
    assert [s.key for s in sections] == [
        "starting_soon",
        "unstaffed",
        "expiring_proposals",
        "not_fully_proposed",
        "waiting_for_answers",
        "over",
    ]
    counts = {s.key: s.count for s in sections}
    assert counts == {
        "starting_soon": 1,
        "unstaffed": 0,
        "expiring_proposals": 2,
        "not_fully_proposed": 0,
        "waiting_for_answers": 1,
        "over": 1,
    }
    card = sections[0].needs[0]
    # 08:00 UTC is 09:00 in Berlin in December; the next step is matching's, as a sentence.
    assert card.starts == "03.12.2026, 09:00"
    assert card.next_expiry == "01.12.2026, 11:30"
    assert card.organisation == "Portalia hilft" and card.district == "Mitte"
    assert (card.needed, card.committed, card.waiting) == (2, 1, 2)
    assert card.next_step == domain.NEXT_STEPS["call_volunteer"]
    assert sections[-1].needs[0].next_step == domain.NEXT_STEPS["close"]
    expiring = sections[2].proposals
    assert [(p.proposal_id, p.category) for p in expiring] == [("p1", "translation"), ("p9", "")]
    assert expiring[0].next_step == domain.NEXT_STEPS["call_volunteer"]


def test_times_and_next_steps_in_other_languages() -> None:
    english = domain.dashboard_sections(DASHBOARD, "en", BERLIN, {})[0].needs[0]
    assert english.starts == "Dec 3, 2026, 9:00\u202fAM"
    assert _("en", english.next_step).startswith("Call the")
    arabic = domain.dashboard_sections(DASHBOARD, "ar", BERLIN, {})[0].needs[0]
    assert arabic.starts == "03\u200f/12\u200f/2026، 9:00 ص"
    # In summer the same UTC hour is an hour later in Berlin.
    summer = domain.dashboard_sections(
        {"starting_soon": [{**SUMMARY, "starts_at": "2026-07-03T08:00:00Z"}]}, "de", BERLIN, {}
    )[0].needs[0]
    assert summer.starts == "03.07.2026, 10:00"


def test_a_need_with_nothing_to_do_has_no_next_step() -> None:
    card = domain.NeedCard.from_json({**SUMMARY, "next_step": None, "next_expiry": None}, "de", BERLIN, {})
    assert card.next_step == "" and card.next_expiry == "" and card.organisation == ""


def test_the_filter_form_keeps_what_is_valid_and_names_what_is_not() -> None:
    filters, errors = domain.read_dashboard_filters(
        {
            "organisation_id": "o1",
            "category": "childcare",
            "district": "  Mitte  Nord ",
            "starts_from": "2026-12-01",
            "starts_until": "2026-12-31",
        },
        {"o1": "Portalia hilft"},
    )
    assert errors == {}
    assert filters.query() == {
        "organisation_id": "o1",
        "category": "childcare",
        "district": "Mitte Nord",
        "starts_from": "2026-12-01",
        "starts_until": "2026-12-31",
    }
    filters, errors = domain.read_dashboard_filters(
        {
            "organisation_id": "elsewhere",
            "category": "cooking",
            "district": "x" * 101,
            "starts_from": "0",
            "starts_until": "2026-02-30",
        },
        {"o1": "Portalia hilft"},
    )
    assert filters == domain.DashboardFilters() and not filters.active
    assert set(errors) == {"organisation_id", "category", "district", "starts_from", "starts_until"}
    filters, errors = domain.read_dashboard_filters({"starts_from": "2026-12-31", "starts_until": "2026-12-01"}, {})
    assert filters.query() == {"starts_from": "2026-12-31"}
    assert errors == {"starts_until": "Das Ende des Zeitraums muss nach seinem Anfang liegen."}
    # An initiative admin is offered no organisation: one given anyway filters nothing.
    filters, errors = domain.read_dashboard_filters({"organisation_id": "o1"}, {})
    assert filters.organisation_id == "" and "organisation_id" in errors


# -- a need's page ------------------------------------------------------------------------------------


def _staffing(language: str = "de", me: str = ME, staff: dict[str, str] | None = None) -> domain.StaffingView:
    people = {
        "v1": domain.VolunteerContact("v1", "Amira Haddad", "", "+491511234567"),
        "v2": domain.VolunteerContact("v2", "Boris Berger", "boris@example.org", ""),
    }
    return domain.StaffingView.from_json(
        STAFFING,
        people,
        language=language,
        zone=BERLIN,
        me=me,
        staff={COLLEAGUE: "Frau Demir"} if staff is None else staff,
        organisations={"o1": "Portalia hilft"},
    )


def test_proposals_are_grouped_by_state_with_reasons_answers_and_who_of_the_office_acted() -> None:
    view = _staffing()
    assert [(g.state, [r.proposal_id for r in g.rows]) for g in view.groups] == [
        ("proposed", ["p1"]),
        ("accepted", ["p2"]),
        ("declined", ["p4"]),
        ("stepped_back", ["p5"]),
        ("released", ["p3"]),
        ("withdrawn", ["p6"]),
    ]
    waiting = view.open_proposals[0]
    assert waiting.volunteer.name == "Amira Haddad" and waiting.volunteer.phone == "+491511234567"
    assert waiting.reasons == (
        domain.ReasonLine(domain.OFFICE_REASONS["language"], "speaks Arabic (B2)"),
        domain.ReasonLine(domain.BROKEN_RULES["other"], "x"),
    )
    assert waiting.distance == "2,3" and waiting.expires == "01.12.2026, 11:30"
    rows = {row.proposal_id: row for group in view.groups for row in group.rows}
    # Recorded by the signed-in coordinator: "you"; proposed by an initiative admin: the role.
    accepted = rows["p2"]
    assert accepted.by_office and accepted.recorded_by == domain.Who(domain.YOU, True)
    assert accepted.answered == "29.11.2026, 16:45"
    assert accepted.proposed_by == domain.Who(domain.ACTOR_ROLES["initiative-admin"], True)
    # Released by a colleague on the staff: by name.
    assert rows["p3"].released_by == domain.Who("Frau Demir", False)
    assert rows["p4"].decline_reason == domain.OFFICE_DECLINE_REASONS["not_a_fit"] and not rows["p4"].by_office
    assert rows["p6"].withdraw_reason == domain.WITHDRAW_REASONS["need_staffed"]
    # Someone the registry does not show is named by the start of their id.
    assert rows["p4"].volunteer == domain.VolunteerContact("v4") and rows["p4"].volunteer.reference == "v4"
    assert view.round_started == "30.11.2026, 10:00" and view.round_started_by == domain.Who("Frau Demir", False)
    assert view.committed == (
        domain.CommittedRow(
            domain.VolunteerContact("v2", "Boris Berger", "boris@example.org", ""), False, "29.11.2026, 16:45"
        ),
    )
    # Without the staff list (an initiative admin may not read it) a colleague is named by role.
    assert _staffing(staff={}).round_started_by == domain.Who(domain.ACTOR_ROLES["coordinator"], True)


def test_who_acted_finds_staff_by_the_id_the_registry_derives_from_the_subject() -> None:
    import uuid

    staff = {COLLEAGUE: "Frau Demir", str(uuid.uuid5(VOLUNTEER_ID_NAMESPACE, "https://id.example#42")): "Herr Kaya"}
    data = {
        "round_started_by": {"subject": "42", "role": "coordinator"},
        "proposals": [{"recorded_by": {"subject": COLLEAGUE.upper(), "role": "coordinator"}}],
    }
    assert domain.actor_names(data, staff, "https://id.example") == {"42": "Herr Kaya", COLLEAGUE.upper(): "Frau Demir"}


def test_the_need_is_described_from_the_registry_in_the_persons_language() -> None:
    need = domain.NeedFacts.from_json(NEED, "de", BERLIN, lambda text: text, {"driving": "Autofahren"})
    assert need.when == "03.12.2026, 09:00\u201311:00 Uhr"
    assert need.languages == ((domain.SPOKEN_LANGUAGES["ar"], domain.LEVELS[LanguageLevel.B1]),)
    assert need.skills == ("Autofahren", "unknown") and need.certificate == domain.CERTIFICATES["first_aid"]
    assert need.ended_because == domain.CANCELLATION_REASONS["duplicate"] and not need.is_open
    english = domain.NeedFacts.from_json({**NEED, "status": "staffed"}, "en", BERLIN, lambda text: text, {})
    assert english.when == "Dec 3, 2026, 9:00\u2009\u2013\u200911:00\u202fAM"
    assert english.is_open


def test_a_check_names_each_broken_rule_and_fits_only_without_one() -> None:
    check = domain.CandidateCheck.from_json(
        {
            "volunteer_id": "v5",
            "fits": False,
            "broken_rules": [{"rule": "languages", "detail": "Arabic B1 needed, speaks none"}, {"rule": "new_rule"}],
            "score": None,
            "distance_km": None,
            "reasons": [],
        },
        "de",
    )
    assert not check.fits
    assert check.broken == (
        domain.ReasonLine(domain.BROKEN_RULES["languages"], "Arabic B1 needed, speaks none"),
        domain.ReasonLine(domain.BROKEN_RULES["other"], ""),
    )
    fits = domain.CandidateCheck.from_json(
        {
            "volunteer_id": "v6",
            "fits": True,
            "broken_rules": [],
            "distance_km": 1.25,
            "reasons": [{"code": "distance"}],
        },
        "en",
    )
    assert fits.fits and fits.distance == "1.2" and fits.reasons[0].label == domain.OFFICE_REASONS["distance"]


def test_refusals_are_said_by_matchings_outcome_else_by_status() -> None:
    assert domain.office_refusal(409, "expired") == domain.OFFICE_REFUSALS["expired"]
    assert domain.office_refusal(409, "") == domain.OFFICE_REFUSALS["need_over"]  # the registry: need is over
    assert domain.office_refusal(422, "") == domain.REFUSED_OTHERWISE


def test_a_form_key_is_fresh_per_form_and_only_a_well_formed_one_is_sent() -> None:
    first, second = domain.new_form_key(), domain.new_form_key()
    assert first != second
    assert domain.form_key(domain.FormData([("idempotency_key", first)])) == first
    assert domain.form_key(domain.FormData([("idempotency_key", "short")])) is None
    assert domain.form_key(domain.FormData([("idempotency_key", "x" * 20 + "\n")])) == "x" * 20  # stripped
    assert domain.form_key(domain.FormData([("idempotency_key", "a b" * 10)])) is None


# -- the pages --------------------------------------------------------------------------------------


def _need_page(language: str, **extra: Any) -> str:
    context = {
        **COMMON,
        "is_coordinator": True,
        "user": COMMON["user"],
        "need": domain.NeedFacts.from_json({**NEED, "status": "open"}, language, BERLIN, lambda text: text, {}),
        "organisation": HOSTILE,
        "staffing": _staffing(language),
        "errors": {},
        "form_key": domain.new_form_key,
        "decline_reasons": domain.OFFICE_DECLINE_REASONS,
        "cancellation_reasons": domain.CANCELLATION_REASONS,
        "outcomes": domain.NEED_OUTCOMES,
        "proposal_states": domain.OFFICE_PROPOSAL_STATES,
        **extra,
    }
    return pages.render(language, "office_need.html", context)


def test_the_need_page_offers_the_office_its_actions_each_with_a_key_of_its_own() -> None:
    html = _need_page("de")
    assert html.count('action="/console/needs/n1/proposals/p1/answer"') == 2
    assert 'action="/console/needs/n1/committed/v2/release"' in html
    assert 'action="/console/needs/n1/rounds"' in html and 'href="/console/needs/n1/propose"' in html
    assert 'action="/console/needs/n1/cancellation"' in html and 'action="/console/needs/n1/closing"' in html
    import re

    keys = re.findall(r'name="idempotency_key" value="([^"]+)"', html)
    assert len(keys) == 6 and len(set(keys)) == 6
    assert "Telefonisch oder persönlich beantwortet, eingetragen von Ihnen am 29.11.2026, 16:45." in html
    assert 'href="tel:+491511234567"' in html and 'href="mailto:boris@example.org"' in html
    assert '<span class="detail" lang="en" dir="ltr">(speaks Arabic (B2))</span>' in html
    # A need that is over: no actions at all.
    closed = _need_page("de", need=domain.NeedFacts.from_json(NEED, "de", BERLIN, lambda text: text, {}))
    assert "/answer" not in closed and "/release" not in closed and "/cancellation" not in closed


def test_a_refusal_stands_next_to_the_control_that_was_used() -> None:
    html = _need_page("uk", errors={"answer-p1": domain.OFFICE_REFUSALS["expired"], "release-v2": "x"})
    assert f'id="answer-p1-error" role="alert">{_("uk", domain.OFFICE_REFUSALS["expired"])}</p>' in html
    assert html.index('id="proposal-p1"') < html.index('id="answer-p1-error"') < html.index("/proposals/p1/answer")
    assert 'aria-invalid="true" aria-describedby="release-v2-error"' in html and "<details open>" in html


def test_the_check_page_offers_proposing_only_without_a_broken_rule() -> None:
    person = domain.VolunteerContact("v5", HOSTILE)
    broken = domain.CandidateCheck("v5", False, (domain.ReasonLine(domain.BROKEN_RULES["languages"], HOSTILE),), (), "")
    context = {
        **COMMON,
        "need_id": "n1",
        "category": "translation",
        "person": person,
        "refusal": "",
        "form_key": domain.new_form_key,
    }
    html = pages.render("de", "office_check.html", {**context, "result": broken})
    assert "Spricht die gebrauchte Sprache nicht gut genug." in html
    assert 'method="post"' not in html.split("<main", 1)[1] and HOSTILE not in html
    fits = domain.CandidateCheck(
        "v5", True, (), (domain.ReasonLine(domain.OFFICE_REASONS["distance"], "1.2 km away"),), "1,2"
    )
    html = pages.render("de", "office_check.html", {**context, "result": fits})
    assert 'action="/console/needs/n1/propose/v5"' in html and "Jetzt vorschlagen" in html
