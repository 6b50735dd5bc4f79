"""How the coordination office and each organisation want to hear of staffing: a mail per event
(staffed, unstaffed), or one daily digest at a local time of their choice that also lists the
declined proposals (coordinators for the office and every organisation of their tenant, an
initiative admin for their own organisation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import IsoTime
from lotse_notifications.api.access import NOT_FOUND, Coordinator, OrganisationAdmin, StoreDep
from lotse_notifications.records import MailPreference, OfficeMail
from lotse_notifications.store import Store
from lotse_runtime.auth import Principal, Role, tenant_of
from lotse_runtime.problems import Problem
from lotse_runtime.unit_of_work import Transaction, UnitOfWork


class PreferenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery: OfficeMail = Field(
        description=(
            "each_event: a mail for each staffed and unstaffed need; daily_digest: one mail a day listing what "
            "happened (staffed, unstaffed, declined) instead"
        ),
        examples=["daily_digest"],
    )
    digest_time: IsoTime | None = Field(
        None,
        description="Local time of the daily digest (HH:MM, the municipality's time zone); absent: the default",
        examples=["07:30"],
    )


router = APIRouter()


@router.get(
    "/mail-preferences/office",
    tags=["mail preferences"],
    summary="How the coordination office hears of staffing: a mail per event or a daily digest",
)
async def get_office_preference(principal: Coordinator, request: Request, store: StoreDep) -> dict[str, Any]:
    tenant = tenant_of(principal)
    return _view(request, await store.mail_preference(tenant, RecipientKind.TENANT.value, tenant))


@router.put("/mail-preferences/office", tags=["mail preferences"], summary="Choose how the office hears of staffing")
async def put_office_preference(
    body: PreferenceBody, principal: Coordinator, request: Request, store: StoreDep
) -> dict[str, Any]:
    tenant = tenant_of(principal)
    return _view(request, await _save(request, store, tenant, RecipientKind.TENANT.value, tenant, body))


@router.get(
    "/mail-preferences/organisations/{organisation_id}",
    tags=["mail preferences"],
    responses=NOT_FOUND,
    summary="How an organisation hears of staffing of its needs",
)
async def get_organisation_preference(
    organisation_id: str, principal: OrganisationAdmin, request: Request, store: StoreDep
) -> dict[str, Any]:
    tenant = await _organisation_of(principal, store, organisation_id)
    kind = RecipientKind.ORGANISATION.value
    return _view(request, await store.mail_preference(tenant, kind, organisation_id), organisation_id)


@router.put(
    "/mail-preferences/organisations/{organisation_id}",
    tags=["mail preferences"],
    responses=NOT_FOUND,
    summary="Choose how an organisation hears of staffing of its needs",
)
async def put_organisation_preference(
    organisation_id: str, body: PreferenceBody, principal: OrganisationAdmin, request: Request, store: StoreDep
) -> dict[str, Any]:
    tenant = await _organisation_of(principal, store, organisation_id)
    kind = RecipientKind.ORGANISATION.value
    saved = await _save(request, store, tenant, kind, organisation_id, body)
    return _view(request, saved, organisation_id)


async def _organisation_of(principal: Principal, store: Store, organisation_id: str) -> str:
    """The caller's tenant, if the organisation is one of it that the caller manages; else 404
    (whether it exists elsewhere is none of the caller's business)."""
    tenant = tenant_of(principal)
    manages = principal.has(Role.COORDINATOR) or principal.organisation == organisation_id
    if not manages or await store.organisation(tenant, organisation_id) is None:
        raise Problem(404, "Not found", "no such organisation")
    return tenant


async def _save(
    request: Request, store: Store, tenant: str, recipient_kind: str, recipient_id: str, body: PreferenceBody
) -> MailPreference:
    default = request.app.state.settings.daily_digest_time
    preference = MailPreference(
        tenant=tenant,
        recipient_kind=recipient_kind,
        recipient_id=recipient_id,
        delivery=body.delivery,
        digest_time=(body.digest_time or default).replace(second=0, microsecond=0, tzinfo=None),
        updated_at=datetime.now(UTC),
    )
    unit_of_work: UnitOfWork = request.app.state.unit_of_work

    async def save(transaction: Transaction) -> None:  # with its audit entry (who chose what)
        await store.save_mail_preference(preference, transaction)

    await unit_of_work.run(save)
    return preference


def _view(request: Request, preference: MailPreference | None, organisation_id: str | None = None) -> dict[str, Any]:
    default = request.app.state.settings.daily_digest_time
    view: dict[str, Any] = {"recipient": "organisation" if organisation_id else "office"}
    if organisation_id:
        view["organisation_id"] = organisation_id
    if preference is None:
        return view | {"delivery": OfficeMail.EACH_EVENT.value, "digest_time": default.isoformat("minutes")}
    return view | {
        "delivery": preference.delivery.value,
        "digest_time": preference.digest_time.isoformat("minutes"),
        "updated_at": preference.updated_at,
    }
