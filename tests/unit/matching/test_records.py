"""The typed records of needs, staffing and proposals read and write the documents as they are
stored today: the same fields, in the same order, with the same values of the same types.

The documents below are the shapes earlier versions wrote (the dictionaries of `domain.py` and
`service.py` before the records, and what the erasure's `$set` leaves), so existing data keeps
working and a changed shape fails here first.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lotse_contracts.events.matching import AnswerChannel, MatchReason, ReasonCode, UnstaffedReason, WithdrawReason
from lotse_contracts.events.partner import DeclineReason
from lotse_matching.domain import new_staffing
from lotse_matching.settings import MatchingSettings
from lotse_matching.store import (
    Actor,
    NeedRecord,
    NeedStatus,
    Proposal,
    ProposalKind,
    ProposalStatus,
    Staffing,
    StaffingState,
)

AT = datetime(2026, 11, 25, 9, tzinfo=UTC)
NEED_ID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
VOLUNTEER_ID = "8c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
DETAILS: dict[str, Any] = {
    "organisation_id": "3f2b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e01",
    "category": "accompaniment_to_authorities",
    "description": "Begleitung zur Ausländerbehörde",
    "required_skills": ["accompaniment"],
    "languages": [{"language": "ar", "min_level": "b2"}],
    "place": {"point": {"lat": 52.52, "lon": 13.405}, "postcode": "12345", "district": "Mitte"},
    "schedule": {"kind": "one_off", "start": "2026-12-03T09:00:00+01:00", "end": "2026-12-03T12:00:00+01:00"},
    "volunteers_needed": 2,
    "certificate_required": None,
    "household_ref": "hh-7f3k9q2a",
}


def need(**staffing: Any) -> dict[str, Any]:
    """A need as `put_need` stores it (MongoDB puts `_id` first)."""
    return {
        "_id": f"musterstadt:{NEED_ID}",
        "tenant": "musterstadt",
        "need_id": NEED_ID,
        "version": 3,
        "status": "open",
        "details": copy.deepcopy(DETAILS),
        "staffing": {
            "version": 4,
            "state": "open",
            "committed": [VOLUNTEER_ID],
            "opened_at": AT,
            "escalate_at": AT + timedelta(days=7),
            "escalate_reason": "proposals_expired",
            "escalated": False,
            **staffing,
        },
    }


def proposal(**changes: Any) -> dict[str, Any]:
    """A proposal as `NeedWork._propose` stored it; answers changed fields in place."""
    document = {
        "_id": "0f1e2d3c-4b5a-4697-8877-665544332211",
        "tenant": "musterstadt",
        "need_id": NEED_ID,
        "volunteer_id": VOLUNTEER_ID,
        "kind": "proposal",
        "status": "open",
        "score": 0.8123,
        "reasons": [
            {"code": "distance", "detail": "1.2 km away"},
            {"code": "language", "detail": "speaks Arabic (C1)"},
        ],
        "distance_km": 1.2,
        "proposed_at": AT,
        "expires_at": AT + timedelta(hours=72),
        "answered_at": None,
        "answered_via": None,
        "event_id": "9a8b7c6d-5e4f-4321-8fed-cba987654321",
    }
    document.update(changes)  # existing fields keep their place, new ones come last
    return document


def pick(**changes: Any) -> dict[str, Any]:
    """A volunteer's pick as `NeedWork.pick` stored it: no score, distance or event."""
    document = {
        "_id": "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
        "tenant": "musterstadt",
        "need_id": NEED_ID,
        "volunteer_id": VOLUNTEER_ID,
        "kind": "pick",
        "status": "accepted",
        "reasons": [],
        "proposed_at": AT,
        "expires_at": None,
        "answered_at": AT,
        "answered_via": "volunteer_app",
    }
    document.update(changes)
    return document


OFFICE = {"subject": "office-1", "role": "coordinator"}
# What erase_from_proposals' $set leaves.
ERASED: dict[str, Any] = {"reasons": [], "distance_km": None, "score": None, "erased": True}
NEEDS = {
    "open": need(),
    "staffed": need(state="staffed", committed=[VOLUNTEER_ID, "2b3c4d5e-6f70-4a1b-8c2d-3e4f5a6b7c8d"]),
    "escalated": need(state="unstaffed", committed=[], escalated=True, escalate_reason="start_approaching"),
    "closed": {**need(state="closed"), "status": "cancelled"},
    "new round": need(round_started_at=AT, round_started_by={"subject": "office-1", "role": "coordinator"}),
}
PROPOSALS = {
    "open": proposal(),
    "accepted": proposal(status="accepted", answered_at=AT, answered_via="partner"),
    "declined": proposal(status="declined", answered_at=AT, answered_via="volunteer_app"),
    "expired": proposal(status="expired", answered_at=AT),
    "withdrawn": proposal(status="withdrawn", answered_at=AT, withdraw_reason="need_staffed"),
    "stepped back": proposal(status="stepped_back", answered_at=AT, answered_via="volunteer_app"),
    "erased": proposal(status="withdrawn", answered_at=AT, withdraw_reason="volunteer_withdrawn", **ERASED),
    "without event id": {k: v for k, v in proposal().items() if k != "event_id"},
    "pick": pick(),
    "stepped back pick": pick(status="stepped_back"),
    # The office's hand: its actors and a decline's reason come last, once they are set.
    "proposed by the office": proposal(proposed_by=OFFICE),
    "declined by phone": proposal(
        status="declined",
        answered_at=AT,
        answered_via="coordination_office",
        decline_reason="no_time",
        recorded_by=OFFICE,
    ),
    "released": pick(status="stepped_back", released_by={"subject": "admin-7", "role": "initiative-admin"}),
}


