"""Questions and answers (issue 16, item 5, the "Lotsenfunktion"): a volunteer asks the
coordination office in a thread, the office answers there, and each new message tells the other
side through the delivery queue.

Why here: notifications already owns what reaches a person (their channels, quiet hours and
language, the office's mailbox, the in-app inbox), and a thread is a conversation between the
same two sides; the registry keeps who is whose contact person and tells us by event.

Each use case runs in one unit of work: the thread's change and the deliveries it causes commit
together, so a message is never stored without word to the other side, nor the word queued for a
message that was not stored. The messages themselves never travel: a mail or an SMS says that
there is something to read, its subject and where (the portal's page), and the text stays in
Lotse, where only the volunteer and the office read it.

Who reads what: the volunteer their own threads; coordinators every thread of their
municipality (the volunteer's named contact person finds theirs under "mine"). Initiative
admins read none: the volunteer asks the coordination office, and what someone asks about
their residence, their health or the authorities is not their initiative's business unless the
office passes it on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from lotse_contracts import Envelope, VolunteerContactPersonChanged
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue, domain
from lotse_notifications.records import Author, Thread, ThreadMessage, ThreadState
from lotse_notifications.service import queue_for_volunteer
from lotse_notifications.store import UseCaseStore
from lotse_runtime.unit_of_work import Transaction

SUBJECT_MAX = 150
TEXT_MAX = 2000  # the portal's forms take 2,000 characters a field
# A thread holds this many messages at most; then the volunteer opens a new one (a document stays small).
MESSAGES_MAX = 200


class ThreadProblem(Exception):
    """A refusal the caller can act on: ``field`` names the part of the request (None: the thread)."""

    def __init__(self, status: int, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.field = status, title, detail, field


@dataclass(frozen=True)
class Links:
    """Where each side reads a thread: the portal's pages, or None where its address is not set."""

    portal_url: str | None

    def volunteer(self, thread_id: str) -> str | None:
        return f"{self.portal_url.rstrip('/')}/questions/{thread_id}" if self.portal_url else None

    def office(self, thread_id: str) -> str | None:
        return f"{self.portal_url.rstrip('/')}/console/questions/{thread_id}" if self.portal_url else None


async def contact_person_changed(
    store: UseCaseStore, event: Envelope[VolunteerContactPersonChanged], transaction: Transaction
) -> None:
    """Whose contact person at the office the volunteer is: the office's "mine" list of questions."""
    staff_id = str(event.data.staff_id) if event.data.staff_id else None
    await store.set_contact_person(event.tenant, str(event.data.volunteer_id), staff_id, event.version, transaction)


async def ask(
    store: UseCaseStore,
    transaction: Transaction,
    *,
    tenant: str,
    volunteer_id: str,
    subject: str,
    text: str,
    about_need_id: str | None,
    now: datetime,
    links: Links,
) -> Thread:
    """A volunteer opens a thread with their question; the office is told."""
    if about_need_id is not None and not await store.has_proposal(tenant, volunteer_id, about_need_id, transaction):
        raise ThreadProblem(422, "Invalid request", "about_need_id: not one of your needs", field="about_need_id")
    message = ThreadMessage(str(uuid.uuid4()), Author.VOLUNTEER, volunteer_id, text, now)
    thread = Thread(
        tenant=tenant,
        thread_id=str(uuid.uuid4()),
        volunteer_id=volunteer_id,
        subject=subject,
        state=ThreadState.OPEN,
        created_at=now,
        last_activity_at=now,
        last_from=Author.VOLUNTEER,
        messages=(message,),
        about_need_id=about_need_id,
    )
    await store.open_thread(thread, transaction)
    await _tell_office(store, thread, message, transaction, links=links, first=True)
    return thread


