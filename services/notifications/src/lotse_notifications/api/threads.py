"""Questions and answers: a volunteer's threads with the coordination office (volunteers under
``/me/threads``, coordinators under ``/threads``; see ``lotse_notifications.threads`` for who
reads what and why). Texts are plain text, limited in length, and every page and mail escapes
them; each person may post a limited number of messages per window (429 beyond it)."""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator

from lotse_notifications import threads
from lotse_notifications.api.access import NOT_FOUND, Coordinator, StoreDep, Volunteer
from lotse_notifications.records import Author, Thread, ThreadMessage, ThreadState
from lotse_notifications.store import Store
from lotse_notifications.threads import SUBJECT_MAX, TEXT_MAX, Links, ThreadProblem
from lotse_runtime.auth import Principal, tenant_of
from lotse_runtime.problems import Problem, problem_responses
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

# Control characters other than line breaks and tabs have no place in a question (and some
# would confuse a mail header or a terminal); they are refused, not silently dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u2028\u2029]")
WRITE_RESPONSES = problem_responses(404, 409, 422, 429)


def _plain(value: str, *, limit: int, single_line: bool) -> str:
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _CONTROL.search(value) or (single_line and "\n" in value):
        raise ValueError("plain text only" + (", on one line" if single_line else ""))
    if not value:
        raise ValueError("must not be empty")
    if len(value) > limit:
        raise ValueError(f"at most {limit} characters")
    return value


class NewThread(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(
        min_length=1,
        max_length=SUBJECT_MAX,
        description=f"What the question is about, one line of plain text (at most {SUBJECT_MAX} characters)",
        examples=["Bin ich beim Fahrdienst versichert?"],
    )
    text: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description=f"The question, plain text (at most {TEXT_MAX} characters)",
        examples=["Ich fahre nächste Woche zum ersten Mal eine Familie zur Ausländerbehörde."],
    )
    about_need_id: UUID | None = Field(
        None, description="One of the volunteer's needs (proposed to them or taken on) the question is about"
    )

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _plain(value, limit=SUBJECT_MAX, single_line=True)

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _plain(value, limit=TEXT_MAX, single_line=False)


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description=f"Plain text (at most {TEXT_MAX} characters)",
        examples=["Vielen Dank!"],
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return _plain(value, limit=TEXT_MAX, single_line=False)


class MessageView(BaseModel):
    id: str
    author: Author = Field(description="volunteer or office")
    author_id: str | None = Field(None, description="Who of the office wrote it (the office's view only)")
    text: str
    created_at: datetime


class ThreadView(BaseModel):
    id: str
    subject: str
    state: ThreadState
    about_need_id: str | None = None
    created_at: datetime
    last_activity_at: datetime
    last_from: Author
    message_count: int
    messages: list[MessageView] | None = Field(None, description="Absent in lists unless asked for")
    volunteer_id: str | None = Field(None, description="The office's view only")
    volunteer_name: str | None = Field(None, description="The office's view only; absent if not known")
    contact_person_id: str | None = Field(None, description="The volunteer's contact person (office's view only)")
    mine: bool | None = Field(None, description="Whether the caller is the volunteer's contact person (office)")


class ThreadPage(BaseModel):
    items: list[ThreadView]
    total: int
    limit: int
    offset: int


router = APIRouter(tags=["questions"])


# --- the volunteer ------------------------------------------------------------------------------


@router.get("/me/threads", summary="My questions to the coordination office, the latest activity first")
async def my_threads(
    principal: Volunteer,
    store: StoreDep,
    include: Annotated[Literal["messages"] | None, Query(description="messages: each with its messages")] = None,
) -> list[ThreadView]:
    found = await store.threads_of_volunteer(tenant_of(principal), principal.volunteer_id)
    return [_view(thread, messages=include == "messages") for thread in found]


@router.post(
    "/me/threads", status_code=201, responses=WRITE_RESPONSES, summary="Ask the coordination office a question"
)
async def ask(body: NewThread, principal: Volunteer, request: Request, store: StoreDep) -> ThreadView:
    tenant, me = tenant_of(principal), principal.volunteer_id
    now = await _count_post(request, store, tenant, me)
    about = str(body.about_need_id) if body.about_need_id else None

    async def work(transaction: Transaction) -> Thread:
        return await threads.ask(
            store,
            transaction,
            tenant=tenant,
            volunteer_id=me,
            subject=body.subject,
            text=body.text,
            about_need_id=about,
            now=now,
            links=_links(request),
        )

    return _view(await _run(request, work), messages=True)


