"""Questions to the coordination office (issue 16, item 5, the "Lotsenfunktion"), the volunteer's
side: their questions, a form to ask, and each question's page with the answers and a reply
form. Notifications keeps the threads and tells the office; the page names the volunteer's
contact person where the registry has one."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import Visit, VolunteerVisit, token
from lotse_portal.api.profile import tenant_facts
from lotse_portal.api.start import volunteer_profile
from lotse_portal.backends import BackendProblem, QuestionCalls, Service
from lotse_portal.domain import FormResult, NeedChoice, QuestionThread
from lotse_runtime.i18n import N_

router = APIRouter()

ASKED = N_("Ihre Frage ist bei der Koordinationsstelle angekommen. Sie lesen die Antwort hier und bekommen Bescheid.")
REPLIED = N_("Ihre Nachricht ist bei der Koordinationsstelle angekommen.")
TOO_MANY = N_("Sie haben gerade viele Nachrichten geschrieben. Bitte warten Sie einige Minuten.")
CHECK = N_("Bitte prüfen Sie diese Angabe.")


def calls(current: Visit) -> QuestionCalls:
    return QuestionCalls(current.portal.backends, token(current))


def thread_id_of(value: str) -> str | None:
    """A thread's id as a path segment: a UUID and nothing else reaches the service."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def refusal(problem: BackendProblem, result: FormResult, fields: tuple[str, ...]) -> None:
    """What notifications refused, said next to the field (a full thread or the post limit above the form)."""
    if problem.status == 429:
        result.errors["form"] = TOO_MANY
    elif problem.status == 409:
        result.errors["form"] = N_("Diese Frage hat sehr viele Nachrichten. Bitte stellen Sie eine neue Frage.")
    elif problem.status == 422:
        for name in problem.fields or {"form": ""}:
            result.errors[name if name in fields else "form"] = CHECK
    else:
        raise problem


async def zone(current: Visit) -> ZoneInfo:
    return ZoneInfo((await tenant_facts(current)).timezone)


@router.get("/questions")
async def questions(current: VolunteerVisit) -> Response:
    return await _list(current, {}, {})


@router.post("/questions")
async def ask(current: VolunteerVisit) -> Response:
    form = await current.form()
    needs = await need_choices(current)
    result = domain.read_question_form(form, with_subject=True, needs={choice.need_id for choice in needs})
    if result.valid:
        try:
            created = await calls(current).ask(result.body)
        except BackendProblem as problem:
            refusal(problem, result, ("subject", "text", "about_need_id"))
        else:
            return await current.redirect(f"/questions/{created['id']}", flash=ASKED)
    return await _list(current, dict(form), result.errors, status=422, needs=needs)


@router.get("/questions/{thread_id}")
async def thread(current: VolunteerVisit, thread_id: str) -> Response:
    return await _thread(current, thread_id, {}, {})


@router.post("/questions/{thread_id}/messages")
async def reply(current: VolunteerVisit, thread_id: str) -> Response:
    form = await current.form()
    found = thread_id_of(thread_id)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    result = domain.read_question_form(form, with_subject=False)
    if result.valid:
        try:
            await calls(current).write(found, result.body["text"])
        except BackendProblem as problem:
            if problem.status == 404:
                return await current.page("error.html", status=404, problem="not_found")
            refusal(problem, result, ("text",))
        else:
            return await current.redirect(f"/questions/{found}#reply", flash=REPLIED)
    return await _thread(current, found, dict(form), result.errors, status=422)


async def _list(
    current: VolunteerVisit,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    needs: list[NeedChoice] | None = None,
) -> Response:
    where = await zone(current)
    found = [QuestionThread.from_json(item, current.language, where) for item in await calls(current).mine()]
    return await current.page(
        "questions.html",
        status=status,
        threads=found,
        contact_person=await _contact_person(current),
        needs=needs if needs is not None else await need_choices(current),
        values=values,
        errors=errors,
        subject_max=domain.QUESTION_SUBJECT_MAX,
        text_max=domain.QUESTION_TEXT_MAX,
    )


async def _thread(
    current: VolunteerVisit, thread_id: str, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    found = thread_id_of(thread_id)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    try:
        answer = await calls(current).my_thread(found)
    except BackendProblem as problem:
        if problem.status == 404:
            return await current.page("error.html", status=404, problem="not_found")
        raise
    thread = QuestionThread.from_json(answer, current.language, await zone(current))
    about = None
    if thread.about_need_id is not None:
        about = next((c for c in await need_choices(current) if c.need_id == thread.about_need_id), None)
    return await current.page(
        "question.html",
        status=status,
        thread=thread,
        about=about,
        contact_person=await _contact_person(current),
        values=values,
        errors=errors,
        text_max=domain.QUESTION_TEXT_MAX,
    )


async def _contact_person(current: VolunteerVisit) -> str | None:
    """The name of the volunteer's contact person at the office, if the registry names one."""
    profile: dict[str, Any] | None = await volunteer_profile(current)
    person = (profile or {}).get("contact_person") or {}
    name = person.get("name") if isinstance(person, dict) else None
    return name if isinstance(name, str) and name else None


async def need_choices(current: VolunteerVisit) -> list[NeedChoice]:
    """The volunteer's needs a question may be about: those proposed to them and those they took on."""
    found = await current.portal.backends.get(Service.MATCHING, "/volunteers/me/proposals", token(current))
    return domain.need_choices(found if isinstance(found, list) else [])
