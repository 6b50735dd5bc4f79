"""A subscription's dispatch table: each event goes to the handler of its class, typed."""

from __future__ import annotations

from typing import Any

import pytest

from lotse_contracts import Envelope, NeedCancelled, NeedOpened, TenantOnboarded, new_event
from lotse_contracts.base import EventData
from lotse_contracts.dead_letter import DeadLetterReason
from lotse_runtime.consumer import Delivery, Dispatch, RejectEvent

DELIVERY = Delivery(topic="lotse.registry.needs.v1", partition=0, offset=7, key=None)


def envelope(data: EventData, tenant: str = "musterstadt") -> Envelope[Any]:
    # A need's events are about the need, a tenant's about the tenant.
    subject = str(getattr(data, "need_id", tenant))
    return new_event(data=data, tenant=tenant, subject=subject, version=1, source="/lotse/registry")


async def test_each_event_goes_to_the_handler_of_its_class() -> None:
    seen: list[str] = []

    async def opened(event: Envelope[NeedOpened], delivery: Delivery) -> None:
        seen.append(f"opened {event.data.need_id} at {delivery.offset}")

    async def cancelled(event: Envelope[NeedCancelled], delivery: Delivery) -> None:
        seen.append(f"cancelled {event.data.need_id}")

    dispatch = Dispatch({NeedOpened: opened, NeedCancelled: cancelled})
    opening, cancelling = NeedOpened.example(), NeedCancelled.example()
    await dispatch(envelope(opening), DELIVERY)
    await dispatch(envelope(cancelling), DELIVERY)

    assert seen == [f"opened {opening.need_id} at 7", f"cancelled {cancelling.need_id}"]


async def test_an_event_the_table_does_not_name_is_ignored_by_default() -> None:
    seen: list[Envelope[Any]] = []

    async def opened(event: Envelope[NeedOpened], delivery: Delivery) -> None:
        seen.append(event)

    await Dispatch({NeedOpened: opened})(envelope(TenantOnboarded.example()), DELIVERY)

    assert seen == []


async def test_a_subscription_may_refuse_what_its_table_does_not_name() -> None:
    async def opened(event: Envelope[NeedOpened], delivery: Delivery) -> None:
        raise AssertionError("not this one")

    async def refuse(event: Envelope[Any], delivery: Delivery) -> None:
        raise RejectEvent(DeadLetterReason.NOT_ALLOWED, f"{event.type} is not for this topic")

    dispatch = Dispatch({NeedOpened: opened}, unhandled=refuse)
    with pytest.raises(RejectEvent) as refused:
        await dispatch(envelope(TenantOnboarded.example()), DELIVERY)
    assert refused.value.reason is DeadLetterReason.NOT_ALLOWED


async def test_the_guard_sees_every_event_before_its_handler() -> None:
    order: list[str] = []

    def guard(event: Envelope[Any], delivery: Delivery) -> None:
        order.append(f"guard {event.type}")
        if event.tenant != "musterstadt":
            raise RejectEvent(DeadLetterReason.TENANT_MISMATCH, "foreign tenant")

    async def opened(event: Envelope[NeedOpened], delivery: Delivery) -> None:
        order.append("opened")

    dispatch = Dispatch({NeedOpened: opened}, guard=guard)
    await dispatch(envelope(NeedOpened.example()), DELIVERY)
    await dispatch(envelope(TenantOnboarded.example()), DELIVERY)
    foreign = envelope(NeedOpened.example(), tenant="lindenau")
    with pytest.raises(RejectEvent):
        await dispatch(foreign, DELIVERY)

    assert order == [
        f"guard {NeedOpened.event_type}",
        "opened",
        f"guard {TenantOnboarded.event_type}",
        f"guard {NeedOpened.event_type}",
    ]


def test_a_table_maps_event_classes_only() -> None:
    async def handler(event: Envelope[Any], delivery: Delivery) -> None:
        return None

    with pytest.raises(TypeError, match="event classes"):
        Dispatch({"de.lotse.registry.need.opened.v1": handler})  # type: ignore[dict-item]
