"""HTTP API: coordinators manage their tenant's templates, guidance, webhooks and digest;
volunteers read their in-app inbox. The tenant always comes from the token, never from the path."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue
from lotse_notifications.destinations import registration_problem
from lotse_notifications.store import Store
from lotse_notifications.templates import TemplateSource, check_source_off_loop, default_source
from lotse_runtime.auth import Principal, Role, requires
from lotse_runtime.i18n import direction
from lotse_runtime.problems import Problem, problem_responses

# Messages by template, and events forwarded to partners' webhooks.
DELIVERY_KINDS = "^(" + "|".join((*catalogue.KINDS, "webhook_event")) + ")$"

Language = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
# Partners get need and matching events, nothing about people.
ForwardedEventType = Annotated[str, Field(pattern=r"^de\.lotse\.(registry\.need|matching)\.")]
NOT_FOUND = problem_responses(404)
# A name that takes longer than this to resolve is refused like an internal one.
REGISTRATION_RESOLVE_SECONDS = 5.0
Coordinator = Annotated[Principal, Depends(requires(Role.COORDINATOR))]
Volunteer = Annotated[Principal, Depends(requires(Role.VOLUNTEER))]


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


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(
        description=(
            "https endpoint of the partner system on the public internet (plain http only to loopback, and only "
            "in development); refused with 422 if its host is or resolves to an internal address"
        )
    )
    secret: str = Field(min_length=16, max_length=200, description="Shared secret for the HMAC-SHA256 signature")
    event_types: list[ForwardedEventType] = Field(
        default_factory=list, description="Event types to forward (need and matching events); empty: all of them"
    )


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _tenant(principal: Principal) -> str:
    # A platform admin's token may carry tenant roles but no tenant: refuse it rather than let a
    # query run unscoped (an assert would vanish under `python -O`).
    if principal.tenant is None:
        raise Problem(403, "Forbidden", "this needs a token of a municipality (claim tenant)")
    return principal.tenant


def router() -> APIRouter:
    api = APIRouter()

    @api.get(
        "/templates/{kind}/{language}",
        tags=["templates"],
        responses=NOT_FOUND,
        summary="The template in use for a kind and language",
    )
    async def get_template(kind: str, language: Language, principal: Coordinator, request: Request) -> dict[str, Any]:
        _known_kind(kind)
        override = await _store(request).template_override(_tenant(principal), kind, language)
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

    @api.put(
        "/templates/{kind}/{language}",
        tags=["templates"],
        responses=NOT_FOUND,
        summary=(
            "Override a template; refused with 422 naming the part unless it renders against a sample message "
            "within the time and output limits"
        ),
    )
    async def put_template(
        kind: str, language: Language, body: TemplateBody, principal: Coordinator, request: Request
    ) -> dict[str, Any]:
        _known_kind(kind)
        source = TemplateSource(body.subject, body.text, body.html)
        time_limit = request.app.state.settings.template_render_seconds
        problems = await check_source_off_loop(kind, language, source, time_limit=time_limit)
        if problems:
            detail = "; ".join(f"{item['field']}: {item['message']}" for item in problems)
            raise Problem(422, "Template does not render", detail, errors=problems)
        await _store(request).save_template_override(_tenant(principal), kind, language, source)
        return {"kind": kind, "language": language, "source": "tenant", **body.model_dump()}

    @api.delete(
        "/templates/{kind}/{language}",
        tags=["templates"],
        status_code=204,
        responses=NOT_FOUND,
        summary="Back to the default",
    )
    async def delete_template(kind: str, language: Language, principal: Coordinator, request: Request) -> Response:
        _known_kind(kind)
        if not await _store(request).delete_template_override(_tenant(principal), kind, language):
            raise Problem(404, "Not found", "no override for this kind and language")
        return Response(status_code=204)

    @api.get("/guidance/{language}", tags=["templates"], summary="Guidance texts for volunteers in one language")
    async def get_guidance(language: Language, principal: Coordinator, request: Request) -> dict[str, Any]:
        overrides = (await _store(request).guidance(_tenant(principal))).get(language, {})
        defaults = catalogue.guidance(language)
        return {"language": language, **defaults, **overrides, "overridden": sorted(overrides)}

    @api.put("/guidance/{language}", tags=["templates"], summary="Override guidance texts (plain text)")
    async def put_guidance(
        language: Language, body: GuidanceBody, principal: Coordinator, request: Request
    ) -> dict[str, Any]:
        texts = body.model_dump(exclude_none=True)
        await _store(request).save_guidance(_tenant(principal), language, texts)
        return {"language": language, **texts}

    @api.post("/webhooks", tags=["webhooks"], status_code=201, summary="Register a partner system's webhook")
    async def add_webhook(body: WebhookBody, principal: Coordinator, request: Request) -> dict[str, Any]:
        tenant = _tenant(principal)
        settings = request.app.state.settings
        problem = await registration_problem(
            str(body.url), settings.env, request.app.state.resolver, timeout=REGISTRATION_RESOLVE_SECONDS
        )
        if problem is not None:
            raise Problem(422, "Invalid request", f"url: {problem}", errors=[{"field": "url", "message": problem}])
        hook = await _store(request).add_webhook(tenant, str(body.url), body.secret, body.event_types)
        return _hook_view(hook)

    @api.get("/webhooks", tags=["webhooks"], summary="The tenant's webhooks (secrets are never shown)")
    async def list_webhooks(principal: Coordinator, request: Request) -> list[dict[str, Any]]:
        return [_hook_view(hook) for hook in await _store(request).webhooks(_tenant(principal))]

    @api.delete(
        "/webhooks/{webhook_id}", tags=["webhooks"], status_code=204, responses=NOT_FOUND, summary="Remove a webhook"
    )
    async def delete_webhook(webhook_id: str, principal: Coordinator, request: Request) -> Response:
        if not await _store(request).delete_webhook(_tenant(principal), webhook_id):
            raise Problem(404, "Not found", "no such webhook")
        return Response(status_code=204)

    @api.post(
        "/digest",
        tags=["digest"],
        status_code=202,
        responses=NOT_FOUND,
        summary="Send this week's digest to the coordination office",
    )
    async def send_digest(principal: Coordinator, request: Request) -> dict[str, Any]:
        tenant_doc = await _store(request).tenant(_tenant(principal))
        if tenant_doc is None:
            raise Problem(404, "Not found", "the tenant is not known to the notification service yet")
        payload, created = await request.app.state.worker.plan_digest(tenant_doc, datetime.now(UTC))
        return {"week": payload["week"], "digest": payload["digest"], "already_planned": not created}

    @api.get("/deliveries", tags=["deliveries"], summary="The delivery log (recipient ids, outcome, reason)")
    async def deliveries(
        principal: Coordinator,
        request: Request,
        status: Annotated[str | None, Query(pattern=r"^(pending|sent|skipped|dead|cancelled)$")] = None,
        kind: Annotated[str | None, Query(pattern=DELIVERY_KINDS, description="e.g. match_proposed")] = None,
        channel: Channel | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; filter by outcome, kind of message and channel."""
        found = await _store(request).deliveries_of(
            _tenant(principal), limit, status=status, kind=kind, channel=channel.value if channel else None
        )
        keep = (
            "kind",
            "recipient_kind",
            "recipient_id",
            "channel",
            "language",
            "status",
            "reason",
            "error",
            "attempts",
            "trigger_event_id",
            "created_at",
            "sent_at",
            "failed_at",
        )
        return [{"id": doc["_id"], **{key: doc.get(key) for key in keep}} for doc in found]

    @api.get("/me/messages", tags=["inbox"], summary="My in-app messages, newest first")
    async def my_messages(principal: Volunteer, request: Request) -> list[dict[str, Any]]:
        found = await _store(request).messages_of(_tenant(principal), principal.subject)
        return [_message_view(doc) for doc in found]

    @api.post(
        "/me/messages/{message_id}/read", tags=["inbox"], responses=NOT_FOUND, summary="Mark one of my messages as read"
    )
    async def mark_read(message_id: str, principal: Volunteer, request: Request) -> dict[str, Any]:
        found = await _store(request).mark_read(_tenant(principal), principal.subject, message_id)
        if found is None:
            raise Problem(404, "Not found", "no such message")
        return _message_view(found)

    return api


def _known_kind(kind: str) -> None:
    if kind not in catalogue.KINDS:
        raise Problem(404, "Not found", f"unknown message kind {kind!r}; known: {', '.join(catalogue.KINDS)}")


def _parts(document: dict[str, Any]) -> dict[str, Any]:
    return {"subject": document["subject"], "text": document["text"], "html": document.get("html")}


def _hook_view(hook: dict[str, Any]) -> dict[str, Any]:
    return {"id": hook["_id"], "url": hook["url"], "event_types": hook["event_types"], "created_at": hook["created_at"]}


def _message_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "kind": doc["kind"],
        "language": doc["language"],
        "direction": direction(doc["language"]),
        "subject": doc["subject"],
        "text": doc["text"],
        "html": doc["html"],
        "created_at": doc["created_at"],
        "read": doc.get("read_at") is not None,
    }
