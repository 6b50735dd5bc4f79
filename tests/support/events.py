"""One builder per event that tests publish, each starting from the contract's example data.

``need_opened(tenant, description="...")`` is the contract's ``NeedOpened.example()`` with a fresh
need id and the given fields replaced (validated as the contract validates them), in an envelope
as its producer would publish it. Service supports wrap these only where they add something real
(a volunteer ``km_north`` of a need, a unique mailbox)."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

from lotse_contracts import (
    AcceptProposal,
    CancelNeed,
    DeclineProposal,
    Envelope,
    MatchProposed,
    NeedOpened,
    NeedStaffed,
    NeedUnstaffed,
    OrganisationRegistered,
    ProposalAccepted,
    RegisterVolunteer,
    ReportNeed,
    TenantOnboarded,
    UpdateNeed,
    VolunteerRegistered,
    VolunteerSteppedBack,
    new_event,
)
from lotse_contracts.base import Contract, EventData

REGISTRY = "/lotse/registry"
MATCHING = "/lotse/matching"

D = TypeVar("D", bound=EventData)
C = TypeVar("C", bound=Contract)


def example_data(model: type[C], **overrides: Any) -> C:
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


class Builder(Generic[D]):
    """Builds events of one class about one aggregate: the subject is the aggregate's id (field
    ``id_field``, fresh unless given), ``fresh`` names further id fields that get a fresh value."""

    def __init__(self, model: type[D], source: str, id_field: str, *fresh: str) -> None:
        self.model, self.source, self.id_field, self.fresh = model, source, id_field, fresh

    def __call__(
        self, tenant: str, aggregate_id: str | uuid.UUID | None = None, *, version: int = 1, **overrides: Any
    ) -> Envelope[D]:
        aggregate_id = aggregate_id or uuid.uuid4()
        for name in self.fresh:
            overrides.setdefault(name, uuid.uuid4())
        overrides[self.id_field] = aggregate_id
        return event(self.model, tenant, aggregate_id, version=version, source=self.source, **overrides)


organisation_registered = Builder(OrganisationRegistered, REGISTRY, "organisation_id")
volunteer_registered = Builder(VolunteerRegistered, REGISTRY, "volunteer_id")
need_opened = Builder(NeedOpened, REGISTRY, "need_id")
match_proposed = Builder(MatchProposed, MATCHING, "need_id", "proposal_id")
proposal_accepted = Builder(ProposalAccepted, MATCHING, "need_id", "proposal_id")
volunteer_stepped_back = Builder(VolunteerSteppedBack, MATCHING, "need_id")
need_staffed = Builder(NeedStaffed, MATCHING, "need_id")
need_unstaffed = Builder(NeedUnstaffed, MATCHING, "need_id")


def partner_source(tenant: str, system: str = "case-management") -> str:
    """Where a partner system's commands come from: its municipality and the system's name."""
    return f"/partners/{tenant}/{system}"


class PartnerCommand(Generic[D]):
    """Builds a partner system's commands of one class: the subject is the command's reference
    (the contract's ``subject_field``: the partner's own reference or a proposal id), the
    source names the tenant and the partner system."""

    def __init__(self, model: type[D]) -> None:
        assert model.subject_field, model
        self.model, self.ref_field = model, model.subject_field

    def __call__(
        self,
        tenant: str,
        ref: str | uuid.UUID,
        *,
        version: int = 1,
        system: str = "case-management",
        **overrides: Any,
    ) -> Envelope[D]:
        overrides[self.ref_field] = ref
        return event(self.model, tenant, ref, version=version, source=partner_source(tenant, system), **overrides)


report_need = PartnerCommand(ReportNeed)
update_need = PartnerCommand(UpdateNeed)
cancel_need = PartnerCommand(CancelNeed)
# Refused on the inbound topic (over HTTPS only): for the tests of that refusal.
register_volunteer = PartnerCommand(RegisterVolunteer)
accept_proposal = PartnerCommand(AcceptProposal)
decline_proposal = PartnerCommand(DeclineProposal)
