"""Partner commands, from every tenant's inbound topic (one pattern subscription, its handlers in
``handlers``) or over HTTP (``api.partner``). A volunteer's registration comes over HTTPS only
(the inbound topic refuses it: personal data there would outlive the volunteer's erasure).

A partner names its needs and volunteers by its own ``external_ref``; the registry keeps the
mapping per tenant and partner system, with the partner's last sequence number (the envelope
version), so that stale or repeated commands change nothing. Proposal answers are matching's.

Who reported a need (the partner system and the channel) is recorded with it, and only the same
system over the same channel may update or cancel it. Over HTTP the system is the subject of the
partner's token, so this is an authenticated check. Over Kafka it is the envelope's ``source``,
which nobody authenticates: every partner system of a tenant writes the tenant's inbound topic
with the same credential, so on Kafka one tenant's partner systems are one trust domain (see the
README's partner section); the check there only keeps honest systems from clashing.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog

from lotse_contracts import (
    CancelNeed,
    Envelope,
    RegisterVolunteer,
    ReportNeed,
    UpdateNeed,
    VolunteerRegistered,
)
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_contracts.envelope import PARTNER_SOURCE_PREFIX
from lotse_registry import service
from lotse_registry.domain import DomainError
from lotse_registry.store import (
    NEEDS,
    PARTNER_REFS,
    Document,
    TenantScope,
)
from lotse_runtime.consumer import RejectEvent

log = structlog.get_logger("lotse.registry.partner")

PartnerCommand = ReportNeed | UpdateNeed | CancelNeed | RegisterVolunteer
# How a command came: "http" (system = the token's subject) or "kafka" (system = the envelope's source).
Channel = Literal["http", "kafka"]


def partner_system(source: str, tenant: str) -> str:
    """``/partners/<tenant>/<system>`` → ``<system>``; the envelope already checked the tenant."""
    prefix = f"{PARTNER_SOURCE_PREFIX}{tenant}/"
    if not source.startswith(prefix) or not source.removeprefix(prefix):
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, f"source {source!r} is not a partner system of {tenant}")
    return source.removeprefix(prefix)


def _ref_id(tenant: str, system: str, kind: str, external_ref: str) -> str:
    return f"{tenant}:{system}:{kind}:{external_ref}"


async def apply_command(
    scope: TenantScope,
    system: str,
    command: PartnerCommand,
    *,
    channel: Channel,
    sequence: int | None = None,
    cause: Envelope[Any] | None = None,
) -> Document | None:
    """Apply one partner command; None if it was stale (an older sequence than the last applied).

    Raises ``DomainError`` for a command that contradicts the registry (unknown reference,
    unknown organisation or skill, a need that is over) or that comes from another partner
    system or channel than the need's report (403).
    """
    kind = "volunteer" if isinstance(command, RegisterVolunteer) else "need"
    ref_id = _ref_id(scope.tenant, system, kind, command.external_ref)
    ref = await scope.get(PARTNER_REFS, ref_id)
    last = ref.get("last_sequence") if ref is not None else None
    if sequence is not None and last is not None and sequence <= last:
        log.info("stale partner command ignored", tenant=scope.tenant, system=system, sequence=sequence)
        return None

    if isinstance(command, ReportNeed | RegisterVolunteer):
        if ref is not None:
            raise DomainError(409, "Already known", f"{kind} {command.external_ref} was already submitted")
        if isinstance(command, ReportNeed):
            result = await service.open_need(
                scope,
                command,
                cause=cause,
                partner_ref=command.external_ref,
                reported_by={"system": system, "channel": channel},
            )
        else:
            volunteer_id = service.new_id()
            registration = VolunteerRegistered.model_validate(
                {
                    "volunteer_id": volunteer_id,
                    **command.model_dump(exclude={"external_ref", "consent_proof"}),
                }
            )
            result = await service.register_volunteer(
                scope,
                volunteer_id,
                registration,
                registered_via=f"partner:{system}",
                consent_proof=command.consent_proof.model_dump(mode="json"),
                cause=cause,
            )
        await scope.insert(
            PARTNER_REFS,
            {
                "_id": ref_id,
                "system": system,
                "kind": kind,
                "external_ref": command.external_ref,
                "aggregate_id": result["_id"],
                "last_sequence": sequence,
                "channel": channel,
            },
        )
        return result

    ref = await _reported_by_caller(scope, ref, system, channel, command.external_ref)
    need = await service.load(scope, NEEDS, ref["aggregate_id"], "need")
    if isinstance(command, UpdateNeed):
        result = await service.update_need(scope, need, command, cause=cause)
    else:
        result = await service.cancel_need(scope, need, command.reason, cause=cause)
    if sequence is not None:
        await scope.update(
            PARTNER_REFS, ref_id, {"$set": {"last_sequence": sequence}}, aggregate_id=ref["aggregate_id"]
        )
    return result


async def _reported_by_caller(
    scope: TenantScope, ref: Document | None, system: str, channel: Channel, external_ref: str
) -> Document:
    """The caller's reference to the need, if the caller reported it: only the system that reported
    a need, over the same channel, changes it."""
    if ref is None:
        if await scope.find_one(PARTNER_REFS, {"kind": "need", "external_ref": external_ref}) is not None:
            raise DomainError(
                403, "Forbidden", f"external_ref: need {external_ref} was reported by another partner system"
            )
        raise DomainError(422, "Unknown reference", f"external_ref: no need {external_ref} was reported by {system}")
    # References recorded before the channel was kept have none: they stay usable from either.
    reported_over = ref.get("channel", channel)
    if reported_over != channel:
        raise DomainError(
            403,
            "Forbidden",
            f"external_ref: need {external_ref} was reported over {reported_over}; only there may it be changed",
        )
    return ref
