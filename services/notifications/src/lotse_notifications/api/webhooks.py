"""Partner systems' webhooks: need and matching events forwarded, signed (coordinator)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from lotse_notifications.api.access import NOT_FOUND, AuditedCoordinator, Coordinator, StoreDep
from lotse_notifications.partner_events import PROJECTIONS, PartnerField, partner_schema_url
from lotse_notifications.records import Webhook
from lotse_runtime.auth import tenant_of
from lotse_runtime.destinations import registration_problem
from lotse_runtime.problems import Problem
from lotse_runtime.unit_of_work import Transaction, UnitOfWork

# Partners get need and matching events, nothing about people unless their contract needs it
# (``partner_events``: what each event type carries, and the opt-in ``fields``).
ForwardedEventType = Annotated[str, Field(pattern=r"^de\.lotse\.(registry\.need|matching)\.")]
# A name that takes longer than this to resolve is refused like an internal one.
REGISTRATION_RESOLVE_SECONDS = 5.0


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
    fields: list[PartnerField] = Field(
        default_factory=list,
        description=(
            "Opt-in beyond the default projection (matching events carry the need and what happened to its "
            "staffing, never who or why): `volunteer_ids` adds proposal and volunteer ids, for a partner system "
            "that registered volunteers and answers their proposals (AcceptProposal / DeclineProposal name both). "
            "Match reasons are never forwarded."
        ),
    )


router = APIRouter()


@router.post("/webhooks", tags=["webhooks"], status_code=201, summary="Register a partner system's webhook")
async def add_webhook(
    body: WebhookBody, principal: AuditedCoordinator, request: Request, store: StoreDep
) -> dict[str, Any]:
    """Register a webhook; the registration and its audit entry (who, which opt-ins) commit together."""
    tenant = tenant_of(principal)
    settings = request.app.state.settings
    problem = await registration_problem(
        str(body.url), settings.env, request.app.state.resolver, timeout=REGISTRATION_RESOLVE_SECONDS
    )
    if problem is not None:
        raise Problem(422, "Invalid request", f"url: {problem}", errors=[{"field": "url", "message": problem}])
    unit_of_work: UnitOfWork = request.app.state.unit_of_work

    async def register(transaction: Transaction) -> Webhook:
        fields = frozenset(body.fields)
        return await store.add_webhook(tenant, str(body.url), body.secret, body.event_types, fields, transaction)

    return _hook_view(await unit_of_work.run(register))


@router.get("/webhooks", tags=["webhooks"], summary="The tenant's webhooks (secrets are never shown)")
async def list_webhooks(principal: Coordinator, store: StoreDep) -> list[dict[str, Any]]:
    return [_hook_view(hook) for hook in await store.webhooks(tenant_of(principal))]


@router.get("/webhooks/schemas", tags=["webhooks"], summary="What partners receive: the data schema per event type")
async def webhook_schemas(principal: Coordinator) -> dict[str, Any]:
    """The JSON Schema of the ``data`` of each projected matching event, under the URL the
    webhook's ``dataschema`` names; need events go as published (their schemas are the contracts')."""
    return {partner_schema_url(event_type): model.model_json_schema() for event_type, model in PROJECTIONS.items()}


@router.delete(
    "/webhooks/{webhook_id}", tags=["webhooks"], status_code=204, responses=NOT_FOUND, summary="Remove a webhook"
)
async def delete_webhook(webhook_id: str, principal: AuditedCoordinator, request: Request, store: StoreDep) -> Response:
    unit_of_work: UnitOfWork = request.app.state.unit_of_work

    async def remove(transaction: Transaction) -> bool:
        return await store.delete_webhook(tenant_of(principal), webhook_id, transaction)

    if not await unit_of_work.run(remove):
        raise Problem(404, "Not found", "no such webhook")
    return Response(status_code=204)


def _hook_view(hook: Webhook) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "event_types": list(hook.event_types),
        "fields": sorted(hook.fields),
        "created_at": hook.created_at,
    }
