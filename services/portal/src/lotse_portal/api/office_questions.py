"""Questions to the coordination office (issue 16, item 5), the office's side: the console's
"Fragen" lists the municipality's questions, those waiting for an answer first, and "mine" the
ones of the volunteers whose contact person the coordinator is; a question's page shows every
message, a reply form, and closes or reopens it. Coordinators only: the volunteer asked the
coordination office, not their initiative (notifications refuses initiative admins as well)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import domain
from lotse_portal.api.access import CoordinatorVisit
from lotse_portal.api.questions import calls, refusal, thread_id_of, zone
from lotse_portal.backends import BackendProblem
from lotse_portal.domain import QuestionThread
from lotse_runtime.i18n import N_

router = APIRouter()


@dataclass(frozen=True)
class QuestionSection:
    """One list of the console's questions page."""

    key: str
    title: str
    empty: str
    threads: tuple[QuestionThread, ...]
    total: int


SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("open", N_("Warten auf Antwort"), N_("Keine Frage wartet auf eine Antwort.")),
    ("answered", N_("Beantwortet"), N_("Keine beantwortete Frage.")),
    ("closed", N_("Erledigt"), N_("Keine erledigte Frage.")),
)


@router.get("/console/questions")
async def questions(current: CoordinatorVisit, mine: str = "") -> Response:
    only_mine = mine == "1"
    where = await zone(current)
    sections = []
    for state, title, empty in SECTIONS:
        answer = await calls(current).office_threads(states=[state], mine=only_mine)
        listed = [QuestionThread.from_json(item, current.language, where) for item in answer.get("items", [])]
        # The contact person's own volunteers first, each group the latest activity first.
        found = tuple(sorted(listed, key=lambda item: not item.mine))
        sections.append(QuestionSection(state, title, empty, found, int(answer.get("total") or 0)))
    return await current.page("console_questions.html", sections=sections, mine=only_mine)


@router.get("/console/questions/{thread_id}")
async def thread(current: CoordinatorVisit, thread_id: str) -> Response:
    return await _thread(current, thread_id, {}, {})


@router.post("/console/questions/{thread_id}/messages")
async def answer(current: CoordinatorVisit, thread_id: str) -> Response:
    form = await current.form()
    found = thread_id_of(thread_id)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    result = domain.read_question_form(form, with_subject=False)
    if result.valid:
        try:
            await calls(current).answer(found, result.body["text"])
        except BackendProblem as problem:
            if problem.status == 404:
                return await current.page("error.html", status=404, problem="not_found")
            refusal(problem, result, ("text",))
        else:
            flash = N_("Ihre Antwort ist gespeichert. Die freiwillige Person bekommt Bescheid.")
            return await current.redirect(f"/console/questions/{found}", flash=flash)
    return await _thread(current, found, dict(form), result.errors, status=422)


@router.post("/console/questions/{thread_id}/closing")
async def close(current: CoordinatorVisit, thread_id: str) -> Response:
    return await _set_state(current, thread_id, closed=True)


@router.post("/console/questions/{thread_id}/reopening")
async def reopen(current: CoordinatorVisit, thread_id: str) -> Response:
    return await _set_state(current, thread_id, closed=False)


async def _set_state(current: CoordinatorVisit, thread_id: str, *, closed: bool) -> Response:
    await current.form()
    found = thread_id_of(thread_id)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    try:
        await (calls(current).close(found) if closed else calls(current).reopen(found))
    except BackendProblem as problem:
        if problem.status == 404:
            return await current.page("error.html", status=404, problem="not_found")
        raise
    flash = N_("Die Frage ist erledigt.") if closed else N_("Die Frage ist wieder offen.")
    return await current.redirect(f"/console/questions/{found}", flash=flash)


async def _thread(
    current: CoordinatorVisit, thread_id: str, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    found = thread_id_of(thread_id)
    if found is None:
        return await current.page("error.html", status=404, problem="not_found")
    try:
        answer = await calls(current).office_thread(found)
    except BackendProblem as problem:
        if problem.status == 404:
            return await current.page("error.html", status=404, problem="not_found")
        raise
    return await current.page(
        "console_question.html",
        status=status,
        thread=QuestionThread.from_json(answer, current.language, await zone(current)),
        values=values,
        errors=errors,
        text_max=domain.QUESTION_TEXT_MAX,
    )
