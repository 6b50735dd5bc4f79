"""Templates and guidance texts: a tenant's overrides of the default mails (coordinator), and
the guidance as volunteers read it (everyone of the tenant).

Guidance is plain text per topic and language: insurance, certificates, how the authorities
work, whom to ask. The platform has a default for each topic but ``authorities`` (how the
authorities work is each municipality's own); a tenant overrides any topic in any language.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lotse_notifications import catalogue
from lotse_notifications.api.access import NOT_FOUND, AuditedCoordinator, Coordinator, StoreDep
from lotse_notifications.templates import TemplateSource, check_source_off_loop, default_source
from lotse_runtime.auth import Principal, Role, requires, tenant_of
from lotse_runtime.problems import Problem
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
Reader = Annotated[Principal, Depends(requires(Role.VOLUNTEER, Role.COORDINATOR, Role.INITIATIVE_ADMIN))]

# The topics in the order people read them; only ``authorities`` has no platform default.
GUIDANCE_TOPICS: tuple[str, ...] = ("insurance", "certificates", "authorities", "contact")
GUIDANCE_MAX_LENGTH = 1000


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=300, description="Jinja source of the subject line")
    text: str = Field(min_length=1, max_length=20_000, description="Jinja source of the plain-text part")
    html: str | None = Field(
        None, max_length=50_000, description="Jinja source of the HTML part; absent: the shared layout"
    )


GuidanceText = Annotated[str | None, Field(min_length=1, max_length=GUIDANCE_MAX_LENGTH)]


class GuidanceBody(BaseModel):
    """The tenant's texts in one language; a topic left out is the platform's default again."""

    model_config = ConfigDict(extra="forbid")

    insurance: GuidanceText = None
    certificates: GuidanceText = None
    authorities: GuidanceText = Field(None, description="How the authorities work (no platform default).")
    contact: GuidanceText = Field(None, description="Whom to ask.")


class GuidanceTopic(BaseModel):
    topic: str
    text: str
    language: str = Field(description="The language of the text (German where none is in the asked language).")
    source: Literal["tenant", "default"]


class PublishedGuidance(BaseModel):
    language: str
    topics: list[GuidanceTopic] = Field(description="Topics with a text, in reading order.")


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
    kind: str, language: Language, body: TemplateBody, principal: AuditedCoordinator, request: Request, store: StoreDep
) -> dict[str, Any]:
    _known_kind(kind)
    source = TemplateSource(body.subject, body.text, body.html)
    time_limit = request.app.state.settings.template_render_seconds
    problems = await check_source_off_loop(kind, language, source, time_limit=time_limit)
    if problems:
        detail = "; ".join(f"{item['field']}: {item['message']}" for item in problems)
        raise Problem(422, "Template does not render", detail, errors=problems)

    async def save(transaction: Transaction) -> None:
        await store.save_template_override(tenant_of(principal), kind, language, source, transaction)

    await _unit_of_work(request).run(save)
    return {"kind": kind, "language": language, "source": "tenant", **body.model_dump()}


@router.delete(
    "/templates/{kind}/{language}",
    tags=["templates"],
    status_code=204,
    responses=NOT_FOUND,
    summary="Back to the default",
)
async def delete_template(
    kind: str, language: Language, principal: AuditedCoordinator, request: Request, store: StoreDep
) -> Response:
    _known_kind(kind)

    async def remove(transaction: Transaction) -> bool:
        return await store.delete_template_override(tenant_of(principal), kind, language, transaction)

    if not await _unit_of_work(request).run(remove):
        raise Problem(404, "Not found", "no override for this kind and language")
    return Response(status_code=204)


@router.get("/guidance/{language}", tags=["templates"], summary="Guidance texts for volunteers in one language")
async def get_guidance(language: Language, principal: Coordinator, store: StoreDep) -> dict[str, Any]:
    """The texts in use (the tenant's, else the default) at the top level as before, which topics
    the tenant overrode, every topic in reading order and the defaults beside the tenant's texts."""
    overrides = (await store.guidance(tenant_of(principal))).get(language, {})
    defaults = catalogue.guidance(language)
    return {
        "language": language,
        **defaults,
        **overrides,
        "overridden": sorted(overrides),
        "topics": list(GUIDANCE_TOPICS),
        "defaults": defaults,
    }


@router.put(
    "/guidance/{language}",
    tags=["templates"],
    summary="Override guidance texts (plain text); topics left out are the defaults again",
)
async def put_guidance(
    language: Language, body: GuidanceBody, principal: AuditedCoordinator, request: Request, store: StoreDep
) -> dict[str, Any]:
    texts = body.model_dump(exclude_none=True)

    async def save(transaction: Transaction) -> None:
        await store.save_guidance(tenant_of(principal), language, texts, transaction)

    await _unit_of_work(request).run(save)
    return {"language": language, **texts}


@router.get(
    "/me/guidance/{language}",
    tags=["templates"],
    summary="The guidance as volunteers read it: the tenant's text, else the default, else German",
)
async def read_guidance(language: Language, principal: Reader, store: StoreDep) -> PublishedGuidance:
    """Per topic: the tenant's text in the language, else the platform's default in it, else the
    tenant's German text, else the German default; topics without any text are left out."""
    overrides = await store.guidance(tenant_of(principal))
    fallback = catalogue.FALLBACK_LANGUAGE
    found = []
    for topic in GUIDANCE_TOPICS:
        candidates = [(language, "tenant"), (language, "default"), (fallback, "tenant"), (fallback, "default")]
        for text_language, source in candidates:
            if source == "tenant":
                text = overrides.get(text_language, {}).get(topic)
            else:  # the catalogue answers a language it lacks in German: only its own languages count
                text = catalogue.guidance(text_language).get(topic) if text_language in catalogue.LANGUAGES else None
            if text:
                found.append(GuidanceTopic(topic=topic, text=text, language=text_language, source=source))
                break
    return PublishedGuidance(language=language, topics=found)


def _known_kind(kind: str) -> None:
    if kind not in catalogue.KINDS:
        raise Problem(404, "Not found", f"unknown message kind {kind!r}; known: {', '.join(catalogue.KINDS)}")


def _parts(document: dict[str, Any]) -> dict[str, Any]:
    return {"subject": document["subject"], "text": document["text"], "html": document.get("html")}


def _unit_of_work(request: Request) -> UnitOfWork:
    """The office's text changes commit with their audit entries (who changed which text)."""
    unit_of_work: UnitOfWork = request.app.state.unit_of_work
    return unit_of_work
