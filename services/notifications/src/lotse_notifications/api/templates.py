"""Templates and guidance texts: a tenant's overrides of the default mails (coordinator)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lotse_notifications import catalogue
from lotse_notifications.api.access import NOT_FOUND, Coordinator, StoreDep
from lotse_notifications.templates import TemplateSource, check_source_off_loop, default_source
from lotse_runtime.auth import tenant_of
from lotse_runtime.problems import Problem

Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=300, description="Jinja source of the subject line")
    text: str = Field(min_length=1, max_length=20_000, description="Jinja source of the plain-text part")
    html: str | None = Field(
        None, max_length=50_000, description="Jinja source of the HTML part; absent: the shared layout"
    )


class GuidanceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    insurance: str | None = Field(None, min_length=1, max_length=1000)
    certificates: str | None = Field(None, min_length=1, max_length=1000)
    contact: str | None = Field(None, min_length=1, max_length=1000)


router = APIRouter()


@router.get(
    "/templates/{kind}/{language}",
    tags=["templates"],
    responses=NOT_FOUND,
    summary="The template in use for a kind and language",
)
async def get_template(kind: str, language: Language, principal: Coordinator, store: StoreDep) -> dict[str, Any]:
    _known_kind(kind)
    override = await store.template_override(tenant_of(principal), kind, language)
    if override is not None:
        return {"kind": kind, "language": language, "source": "tenant", **_parts(override)}
    default = default_source(kind, language)
    if default is None:
        raise Problem(404, "Not found", f"no template {kind!r} in {language!r}")
    return {
        "kind": kind,
        "language": language,
        "source": "default",
        "subject": default.subject,
        "text": default.text,
        "html": None,
    }


@router.put(
    "/templates/{kind}/{language}",
    tags=["templates"],
    responses=NOT_FOUND,
    summary=(
        "Override a template; refused with 422 naming the part unless it renders against a sample message "
        "within the time and output limits"
    ),
)
async def put_template(
    kind: str, language: Language, body: TemplateBody, principal: Coordinator, request: Request, store: StoreDep
) -> dict[str, Any]:
    _known_kind(kind)
    source = TemplateSource(body.subject, body.text, body.html)
    time_limit = request.app.state.settings.template_render_seconds
    problems = await check_source_off_loop(kind, language, source, time_limit=time_limit)
    if problems:
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in problems)
        raise Problem(422, "Template does not render", detail, errors=problems)
    await store.save_template_override(tenant_of(principal), kind, language, source)
    return {"kind": kind, "language": language, "source": "tenant", **body.model_dump()}


@router.delete(
    "/templates/{kind}/{language}",
    tags=["templates"],
    status_code=204,
    responses=NOT_FOUND,
    summary="Back to the default",
)
async def delete_template(kind: str, language: Language, principal: Coordinator, store: StoreDep) -> Response:
    _known_kind(kind)
    if not await store.delete_template_override(tenant_of(principal), kind, language):
        raise Problem(404, "Not found", "no override for this kind and language")
    return Response(status_code=204)


@router.get("/guidance/{language}", tags=["templates"], summary="Guidance texts for volunteers in one language")
async def get_guidance(language: Language, principal: Coordinator, store: StoreDep) -> dict[str, Any]:
    overrides = (await store.guidance(tenant_of(principal))).get(language, {})
    defaults = catalogue.guidance(language)
    return {"language": language, **defaults, **overrides, "overridden": sorted(overrides)}


@router.put("/guidance/{language}", tags=["templates"], summary="Override guidance texts (plain text)")
async def put_guidance(
    language: Language, body: GuidanceBody, principal: Coordinator, store: StoreDep
) -> dict[str, Any]:
    texts = body.model_dump(exclude_none=True)
    await store.save_guidance(tenant_of(principal), language, texts)
    return {"language": language, **texts}


def _known_kind(kind: str) -> None:
    if kind not in catalogue.KINDS:
        raise Problem(404, "Not found", f"unknown message kind {kind!r}; known: {', '.join(catalogue.KINDS)}")


def _parts(document: dict[str, Any]) -> dict[str, Any]:
    return {"subject": document["subject"], "text": document["text"], "html": document.get("html")}
