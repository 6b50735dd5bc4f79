"""One builder per event that tests publish, each starting from the contract's example data.

``need_opened(tenant, description="...")`` is the contract's ``NeedOpened.example()`` with a fresh
need id and the given fields replaced (validated as the contract validates them), in an envelope
as its producer would publish it. Service supports wrap these only where they add something real
(a volunteer ``km_north`` of a need, a unique mailbox)."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from lotse_contracts import (
    Envelope,
    MatchProposed,
    NeedOpened,
    NeedStaffed,
    NeedUnstaffed,
    OrganisationRegistered,
    ProposalAccepted,
    TenantOnboarded,
    VolunteerRegistered,
    VolunteerSteppedBack,
    new_event,
)
from lotse_contracts.base import EventData

REGISTRY = "/lotse/registry"
MATCHING = "/lotse/matching"

D = TypeVar("D", bound=EventData)


def example_data(model: type[D], **overrides: Any) -> D:
    """The contract's example with ``overrides`` in place of its fields, validated."""
    return model.model_validate({**dict(model.example()), **overrides})


def event(
    model: type[D], tenant: str, subject: str | uuid.UUID, *, version: int = 1, source: str, **overrides: Any
) -> Envelope[D]:
    return new_event(
        model,
        data=example_data(model, **overrides),
        tenant=tenant,
        subject=subject,
        version=version,
        source=source,
    )


def tenant_onboarded(tenant: str, *, version: int = 1, **overrides: Any) -> Envelope[TenantOnboarded]:
    return event(TenantOnboarded, tenant, tenant, version=version, source=REGISTRY, **overrides)


def organisation_registered(
    tenant: str, organisation_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[OrganisationRegistered]:
    organisation_id = organisation_id or uuid.uuid4()
    return event(
        OrganisationRegistered,
        tenant,
        organisation_id,
        version=version,
        source=REGISTRY,
        organisation_id=organisation_id,
        **overrides,
    )


def volunteer_registered(
    tenant: str, volunteer_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[VolunteerRegistered]:
    volunteer_id = volunteer_id or uuid.uuid4()
    return event(
        VolunteerRegistered,
        tenant,
        volunteer_id,
        version=version,
        source=REGISTRY,
        volunteer_id=volunteer_id,
        **overrides,
    )


def need_opened(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[NeedOpened]:
    need_id = need_id or uuid.uuid4()
    return event(NeedOpened, tenant, need_id, version=version, source=REGISTRY, need_id=need_id, **overrides)


def match_proposed(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[MatchProposed]:
    need_id = need_id or uuid.uuid4()
    overrides.setdefault("proposal_id", uuid.uuid4())
    return event(MatchProposed, tenant, need_id, version=version, source=MATCHING, need_id=need_id, **overrides)


def need_staffed(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[NeedStaffed]:
    need_id = need_id or uuid.uuid4()
    return event(NeedStaffed, tenant, need_id, version=version, source=MATCHING, need_id=need_id, **overrides)


def need_unstaffed(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[NeedUnstaffed]:
    need_id = need_id or uuid.uuid4()
    return event(NeedUnstaffed, tenant, need_id, version=version, source=MATCHING, need_id=need_id, **overrides)


def proposal_accepted(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[ProposalAccepted]:
    need_id = need_id or uuid.uuid4()
    overrides.setdefault("proposal_id", uuid.uuid4())
    return event(ProposalAccepted, tenant, need_id, version=version, source=MATCHING, need_id=need_id, **overrides)


def volunteer_stepped_back(
    tenant: str, need_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
) -> Envelope[VolunteerSteppedBack]:
    need_id = need_id or uuid.uuid4()
    return event(VolunteerSteppedBack, tenant, need_id, version=version, source=MATCHING, need_id=need_id, **overrides)