def same(written: Any, stored: Any, where: str = "document") -> None:
    """Equal values of the same types, dictionaries with their fields in the same order (BSON
    keeps the order; a StrEnum where a string was would still compare equal)."""
    assert type(written) is type(stored), f"{where}: {type(written).__name__} for {type(stored).__name__}"
    if isinstance(stored, dict):
        assert list(written) == list(stored), f"{where}: fields {list(written)} for {list(stored)}"
        for key in stored:
            same(written[key], stored[key], f"{where}.{key}")
    elif isinstance(stored, list):
        assert len(written) == len(stored), where
        for n, (left, right) in enumerate(zip(written, stored, strict=True)):
            same(left, right, f"{where}[{n}]")
    else:
        assert written == stored, f"{where}: {written!r} for {stored!r}"


@pytest.mark.parametrize("name", NEEDS)
def test_a_need_round_trips_as_stored(name: str) -> None:
    stored = NEEDS[name]
    record = NeedRecord.from_document(copy.deepcopy(stored))
    same(record.to_document(), stored)
    assert NeedRecord.from_document(record.to_document()) == record


def test_a_need_record_has_typed_fields() -> None:
    record = NeedRecord.from_document(NEEDS["escalated"])
    assert record.status is NeedStatus.OPEN and record.staffing.state is StaffingState.UNSTAFFED
    assert record.staffing.escalate_reason is UnstaffedReason.START_APPROACHING and record.staffing.escalated
    assert record.volunteers_needed == 2 and record.organisation_id == DETAILS["organisation_id"]
    assert not NeedRecord.from_document(NEEDS["staffed"]).is_open and NeedRecord.from_document(NEEDS["open"]).is_open
    assert not NeedRecord.from_document(NEEDS["closed"]).is_open


@pytest.mark.parametrize("name", PROPOSALS)
def test_a_proposal_round_trips_as_stored(name: str) -> None:
    stored = PROPOSALS[name]
    record = Proposal.from_document(copy.deepcopy(stored))
    same(record.to_document(), stored)
    assert Proposal.from_document(record.to_document()) == record


def test_an_erased_pick_keeps_its_fields_and_values() -> None:
    # The erasure's $set appends the fields a pick lacks; MongoDB decides their order, the record
    # writes them where a proposal has them. Names and values stay.
    stored = pick(status="stepped_back", **ERASED)
    written = Proposal.from_document(copy.deepcopy(stored)).to_document()
    assert written == stored and sorted(written) == sorted(stored)


def test_a_proposal_record_has_typed_fields() -> None:
    record = Proposal.from_document(PROPOSALS["withdrawn"])
    assert (record.kind, record.status, record.withdraw_reason) == (
        ProposalKind.PROPOSAL,
        ProposalStatus.WITHDRAWN,
        WithdrawReason.NEED_STAFFED,
    )
    assert record.reasons[0] == MatchReason(code=ReasonCode.DISTANCE, detail="1.2 km away")
    assert Proposal.from_document(PROPOSALS["accepted"]).answered_via is AnswerChannel.PARTNER
    assert Proposal.from_document(PROPOSALS["pick"]).score is None


def test_the_office_s_hand_is_typed() -> None:
    declined = Proposal.from_document(PROPOSALS["declined by phone"])
    assert (declined.decline_reason, declined.recorded_by, declined.answered_via) == (
        DeclineReason.NO_TIME,
        Actor("office-1", "coordinator"),
        AnswerChannel.COORDINATION_OFFICE,
    )
    assert Proposal.from_document(PROPOSALS["open"]).proposed_by is None
    staffing = NeedRecord.from_document(NEEDS["new round"]).staffing
    assert (staffing.round_started_at, staffing.round_started_by) == (AT, Actor("office-1", "coordinator"))


def test_a_field_this_version_does_not_know_is_refused_rather_than_dropped() -> None:
    with pytest.raises(ValueError, match="answer_url"):
        Proposal.from_document({**proposal(), "answer_url": "https://example.org"})
    with pytest.raises(ValueError, match="note"):
        NeedRecord.from_document({**need(), "staffing": {**need()["staffing"], "note": "x"}})


def test_a_new_staffing_is_stored_as_before() -> None:
    settings = MatchingSettings(unstaffed_after_seconds=7 * 24 * 3600, start_lead_seconds=24 * 3600)
    staffing = new_staffing(DETAILS, AT, settings, "musterstadt")
    same(
        staffing.to_document(),
        {
            "version": 0,
            "state": "open",
            "committed": [],
            "opened_at": AT,
            # The one-off need starts on 3 December at 9:00 (8:00 UTC): a day before that comes first.
            "escalate_at": datetime(2026, 12, 2, 8, tzinfo=UTC),
            "escalate_reason": "start_approaching",
            "escalated": False,
        },
    )
    assert Staffing.from_document(staffing.to_document()) == staffing
