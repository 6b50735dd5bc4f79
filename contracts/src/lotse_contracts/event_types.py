"""The registry of event types: CloudEvents `type` -> data model.

The list is written out (not discovered) so that adding an event is a
deliberate change that the compatibility check and the topic catalogue see.
"""

from __future__ import annotations

from lotse_contracts.base import EventData
from lotse_contracts.events import (
    matching,
    needs,
    notifications,
    organisations,
    partner,
    person_keys,
    tenants,
    volunteers,
)

_MODELS: tuple[type[EventData], ...] = (
    tenants.TenantOnboarded,
    organisations.OrganisationRegistered,
    organisations.OrganisationUpdated,
    volunteers.VolunteerRegistered,
    volunteers.VolunteerProfileUpdated,
    volunteers.VolunteerRegisteredSealed,
    volunteers.VolunteerProfileUpdatedSealed,
    volunteers.VolunteerRegisteredFullySealed,
    volunteers.VolunteerProfileUpdatedFullySealed,
    volunteers.VolunteerAvailabilityChanged,
    volunteers.VolunteerAvailabilityChangedSealed,
    volunteers.VolunteerWithdrawn,
    volunteers.VolunteerErased,
    volunteers.VolunteerCertificateChecked,
    volunteers.VolunteerCertificateCheckRevoked,
    volunteers.VolunteerCertificateExpiring,
    volunteers.VolunteerContactPersonChanged,
    person_keys.PersonKeyIssued,
    needs.NeedOpened,
    needs.NeedUpdated,
    needs.NeedCancelled,
    needs.NeedClosed,
    partner.ReportNeed,
    partner.UpdateNeed,
    partner.CancelNeed,
    partner.RegisterVolunteer,
    partner.AcceptProposal,
    partner.DeclineProposal,
    matching.MatchProposed,
    matching.MatchProposedSealed,
    matching.ProposalAccepted,
    matching.ProposalDeclined,
    matching.ProposalExpired,
    matching.ProposalWithdrawn,
    matching.VolunteerSteppedBack,
    matching.VolunteerPickedNeed,
    matching.NeedStaffed,
    matching.NeedUnstaffed,
    notifications.NotificationSent,
    notifications.NotificationFailed,
)

EVENT_TYPES: dict[str, type[EventData]] = {model.event_type: model for model in _MODELS}