@router.get("/me/threads/{thread_id}", responses=NOT_FOUND, summary="One of my questions with every message")
async def my_thread(thread_id: UUID, principal: Volunteer, store: StoreDep) -> ThreadView:
    return _view(await _my_thread(store, principal, thread_id), messages=True)


@router.get("/me/threads/{thread_id}/messages", responses=NOT_FOUND, summary="The messages of one of my questions")
async def my_messages(thread_id: UUID, principal: Volunteer, store: StoreDep) -> list[MessageView]:
    thread = await _my_thread(store, principal, thread_id)
    return [_message(message, office=False) for message in thread.messages]


@router.post(
    "/me/threads/{thread_id}/messages",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Write again in one of my questions (a closed one is opened again)",
)
async def write(
    thread_id: UUID, body: NewMessage, principal: Volunteer, request: Request, store: StoreDep
) -> ThreadView:
    tenant, me = tenant_of(principal), principal.volunteer_id
    await _my_thread(store, principal, thread_id)  # 404 before a post is counted
    now = await _count_post(request, store, tenant, me)

    async def work(transaction: Transaction) -> Thread:
        return await threads.volunteer_writes(
            store,
            transaction,
            tenant=tenant,
            volunteer_id=me,
            thread_id=str(thread_id),
            text=body.text,
            now=now,
            links=_links(request),
        )

    return _view(await _run(request, work), messages=True)


# --- the coordination office ----------------------------------------------------------------------


