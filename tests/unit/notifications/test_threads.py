"""Questions and answers (issue 16, item 5) on the in-memory store, through the real use cases and
the real dispatch table: a question reaches the office's mailbox at once, an answer reaches the
volunteer on every channel they chose (never the text itself), the thread's state follows who
wrote last, the contact person's "mine" comes from the registry's event, and erasure leaves
nothing of a volunteer's threads."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from lotse_contracts import VolunteerContactPersonChanged, VolunteerErased
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue, threads
from lotse_notifications.channels import sms_text
from lotse_notifications.records import Author, MailPreference, OfficeMail, Thread, ThreadMessage, ThreadState
from lotse_notifications.templates import render, sample_facts
from lotse_notifications.threads import Links, ThreadProblem
from lotse_runtime.unit_of_work import Transaction
from tests.support import events
from tests.unit.notifications.fakes import Notifications
from tests.unit.notifications.test_follow_up import OFFICE, TENANT, registration

contact_person_changed = events.Builder(VolunteerContactPersonChanged, events.REGISTRY, "volunteer_id")
volunteer_erased = events.Builder(VolunteerErased, events.REGISTRY, "volunteer_id")
LINKS = Links("https://lotse.musterstadt.example")
SECRET = "Mein Aufenthaltstitel läuft im März ab"  # what the volunteer asks: never in a mail or SMS


@pytest.fixture
async def town() -> Notifications:
    notifications = Notifications()
    await notifications.consume(events.tenant_onboarded(TENANT, default_language="de", coordination_email=OFFICE))
    return notifications


async def _registered(town: Notifications, channels: tuple[str, ...] = ("email", "in_app", "sms")) -> str:
    registered = registration(channels=channels)
    await town.consume(registered)
    return str(registered.data.volunteer_id)


async def _ask(town: Notifications, volunteer_id: str, about: str | None = None) -> Thread:
    async def work(transaction: Transaction) -> Thread:
        return await threads.ask(
            town.store,
            transaction,
            tenant=TENANT,
            volunteer_id=volunteer_id,
            subject="Aufenthalt und Ehrenamt",
            text=SECRET,
            about_need_id=about,
            now=datetime.now(UTC),
            links=LINKS,
        )

    return await town.unit_of_work.run(work)


async def _answer(town: Notifications, thread: Thread, text: str = "Das dürfen Sie, kommen Sie vorbei.") -> Thread:
    async def work(transaction: Transaction) -> Thread:
        return await threads.office_answers(
            town.store,
            transaction,
            tenant=TENANT,
            staff_id="staff-1",
            thread_id=thread.thread_id,
            text=text,
            now=datetime.now(UTC),
            links=LINKS,
        )

    return await town.unit_of_work.run(work)


async def _write(town: Notifications, thread: Thread, volunteer_id: str) -> Thread:
    async def work(transaction: Transaction) -> Thread:
        return await threads.volunteer_writes(
            town.store,
            transaction,
            tenant=TENANT,
            volunteer_id=volunteer_id,
            thread_id=thread.thread_id,
            text="Noch eine Frage dazu.",
            now=datetime.now(UTC),
            links=LINKS,
        )

    return await town.unit_of_work.run(work)


async def _set_state(town: Notifications, thread: Thread, *, closed: bool) -> Thread:
    async def work(transaction: Transaction) -> Thread:
        return await threads.set_state(
            town.store, transaction, tenant=TENANT, thread_id=thread.thread_id, closed=closed
        )

    return await town.unit_of_work.run(work)


def _of_kind(town: Notifications, kind: str) -> list[tuple[str, str, Channel]]:
    return [(d.recipient_kind, d.recipient_id, d.channel) for d in town.store.deliveries if d.kind == kind]


async def test_a_question_is_mailed_to_the_office_at_once_with_its_subject_and_link_but_not_its_text(
    town: Notifications,
) -> None:
    volunteer = await _registered(town)
    # The office chose a daily digest: a question still goes at once (it waits for an answer).
    town.store.set_preference(
        MailPreference(TENANT, "tenant", TENANT, OfficeMail.DAILY_DIGEST, datetime.now(UTC).time(), datetime.now(UTC))
    )
    thread = await _ask(town, volunteer)
    assert thread.state is ThreadState.OPEN and [m.text for m in thread.messages] == [SECRET]
    assert _of_kind(town, catalogue.QUESTION_ASKED) == [(RecipientKind.TENANT.value, TENANT, Channel.EMAIL)]
    (delivery,) = [d for d in town.store.deliveries if d.kind == catalogue.QUESTION_ASKED]
    assert delivery.payload == {
        "thread_id": thread.thread_id,
        "volunteer_id": volunteer,
        "subject": "Aufenthalt und Ehrenamt",
        "link": f"https://lotse.musterstadt.example/console/questions/{thread.thread_id}",
        "first": True,
    }
    assert SECRET not in str(delivery.payload) and town.store.digest_items == []


async def test_an_answer_reaches_the_volunteer_on_each_chosen_channel_and_the_sms_says_only_that_there_is_one(
    town: Notifications,
) -> None:
    volunteer = await _registered(town)
    thread = await _ask(town, volunteer)
    answered = await _answer(town, thread, text=f"Zu {SECRET}: bitte kommen Sie vorbei.")
    assert answered.state is ThreadState.ANSWERED and answered.last_from is Author.OFFICE
    assert sorted(_of_kind(town, catalogue.QUESTION_ANSWERED)) == sorted(
        (RecipientKind.VOLUNTEER.value, volunteer, channel) for channel in (Channel.EMAIL, Channel.IN_APP, Channel.SMS)
    )
    for delivery in town.store.deliveries:
        assert SECRET not in str(delivery.payload)
    facts = replace(sample_facts(catalogue.QUESTION_ANSWERED), payload=town.store.deliveries[-1].payload or {})
    rendered = render(catalogue.QUESTION_ANSWERED, ["de"], facts)
    assert f"https://lotse.musterstadt.example/questions/{thread.thread_id}" in rendered.text
    sms = sms_text(rendered, catalogue.gettext("de", catalogue.SMS_MORE))
    assert "Aufenthalt" not in sms and SECRET not in sms
    assert sms.startswith("Die Koordinationsstelle hat Ihnen geantwortet")


async def test_the_state_follows_who_wrote_last_and_a_closed_question_opens_again_when_the_volunteer_writes(
    town: Notifications,
) -> None:
    volunteer = await _registered(town)
    thread = await _ask(town, volunteer)
    closed = await _set_state(town, await _answer(town, thread), closed=True)
    assert closed.state is ThreadState.CLOSED
    assert (await _set_state(town, closed, closed=False)).state is ThreadState.ANSWERED
    await _set_state(town, closed, closed=True)
    again = await _write(town, thread, volunteer)
    assert again.state is ThreadState.OPEN and len(again.messages) == 3
    asked = [d for d in town.store.deliveries if d.kind == catalogue.QUESTION_ASKED]
    assert [d.payload and d.payload["first"] for d in asked] == [True, False]


async def test_another_volunteer_cannot_write_in_a_thread_and_a_need_must_be_one_of_theirs(
    town: Notifications,
) -> None:
    volunteer, other = await _registered(town), await _registered(town)
    thread = await _ask(town, volunteer)
    with pytest.raises(ThreadProblem) as refused:
        await _write(town, thread, other)
    assert refused.value.status == 404
    with pytest.raises(ThreadProblem) as unknown:
        await _ask(town, volunteer, about=str(uuid.uuid4()))
    assert (unknown.value.status, unknown.value.field) == (422, "about_need_id")
    # Nothing of the refused requests was kept, nor was anyone told.
    assert len(town.store.memory.threads) == 1 and len(_of_kind(town, catalogue.QUESTION_ASKED)) == 1
    proposed = events.match_proposed(TENANT, volunteer_id=uuid.UUID(volunteer))
    await town.consume(proposed)
    about = await _ask(town, volunteer, about=str(proposed.data.need_id))
    assert about.about_need_id == str(proposed.data.need_id)


async def test_a_full_thread_asks_for_a_new_one(town: Notifications) -> None:
    volunteer = await _registered(town)
    thread = await _ask(town, volunteer)
    full = replace(thread, messages=thread.messages * threads.MESSAGES_MAX)
    town.store.memory.threads[(TENANT, thread.thread_id)] = full
    with pytest.raises(ThreadProblem) as refused:
        await _answer(town, full)
    assert refused.value.status == 409


async def test_the_contact_person_comes_from_the_registrys_events_in_order(town: Notifications) -> None:
    volunteer = await _registered(town)
    staff = str(uuid.uuid4())
    await town.consume(contact_person_changed(TENANT, volunteer, version=3, staff_id=staff))
    await town.consume(contact_person_changed(TENANT, volunteer, version=2, staff_id=str(uuid.uuid4())))
    assert town.store.memory.contact_people[(TENANT, volunteer)] == (staff, 3)
    await town.consume(contact_person_changed(TENANT, volunteer, version=4, staff_id=None))
    assert town.store.memory.contact_people[(TENANT, volunteer)] == (None, 4)


async def test_erasure_deletes_the_volunteers_threads_and_cancels_what_is_queued_for_them(town: Notifications) -> None:
    volunteer, other = await _registered(town), await _registered(town)
    await _answer(town, await _ask(town, volunteer))
    kept = await _ask(town, other)
    await town.consume(volunteer_erased(TENANT, volunteer, version=5))
    assert list(town.store.memory.threads.values()) == [kept]
    for delivery in town.store.deliveries:
        if delivery.recipient_id == volunteer:
            assert delivery.payload is None and delivery.status.value == "cancelled"


def test_what_the_volunteer_typed_is_escaped_and_defanged_in_the_office_mail() -> None:
    facts = sample_facts(catalogue.QUESTION_ASKED)
    hostile = '<script>alert(1)</script> <a href="https://evil.example/x">hier</a>'
    rendered = render(catalogue.QUESTION_ASKED, ["de"], replace(facts, payload={**facts.payload, "subject": hostile}))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "https://evil.example" not in rendered.text + rendered.html + rendered.subject
    assert "evil[.]example" in rendered.text
    assert "Maria" in rendered.text  # who asked, as the office may see them


@pytest.mark.parametrize("language", catalogue.LANGUAGES)
def test_both_messages_read_in_every_language(language: str) -> None:
    for kind in (catalogue.QUESTION_ASKED, catalogue.QUESTION_ANSWERED):
        rendered = render(kind, [language], sample_facts(kind))
        assert rendered.language == language and "Versicherung beim Fahrdienst" in rendered.text
        if language != "de":
            german = render(kind, ["de"], sample_facts(kind))
            assert rendered.subject != german.subject


def test_a_thread_goes_into_its_document_and_comes_back_the_same() -> None:
    now = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    message = ThreadMessage("m1", Author.VOLUNTEER, "v1", "Frage\nzweite Zeile", now)
    answer = ThreadMessage("m2", Author.OFFICE, "s1", "Antwort", now)
    thread = Thread(TENANT, "t1", "v1", "Betreff", ThreadState.ANSWERED, now, now, Author.OFFICE, (message, answer))
    document = thread.to_document()
    assert document["_id"] == f"{TENANT}:t1" and "about_need_id" not in document
    assert Thread.from_document(document) == thread
    about = replace(thread, about_need_id="n1")
    assert Thread.from_document(about.to_document()) == about
