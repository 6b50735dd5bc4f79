"""Answer links across matching and notifications on the real broker, database and SMTP sink:
only the volunteer's mail holds the link. Matching publishes proposals without one, notifications
signs it into the mail when it sends it (and stores and publishes it nowhere), and the mailed link
answers the proposal at matching.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from lotse_contracts import Envelope, VolunteerRegistered, new_event, topics_for_tenants
from lotse_contracts.topics import DELIVERIES, PROPOSALS
from lotse_devstack import Stack, ensure_topics
from lotse_devstack.smtp_sink import SmtpSink
from tests.integration.matching import support as matching_side
from tests.integration.notifications import support as notifications_side
from tests.support import events
from tests.support.waiting import eventually

EMAIL = f"lena.{uuid.uuid4().hex[:8]}@example.org"


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def volunteer(tenant: str) -> Envelope[Any]:
    """A volunteer both services know, reachable by email and in the app."""
    registered = matching_side.registered(tenant)
    data = registered.data.model_dump(mode="json")
    data["contact"] |= {"email": EMAIL, "channels": ["email", "in_app"]}
    return new_event(
        data=VolunteerRegistered.model_validate(data),
        tenant=tenant,
        subject=registered.subject,
        version=1,
        source=matching_side.REGISTRY,
    )


async def test_only_the_mail_holds_the_answer_link_and_the_mailed_link_answers_the_proposal(
    stack: Stack, smtp_sink: SmtpSink
) -> None:
    prefix = f"al{uuid.uuid4().hex[:6]}"
    tenant = f"{prefix}-town"
    await ensure_topics(stack.kafka_bootstrap, topics_for_tenants([tenant]))
    shared = matching_side.ANSWER_LINK_SECRET
    matching_settings = matching_side.service_settings(stack, prefix, answer_link_secret=shared)
    notifications_settings = notifications_side.service_settings(
        stack, smtp_sink, prefix, answer_link_secret=shared, answer_link_base_url="http://matching.test"
    )
    person, need = volunteer(tenant), matching_side.opened(tenant)

    topics = [PROPOSALS.name, DELIVERIES.name]
    async with (
        matching_side.serving(matching_side.RunningMatching, stack, matching_settings, topics, prefix) as matching,
        notifications_side.serving(notifications_side.Running, stack, notifications_settings, prefix) as notifications,
    ):
        # The need's owner, an initiative with a mailbox of its own: the volunteer's contact after a yes.
        owner = events.organisation_registered(
            tenant, matching_side.ORGANISATION, name="Willkommen Mitte", contact_email=f"mitte@{tenant}.example"
        )
        await notifications.publish(matching_side.tenant_event(tenant), owner, person)
        await eventually(
            lambda: matching.store.organisation(tenant, matching_side.ORGANISATION, None),
            timeout=60,
            what="matching knows the initiative",
        )
        await eventually(
            lambda: matching.store.volunteer(tenant, person.subject), timeout=60, what="matching knows Lena"
        )
        await notifications.publish(need)

        mail = await notifications_side.wait_for_mail(smtp_sink, EMAIL, "match_proposed", timeout=60)

        async def proposed() -> list[Envelope[Any]]:
            return [e for e in matching.reader.events(tenant, need.subject) if e.type.endswith(".proposed.v1")]

        # The test's reader of the topic may see the proposal after notifications mailed it.
        (proposal,) = await eventually(proposed, what="the test's reader saw the proposal")
        accept, decline = notifications_side.mailed_answer_links(mail, proposal, notifications_settings)
        token = notifications_side.answer_tokens([accept])[0]

        # The mailed link works at matching: the page asks, the button answers.
        link = urlsplit(accept)
        page = await matching.http.get(f"{link.path}?{link.query}")
        assert page.status_code == 200 and '<form method="post">' in page.text
        answered = await matching.http.post(link.path, data={"choice": "accept"})
        assert answered.status_code == 200 and "Vielen Dank" in answered.text
        assert f"Willkommen Mitte, mitte@{tenant}.example" in answered.text  # whom to ask about it

        async def accepted() -> list[Envelope[Any]]:
            return [e for e in matching.reader.events(tenant, need.subject) if e.type.endswith(".accepted.v1")]

        await eventually(accepted, what="the proposal accepted through the mailed link")

        async def in_app_message() -> Any:
            return await notifications.database.messages.find_one({"tenant": tenant, "kind": "match_proposed"})

        message = await eventually(in_app_message, what="the proposal in the app inbox")
        # The confirmation mail names the same contact (notifications reads the owner itself).
        confirmation = await notifications_side.wait_for_mail(smtp_sink, EMAIL, "proposal_accepted", timeout=60)
        assert f"Willkommen Mitte, mitte@{tenant}.example" in confirmation["text"]
        # In the app the volunteer answers with their login; a stored link would outlive the mail.
        assert "/answers/" not in json.dumps(message, default=str)

        # Nothing on the topics, read from the beginning, carries a link: not matching's proposals,
        # not notifications' delivery outcomes.
        seen = [record for record in list(matching.reader.seen) if record.topic in (PROPOSALS.name, DELIVERIES.name)]
        assert any(record.topic == DELIVERIES.name for record in seen)
        for record in seen:
            assert b"/answers/" not in record.value and token.encode() not in record.value
        assert proposal.data.accept_url is None and proposal.data.decline_url is None

        # Nor does anything notifications keeps (delivery log, payloads, inbox, in-app messages, outbox).
        database = notifications.database
        for name in await database.list_collection_names():
            async for document in database[name].find({}):
                text = json.dumps(document, default=str, ensure_ascii=False)
                assert token not in text and "/answers/" not in text, name
        assert decline != accept