@router.get("/threads", summary="The municipality's questions, the latest activity first (coordinators)")
async def office_threads(
    principal: Coordinator,
    store: StoreDep,
    state: Annotated[list[ThreadState] | None, Query(description="open, answered, closed; absent: all")] = None,
    mine: Annotated[bool, Query(description="Only the volunteers whose contact person I am")] = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> ThreadPage:
    tenant, me = tenant_of(principal), principal.volunteer_id
    volunteers = await store.volunteers_of_contact_person(tenant, me) if mine else None
    found, total = await store.threads(
        tenant, states=state or list(ThreadState), volunteer_ids=volunteers, limit=limit, offset=offset
    )
    ids = sorted({thread.volunteer_id for thread in found})
    names, people = await store.display_names(tenant, ids), await store.contact_people(tenant, ids)
    items = [_office_view(thread, names, people, me, messages=False) for thread in found]
    return ThreadPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/threads/{thread_id}", responses=NOT_FOUND, summary="One question with every message (coordinators)")
async def office_thread(thread_id: UUID, principal: Coordinator, store: StoreDep) -> ThreadView:
    tenant = tenant_of(principal)
    thread = await store.thread(tenant, str(thread_id))
    if thread is None:
        raise Problem(404, "Not found", "no such thread")
    return await _office_answer(store, thread, principal)


@router.post(
    "/threads/{thread_id}/messages",
    status_code=201,
    responses=WRITE_RESPONSES,
    summary="Answer a question (coordinators); the volunteer is told on their channels",
)
async def answer(
    thread_id: UUID, body: NewMessage, principal: Coordinator, request: Request, store: StoreDep
) -> ThreadView:
    tenant, me = tenant_of(principal), principal.volunteer_id
    if await store.thread(tenant, str(thread_id)) is None:
        raise Problem(404, "Not found", "no such thread")
    now = await _count_post(request, store, tenant, me)

    async def work(transaction: Transaction) -> Thread:
        return await threads.office_answers(
            store,
            transaction,
            tenant=tenant,
            staff_id=me,
            thread_id=str(thread_id),
            text=body.text,
            now=now,
            links=_links(request),
        )

    return await _office_answer(store, await _run(request, work), principal)


@router.post("/threads/{thread_id}/closing", responses=NOT_FOUND, summary="Close a question: done (coordinators)")
async def close(thread_id: UUID, principal: Coordinator, request: Request, store: StoreDep) -> ThreadView:
    return await _set_state(thread_id, principal, request, store, closed=True)


@router.post(
    "/threads/{thread_id}/reopening", responses=NOT_FOUND, summary="Open a closed question again (coordinators)"
)
async def reopen(thread_id: UUID, principal: Coordinator, request: Request, store: StoreDep) -> ThreadView:
    return await _set_state(thread_id, principal, request, store, closed=False)


# --- helpers ------------------------------------------------------------------------------------


async def _set_state(
    thread_id: UUID, principal: Principal, request: Request, store: Store, *, closed: bool
) -> ThreadView:
    tenant = tenant_of(principal)

    async def work(transaction: Transaction) -> Thread:
        return await threads.set_state(store, transaction, tenant=tenant, thread_id=str(thread_id), closed=closed)

    return await _office_answer(store, await _run(request, work), principal)


async def _my_thread(store: Store, principal: Principal, thread_id: UUID) -> Thread:
    """The caller's own thread; another volunteer's answers 404 as one that does not exist."""
    thread = await store.thread(tenant_of(principal), str(thread_id))
    if thread is None or thread.volunteer_id != principal.volunteer_id:
        raise Problem(404, "Not found", "no such thread")
    return thread


async def _run(request: Request, work: Callable[[Transaction], Awaitable[Thread]]) -> Thread:
    unit_of_work: UnitOfWork = request.app.state.unit_of_work
    wake = request.app.state.worker.wake

    async def with_wake(transaction: Transaction) -> Thread:
        transaction.after_commit(wake)  # the deliveries it queued go out now, not at the next poll
        return await work(transaction)

    try:
        return await unit_of_work.run(with_wake)
    except ThreadProblem as problem:
        errors = [{"field": problem.field, "message": problem.detail}] if problem.field else None
        extensions = {"errors": errors} if errors else {}
        raise Problem(problem.status, problem.title, problem.detail, **extensions) from problem


async def _count_post(request: Request, store: Store, tenant: str, author_id: str) -> datetime:
    """Count this post against the person's allowance; 429 with Retry-After beyond it."""
    settings = request.app.state.settings
    now = datetime.now(UTC)
    window = timedelta(seconds=settings.thread_post_window_seconds)
    if await store.count_post(tenant, author_id, now, window) > settings.thread_post_limit:
        seconds = window.total_seconds()
        wait = math.ceil(seconds - now.timestamp() % seconds)
        raise HTTPException(429, "Too many messages; please wait a little", headers={"Retry-After": str(wait)})
    return now


def _links(request: Request) -> Links:
    return Links(request.app.state.settings.portal_url)


def _message(message: ThreadMessage, *, office: bool) -> MessageView:
    """A message; who of the office wrote it is the office's business (the volunteer reads "the office")."""
    author_id = message.author_id if office and message.author is Author.OFFICE else None
    return MessageView(
        id=message.message_id,
        author=message.author,
        author_id=author_id,
        text=message.text,
        created_at=message.created_at,
    )


def _view(thread: Thread, *, messages: bool, office: bool = False) -> ThreadView:
    return ThreadView(
        id=thread.thread_id,
        subject=thread.subject,
        state=thread.state,
        about_need_id=thread.about_need_id,
        created_at=thread.created_at,
        last_activity_at=thread.last_activity_at,
        last_from=thread.last_from,
        message_count=len(thread.messages),
        messages=[_message(message, office=office) for message in thread.messages] if messages else None,
    )


def _office_view(
    thread: Thread, names: dict[str, str], people: dict[str, str], me: str, *, messages: bool
) -> ThreadView:
    contact_person = people.get(thread.volunteer_id)
    return _view(thread, messages=messages, office=True).model_copy(
        update={
            "volunteer_id": thread.volunteer_id,
            "volunteer_name": names.get(thread.volunteer_id),
            "contact_person_id": contact_person,
            "mine": contact_person == me,
        }
    )


async def _office_answer(store: Store, thread: Thread, principal: Principal) -> ThreadView:
    tenant, ids = tenant_of(principal), [thread.volunteer_id]
    names, people = await store.display_names(tenant, ids), await store.contact_people(tenant, ids)
    return _office_view(thread, names, people, principal.volunteer_id, messages=True)