async def volunteer_writes(
    store: UseCaseStore,
    transaction: Transaction,
    *,
    tenant: str,
    volunteer_id: str,
    thread_id: str,
    text: str,
    now: datetime,
    links: Links,
) -> Thread:
    """The volunteer adds to their thread: it waits for the office again (a closed one reopens:
    a question must not get lost in a thread nobody looks at)."""
    thread = await store.thread(tenant, thread_id, transaction)
    if thread is None or thread.volunteer_id != volunteer_id:
        raise ThreadProblem(404, "Not found", "no such thread")
    message = ThreadMessage(str(uuid.uuid4()), Author.VOLUNTEER, volunteer_id, text, now)
    changed = await _append(store, thread, message, ThreadState.OPEN, transaction)
    await _tell_office(store, changed, message, transaction, links=links, first=False)
    return changed


async def office_answers(
    store: UseCaseStore,
    transaction: Transaction,
    *,
    tenant: str,
    staff_id: str,
    thread_id: str,
    text: str,
    now: datetime,
    links: Links,
) -> Thread:
    """Someone of the office answers: the thread is answered, and the volunteer is told on their
    channels (quiet hours and language theirs, as every message to them)."""
    thread = await store.thread(tenant, thread_id, transaction)
    if thread is None:
        raise ThreadProblem(404, "Not found", "no such thread")
    message = ThreadMessage(str(uuid.uuid4()), Author.OFFICE, staff_id, text, now)
    changed = await _append(store, thread, message, ThreadState.ANSWERED, transaction)
    await queue_for_volunteer(
        store,
        transaction,
        tenant=tenant,
        volunteer_id=thread.volunteer_id,
        kind=catalogue.QUESTION_ANSWERED,
        payload=domain.question_payload(
            thread.thread_id, thread.volunteer_id, thread.subject, links.volunteer(thread.thread_id)
        ),
        trigger=message.message_id,
        correlation_id=message.message_id,
    )
    return changed


async def set_state(
    store: UseCaseStore, transaction: Transaction, *, tenant: str, thread_id: str, closed: bool
) -> Thread:
    """The office closes a thread (done) or reopens it: reopened, it waits for whoever is to
    write next (the office if the volunteer wrote last, else the volunteer)."""
    thread = await store.thread(tenant, thread_id, transaction)
    if thread is None:
        raise ThreadProblem(404, "Not found", "no such thread")
    if closed:
        state = ThreadState.CLOSED
    else:
        state = ThreadState.OPEN if thread.last_from is Author.VOLUNTEER else ThreadState.ANSWERED
    if state is thread.state:
        return thread
    changed = await store.set_thread_state(tenant, thread_id, state, transaction)
    if changed is None:
        raise ThreadProblem(404, "Not found", "no such thread")
    return changed


async def _append(
    store: UseCaseStore, thread: Thread, message: ThreadMessage, state: ThreadState, transaction: Transaction
) -> Thread:
    if len(thread.messages) >= MESSAGES_MAX:
        raise ThreadProblem(409, "Thread full", f"a thread holds {MESSAGES_MAX} messages; please open a new one")
    changed = await store.add_thread_message(thread.tenant, thread.thread_id, message, state, transaction)
    if changed is None:
        raise ThreadProblem(404, "Not found", "no such thread")
    return changed


async def _tell_office(
    store: UseCaseStore,
    thread: Thread,
    message: ThreadMessage,
    transaction: Transaction,
    *,
    links: Links,
    first: bool,
) -> None:
    """An email to the coordination office's mailbox, straight away: a question waits for an
    answer, so it is not folded into a daily digest (like a certificate running out). The staff's
    own work addresses stay in the registry (staff have no events), so the volunteer's contact
    person finds their questions in the console under "mine"."""
    facts = await store.tenant(thread.tenant, transaction)
    await store.add_delivery(
        transaction,
        tenant=thread.tenant,
        trigger_event_id=message.message_id,
        correlation_id=message.message_id,
        kind=catalogue.QUESTION_ASKED,
        recipient_kind=RecipientKind.TENANT.value,
        recipient_id=thread.tenant,
        channel=Channel.EMAIL,
        language=(facts.default_language if facts else None) or "de",
        payload=domain.question_payload(
            thread.thread_id, thread.volunteer_id, thread.subject, links.office(thread.thread_id), first=first
        ),
    )
