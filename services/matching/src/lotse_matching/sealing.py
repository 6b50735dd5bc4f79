"""A proposal's fit goes on the topic sealed with the volunteer's data key (issue 18).

Score, reasons ("speaks ar (native)", "holds a valid extended police certificate") and distance
describe the volunteer; ``proposal.proposed.v2`` carries them sealed, so that the volunteer's
erasure (their key destroyed) makes them unreadable on ``lotse.matching.proposals.v1`` too. The
proposal is sealed as it goes into the outbox, in the transaction that makes it: its event id,
which the proposal record keeps, stays the same, and the inbox and outbox keep it exactly once.

Matching already holds the volunteer's key when it proposes them: it applied their sealed
registration with it. So there is no wait here. No key at all means matching knows the volunteer
only from plain ``.v1`` events of a registry before issue 18 (no key was ever issued): their
proposal goes as ``.v1``, as their profile did, until the registry seals their next change. A
destroyed key means the volunteer is being erased: the proposal carries no fit (nothing about them
is published any more) and is withdrawn by the erasure that follows.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from lotse_contracts import Envelope, MatchFit, MatchProposed, MatchProposedSealed
from lotse_runtime.sealed import KeyDestroyed, PersonKey, plain_envelope, seal


class PersonKeys(Protocol):
    """Where the volunteers' keys are (``lotse_runtime.sealed.Keyring``)."""

    async def current_keys(self, tenant: str, person_ids: Collection[str]) -> dict[str, PersonKey | KeyDestroyed]: ...


class NoPersonKeys:
    """No keys at all, as for volunteers known only from plain events: proposals go as ``.v1``.
    For matching built on in-memory units of work (unit tests) only."""

    async def current_keys(self, tenant: str, person_ids: Collection[str]) -> dict[str, PersonKey | KeyDestroyed]:
        return {}


async def for_the_topic(tenant: str, events: list[Envelope[Any]], keys: PersonKeys) -> list[Envelope[Any]]:
    """The events as they go into the outbox: proposals with their fit sealed, the others as they
    are. The proposed volunteers' keys are read once, and only if there is a proposal."""
    volunteers = {str(event.data.volunteer_id) for event in events if isinstance(event.data, MatchProposed)}
    if not volunteers:
        return events
    found = await keys.current_keys(tenant, volunteers)
    return [_sealed(event, found) for event in events]


def _sealed(event: Envelope[Any], keys: dict[str, PersonKey | KeyDestroyed]) -> Envelope[Any]:
    data = event.data
    if not isinstance(data, MatchProposed):
        return event
    key = keys.get(str(data.volunteer_id))
    if key is None:
        return event
    fit = MatchFit(score=data.score, reasons=data.reasons, distance_km=data.distance_km)
    sealed = MatchProposedSealed(
        need_id=data.need_id,
        volunteer_id=data.volunteer_id,
        proposal_id=data.proposal_id,
        organisation_id=data.organisation_id,
        # Bound to the message key `<tenant>:<need_id>`, like every sealed value on its topic.
        fit=None
        if isinstance(key, KeyDestroyed)
        else seal(fit, key_id=key.key_id, data_key=key.data_key, tenant=event.tenant, subject=event.subject),
        expires_at=data.expires_at,
    )
    return plain_envelope(event, sealed)
