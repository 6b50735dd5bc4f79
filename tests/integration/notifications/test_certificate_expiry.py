"""A checked certificate that runs out (issue 16): the registry's notice becomes a mail to the
volunteer, asking for a new one in their language, and one to the office and the volunteer's
organisation naming the volunteer; on the real broker, database and SMTP sink."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from lotse_contracts import Envelope, VolunteerCertificateExpiring, VolunteerRegistered
from lotse_devstack import Stack
from lotse_devstack.smtp_sink import SmtpSink
from lotse_notifications import catalogue
from tests.integration.notifications.support import Running, onboarded, service_settings, serving, wait_for_mail
from tests.support import events

pytestmark = pytest.mark.asyncio(loop_scope="module")

certificate_expiring = events.Builder(VolunteerCertificateExpiring, events.REGISTRY, "volunteer_id")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def service(stack: Stack, smtp_sink: SmtpSink) -> AsyncIterator[Running]:
    prefix = f"x{uuid.uuid4().hex[:6]}"
    async with serving(Running, stack, service_settings(stack, smtp_sink, prefix), prefix) as running:
        yield running


def volunteer(tenant: str, organisation: Envelope[Any], language: str) -> Envelope[VolunteerRegistered]:
    example = VolunteerRegistered.example()
    contact = example.contact.model_dump(mode="json") | {
        "display_name": "Amira",
        "email": f"v{uuid.uuid4().hex[:12]}@example.org",
        "preferred_language": language,
        "channels": ["email"],
    }
    return events.volunteer_registered(tenant, contact=contact, organisation_id=organisation.data.organisation_id)


async def test_the_volunteer_the_office_and_their_organisation_are_told_before_a_certificate_runs_out(
    service: Running, smtp_sink: SmtpSink
) -> None:
    tenant = service.new_tenant()
    organisation = events.organisation_registered(
        tenant, name="Willkommen Mitte e. V.", contact_email=f"initiative@{tenant}.example"
    )
    registered = volunteer(tenant, organisation, "en")
    await service.applied(tenant, onboarded(tenant), organisation, registered)
    volunteer_id = registered.data.volunteer_id

    await service.publish(
        certificate_expiring(
            tenant,
            volunteer_id,
            version=4,
            kind="extended_police_certificate",
            valid_until="2027-03-01",
            weeks_before=8,
        )
    )

    mine = await wait_for_mail(smtp_sink, registered.data.contact.email, catalogue.CERTIFICATE_EXPIRING)
    # A long subject is folded on the wire; the sink reads it back with the fold's space.
    assert (
        " ".join(mine["subject"].split())
        == "Your certificate is valid only until Mar 1, 2027: extended police certificate"
    )
    assert "please show us a new one in good time" in mine["text"]
    office = await wait_for_mail(smtp_sink, f"office@{tenant}.example", catalogue.CERTIFICATE_EXPIRING_OFFICE)
    assert " ".join(office["subject"].split()) == "Nachweis läuft ab: erweitertes Führungszeugnis von Amira"
    assert "gilt nur noch bis 01.03.2027" in office["text"] and str(volunteer_id) in office["text"]
    # The office coordinates the organisation's volunteers with it, but their address is the
    # organisation's to see (the registry's rule): the organisation's mail has it.
    assert registered.data.contact.email not in office["text"]
    own = await wait_for_mail(smtp_sink, f"initiative@{tenant}.example", catalogue.CERTIFICATE_EXPIRING_OFFICE)
    assert registered.data.contact.email in own["text"]
