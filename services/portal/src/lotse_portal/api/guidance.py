"""The guidance texts: the office edits them per language (coordinators), and volunteers read
them in their language ("Leitfaden"). Notifications keeps them; its API applies its own rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from lotse_portal import guidance
from lotse_portal.api.access import CoordinatorVisit, SignedIn, tenant, token
from lotse_portal.backends import BackendProblem, Service
from lotse_runtime import i18n
from lotse_runtime.i18n import N_

router = APIRouter()


@router.get("/guidance")
async def read(current: SignedIn) -> Response:
    """The guidance in the page's language: per topic the municipality's text, else Lotse's, else German."""
    found = await current.portal.backends.get(Service.NOTIFICATIONS, f"/me/guidance/{current.language}", token(current))
    topics = [
        {
            **item,
            "label": guidance.TOPICS.get(item["topic"], item["topic"]),
            "paragraphs": guidance.paragraphs(item["text"]),
            "direction": i18n.direction(item["language"]),
        }
        for item in found.get("topics", [])
    ]
    return await current.page("guidance.html", topics=topics)


@router.get("/console/guidance")
async def languages(current: CoordinatorVisit) -> Response:
    """The municipality's languages, each with how many of its texts are the municipality's own."""
    rows = []
    for language in await _languages(current):
        answer = await _guidance(current, language)
        rows.append({"code": language, "name": i18n.endonym(language), "own": len(answer.get("overridden") or [])})
    return await current.page("console_guidance.html", rows=rows, topics=len(guidance.TOPICS))


@router.get("/console/guidance/{language}")
async def edit(current: CoordinatorVisit, language: str) -> Response:
    if language not in await _languages(current):
        return await current.page("error.html", status=404, problem="not_found")
    topics = guidance.topics_of(await _guidance(current, language))
    values = {item.topic: item.text for item in topics}
    return await _form(current, language, topics, values, {})


@router.post("/console/guidance/{language}")
async def save(current: CoordinatorVisit, language: str) -> Response:
    form = await current.form()
    if language not in await _languages(current):  # only the municipality's: nothing else reaches the API
        return await current.page("error.html", status=404, problem="not_found")
    topics = guidance.topics_of(await _guidance(current, language))
    texts, errors = guidance.read_form(form, topics)
    if not errors:
        try:
            await current.portal.backends.put(Service.NOTIFICATIONS, f"/guidance/{language}", token(current), texts)
        except BackendProblem as problem:
            if problem.status != 422:
                raise
            for field in problem.fields or {"form": ""}:
                errors[field if field in guidance.TOPICS else "form"] = N_("Bitte prüfen Sie diese Angabe.")
        else:
            flash = N_("Der Leitfaden ist gespeichert. Freiwillige sehen ihn ab jetzt so.")
            return await current.redirect("/console/guidance", flash=flash)
    values = {item.topic: form.get(item.topic, "") for item in topics}
    return await _form(current, language, topics, values, errors, status=422)


async def _form(
    current: CoordinatorVisit,
    language: str,
    topics: list[guidance.TopicText],
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    return await current.page(
        "console_guidance_edit.html",
        status=status,
        language={"code": language, "name": i18n.endonym(language), "direction": i18n.direction(language)},
        topics=topics,
        values=values,
        errors=errors,
        max_length=guidance.MAX_LENGTH,
    )


async def _guidance(current: CoordinatorVisit, language: str) -> dict[str, Any]:
    found: dict[str, Any] = await current.portal.backends.get(
        Service.NOTIFICATIONS, f"/guidance/{language}", token(current)
    )
    return found


async def _languages(current: CoordinatorVisit) -> list[str]:
    """The municipality's languages, its default first; German always (every text falls back to it)."""
    facts = await current.portal.backends.get(Service.REGISTRY, f"/tenants/{tenant(current)}", token(current))
    found = [facts.get("default_language") or "de", *(facts.get("supported_languages") or []), "de"]
    return [code for index, code in enumerate(found) if isinstance(code, str) and code not in found[:index]]
