"""Pure registry rules: need status transitions, who may do what, what each caller sees."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from faststream._internal.utils.path import Address
from faststream.kafka.subscriber.usecase import KAFKA_ADDRESS_SYNTAX

from lotse_contracts import PARTNER_INBOUND_PATTERN, tenant_of_partner_topic
from lotse_registry import domain
from lotse_registry.domain import DomainError, NeedStatus, VolunteerStatus
from lotse_registry.store import TenantScope, decode_cursor, encode_cursor
from lotse_runtime.auth import Principal, Role

ORG = "3f2b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e01"
OTHER_ORG = "9a9b6c1e-8d4a-4a57-9b0e-2c6f1d7a9e02"
VOLUNTEER_ID = "8c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
TODAY_FOR_VIEWS = date(2026, 11, 25)


def who(*roles: Role, subject: str = "someone", org: str | None = None) -> Principal:
    return Principal(subject=subject, tenant="musterstadt", roles=frozenset(roles), organisation=org)


def volunteer(organisation_id: str | None = ORG, status: str = VolunteerStatus.ACTIVE) -> dict[str, Any]:
    return {
        "_id": VOLUNTEER_ID,
        "organisation_id": organisation_id,
        "status": status,
        "contact": {"display_name": "Maria", "email": "maria@example.org", "phone": "+4915112345678"},
        "home_area": {"postcode": "10115"},
        "skills": ["driving"],
        "languages": [],
        "version": 3,
    }


def need(status: str = NeedStatus.OPEN, committed: list[str] | None = None) -> dict[str, Any]:
    return {
        "_id": "n1",
        "tenant": "musterstadt",
        "organisation_id": ORG,
        "status": status,
        "household_ref": "hh-7f3k9q2a",
        "place": {"point": {"lat": 52.52, "lon": 13.405}, "postcode": "10178", "district": "Mitte"},
        "committed": committed or [],
    }


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (NeedStatus.OPEN, NeedStatus.STAFFED, True),
        (NeedStatus.OPEN, NeedStatus.CANCELLED, True),
        (NeedStatus.OPEN, NeedStatus.CLOSED, True),
        (NeedStatus.STAFFED, NeedStatus.CLOSED, True),
        (NeedStatus.STAFFED, NeedStatus.CANCELLED, True),
        (NeedStatus.STAFFED, NeedStatus.OPEN, True),
        (NeedStatus.CLOSED, NeedStatus.OPEN, False),
        (NeedStatus.CLOSED, NeedStatus.CANCELLED, False),
        (NeedStatus.CANCELLED, NeedStatus.OPEN, False),
        (NeedStatus.CANCELLED, NeedStatus.CLOSED, False),
        (NeedStatus.OPEN, NeedStatus.OPEN, False),
    ],
)
def test_need_status_transitions(current: NeedStatus, target: NeedStatus, allowed: bool) -> None:
    assert domain.can_transition(current, target) is allowed


def test_a_need_that_is_over_cannot_change_and_says_so_with_409() -> None:
    with pytest.raises(DomainError) as raised:
        domain.require_transition("closed", NeedStatus.CANCELLED)
    assert raised.value.status == 409
    with pytest.raises(DomainError):
        domain.require_editable_need("cancelled")
    domain.require_editable_need("staffed")


def test_only_active_volunteers_change() -> None:
    domain.require_active(VolunteerStatus.ACTIVE)
    for status in (VolunteerStatus.WITHDRAWN, VolunteerStatus.ERASED):
        with pytest.raises(DomainError):
            domain.require_active(status)


def test_the_skill_catalogue_is_the_base_plus_the_tenants_extras() -> None:
    assert domain.unknown_skills(["driving", "bicycle_repair"], ["bicycle_repair"]) == []
    assert domain.unknown_skills(["driving", "bicycle_repair", "juggling"], []) == ["bicycle_repair", "juggling"]


def test_initiative_admins_manage_only_their_own_organisation() -> None:
    admin = who(Role.INITIATIVE_ADMIN, org=ORG)
    assert domain.manages_organisation(admin, ORG)
    assert not domain.manages_organisation(admin, OTHER_ORG)
    assert not domain.manages_organisation(admin, None)
    assert domain.manages_organisation(who(Role.COORDINATOR), OTHER_ORG)
    assert not domain.manages_organisation(who(Role.VOLUNTEER), ORG)
    assert not domain.manages_organisation(who(Role.PARTNER), ORG)


def test_a_volunteer_reads_and_edits_only_their_own_profile() -> None:
    assert domain.may_read_volunteer(who(Role.VOLUNTEER, subject=VOLUNTEER_ID), volunteer())
    assert domain.may_edit_volunteer(who(Role.VOLUNTEER, subject=VOLUNTEER_ID), volunteer())
    assert not domain.may_read_volunteer(who(Role.VOLUNTEER, subject="another"), volunteer())
    assert domain.may_read_volunteer(who(Role.INITIATIVE_ADMIN, org=ORG), volunteer())
    assert not domain.may_read_volunteer(who(Role.INITIATIVE_ADMIN, org=OTHER_ORG), volunteer())
    assert not domain.may_read_volunteer(who(Role.PARTNER), volunteer())


def test_erasure_is_for_the_volunteer_or_the_coordination_office() -> None:
    assert domain.may_erase_volunteer(who(Role.VOLUNTEER, subject=VOLUNTEER_ID), volunteer())
    assert domain.may_erase_volunteer(who(Role.COORDINATOR), volunteer())
    assert not domain.may_erase_volunteer(who(Role.INITIATIVE_ADMIN, org=ORG), volunteer())
    assert not domain.may_erase_volunteer(who(Role.VOLUNTEER, subject="another"), volunteer())


@pytest.mark.parametrize(
    ("principal", "organisation_id", "sees"),
    [
        (who(Role.VOLUNTEER, subject=VOLUNTEER_ID), ORG, True),
        (who(Role.INITIATIVE_ADMIN, org=ORG), ORG, True),
        (who(Role.INITIATIVE_ADMIN, org=OTHER_ORG), ORG, False),
        (who(Role.COORDINATOR), None, True),  # registered directly with the municipality
        (who(Role.COORDINATOR), ORG, False),  # the initiative manages its own volunteers
        (who(Role.PARTNER), None, False),
    ],
)
def test_contact_details_only_for_those_who_need_them(
    principal: Principal, organisation_id: str | None, sees: bool
) -> None:
    subject = volunteer(organisation_id)
    assert domain.may_see_contact(principal, subject) is sees
    view = domain.volunteer_view(principal, subject, in_list=False, today=TODAY_FOR_VIEWS)
    assert ("contact" in view) is sees
    assert ("home_area" in view) is sees
    if sees:
        assert view["contact"]["email"] == "maria@example.org"


def test_lists_never_carry_email_phone_or_home_area() -> None:
    for principal in (who(Role.INITIATIVE_ADMIN, org=ORG), who(Role.COORDINATOR)):
        for organisation_id in (ORG, None):
            view = domain.volunteer_view(principal, volunteer(organisation_id), in_list=True, today=TODAY_FOR_VIEWS)
            text = repr(view)
            assert "maria@example.org" not in text
            assert "+4915112345678" not in text
            assert "10115" not in text


def test_an_erased_volunteer_shows_nothing_but_its_status() -> None:
    erased = {"_id": VOLUNTEER_ID, "status": VolunteerStatus.ERASED, "version": 5}
    assert domain.volunteer_view(who(Role.COORDINATOR), erased, in_list=False, today=TODAY_FOR_VIEWS) == {
        "volunteer_id": VOLUNTEER_ID,
        "status": "erased",
        "version": 5,
    }


def test_volunteers_see_open_needs_and_their_own_but_never_the_household() -> None:
    me = who(Role.VOLUNTEER, subject=VOLUNTEER_ID)
    assert domain.may_read_need(me, need())
    assert not domain.may_read_need(me, need(NeedStatus.STAFFED))
    assert domain.may_read_need(me, need(NeedStatus.STAFFED, committed=[VOLUNTEER_ID]))
    assert "household_ref" not in domain.need_view(me, need())
    assert domain.need_view(who(Role.COORDINATOR), need())["household_ref"] == "hh-7f3k9q2a"
    assert domain.need_view(who(Role.INITIATIVE_ADMIN, org=ORG), need())["household_ref"] == "hh-7f3k9q2a"
    assert "household_ref" not in domain.need_view(who(Role.INITIATIVE_ADMIN, org=OTHER_ORG), need())
    assert not domain.may_read_need(who(Role.INITIATIVE_ADMIN, org=OTHER_ORG), need(NeedStatus.STAFFED))


def test_a_volunteer_reads_a_needs_district_until_committed_and_its_exact_place_then() -> None:
    me = who(Role.VOLUNTEER, subject=VOLUNTEER_ID)
    exact = need()["place"]
    assert exact["point"] and exact["district"]
    assert domain.need_view(me, need())["place"] == {"district": exact["district"]}
    assert domain.need_view(me, need(NeedStatus.STAFFED, committed=[VOLUNTEER_ID]))["place"] == exact
    for owner in (who(Role.COORDINATOR), who(Role.INITIATIVE_ADMIN, org=ORG), who(Role.PARTNER)):
        assert domain.need_view(owner, need())["place"] == exact
    assert domain.need_view(who(Role.INITIATIVE_ADMIN, org=OTHER_ORG), need())["place"] == {
        "district": exact["district"]
    }


def test_a_tenant_scope_adds_its_tenant_and_refuses_another() -> None:
    scope = TenantScope(database=None, tenant="musterstadt", session=None)  # type: ignore[arg-type]
    assert scope.scoped({"_id": "x"}) == {"_id": "x", "tenant": "musterstadt"}
    assert scope.scoped({"tenant": "musterstadt"}) == {"tenant": "musterstadt"}
    with pytest.raises(ValueError):
        scope.scoped({"tenant": "othertown"})
    with pytest.raises(ValueError):
        scope._collection("outbox")


def test_a_cursor_round_trips() -> None:
    created = datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC)
    assert decode_cursor(encode_cursor({"created_at": created, "_id": "abc"})) == (created, "abc")


def test_faststream_hands_the_partner_pattern_to_the_broker_unchanged() -> None:
    # FastStream reads `{name}` in a pattern as a path parameter; `{1,39}` is none, so the
    # anchored regex reaches aiokafka as it is, and the `.dlq` topics stay outside it.
    address = Address(PARTNER_INBOUND_PATTERN, KAFKA_ADDRESS_SYNTAX)
    assert address.broker_address == PARTNER_INBOUND_PATTERN
    assert address.regex is None
    import re

    assert re.match(address.broker_address, "lotse.partner.musterstadt.inbound.v1")
    assert not re.match(address.broker_address, "lotse.partner.musterstadt.inbound.v1.dlq")
    assert tenant_of_partner_topic("lotse.partner.musterstadt.inbound.v1") == "musterstadt"
