"""What a message says, as data: payloads stored with each delivery, the digest, delivery keys,
webhook signatures and retry backoff. Pure logic, no I/O.

Payloads hold no contact data (names and addresses are looked up when the message is sent), so
the delivery log can keep them; only the accept/decline links are personal to the volunteer and
are removed when the volunteer is erased.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lotse_contracts import MatchProposed, NeedOpened, NeedStaffed, NeedUnstaffed
from lotse_contracts.events.values import Channel
from lotse_notifications import catalogue
from lotse_notifications.records import Contact, Need, NeedSnapshot, NeedStatus

SIGNATURE_HEADER = "X-Lotse-Signature"
TIMESTAMP_HEADER = "X-Lotse-Timestamp"
DELIVERY_HEADER = "X-Lotse-Delivery"
EVENT_TYPE_HEADER = "X-Lotse-Event-Type"

# Channels that reach a person; SMS is in the contracts but has no sender yet.
PERSON_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.IN_APP)


def skip_reason(contact: Contact | None, channel: Channel, kind: str | None = None) -> str | None:
    """Why a volunteer cannot be reached on ``channel`` (with a message of ``kind``), or None if they can."""
    if contact is None or contact.details is None:
        return "no_contact"
    if not contact.active:
        return "volunteer_withdrawn"
    if channel not in contact.details.channels or kind in contact.details.opted_out_of:
        return "opted_out"
    # None: only a profile update was read, not the registration with its consent.
    if channel is Channel.EMAIL and contact.contact_consent is False:
        return "no_contact_consent"
    return None


def snapshot_of(need: Need | None) -> NeedSnapshot | None:
    """The need's snapshot from the read model, or None while the need is not known yet."""
    return None if need is None else need.snapshot


def _snapshot_document(need: NeedSnapshot | None) -> dict[str, Any] | None:
    return None if need is None else need.to_document()


# Payloads carry the need id; the snapshot is None while the need is unknown (another topic may
# not have been read yet), and the worker fills it in when it sends.


def proposal_payload(data: MatchProposed, need: NeedSnapshot | None) -> dict[str, Any]:
    return {
        "need_id": str(data.need_id),
        "need": _snapshot_document(need),
        "proposal_id": str(data.proposal_id),
        "reasons": [reason.model_dump(mode="json") for reason in data.reasons],
        "distance_km": data.distance_km,
        # No answer links: the worker signs them into the mail when it sends it, and stores them nowhere.
        "expires_at": data.expires_at.isoformat(),
    }


def need_payload(need_id: str, need: NeedSnapshot | None) -> dict[str, Any]:
    return {"need_id": need_id, "need": _snapshot_document(need)}


def unstaffed_payload(data: NeedUnstaffed, need: NeedSnapshot | None) -> dict[str, Any]:
    return {
        "need_id": str(data.need_id),
        "need": _snapshot_document(need),
        "reason": data.reason.value,
        "committed": data.volunteers_committed,
        "needed": data.volunteers_needed,
    }


def staffed_payload(data: NeedStaffed, need: NeedSnapshot | None) -> dict[str, Any]:
    """How many committed; who they are stays in the registry (no volunteer ids, no contact data).
    How many the need asks for is read from the need when the message is rendered."""
    return {"need_id": str(data.need_id), "need": _snapshot_document(need), "committed": len(data.volunteer_ids)}


def digest(needs: Iterable[Need]) -> dict[str, Any]:
    """Open and unstaffed needs and the staffing rate (staffed share of open plus staffed needs)."""
    open_needs = [need for need in needs if need.status in {NeedStatus.OPEN, NeedStatus.STAFFED}]
    staffed = sum(1 for need in open_needs if need.status is NeedStatus.STAFFED)
    still_open = [need for need in open_needs if need.status is NeedStatus.OPEN]
    unstaffed = [need.snapshot for need in still_open if need.unstaffed and need.snapshot is not None]
    considered = len(open_needs)
    return {
        "open": len(still_open),
        "unstaffed": len(unstaffed),
        "staffed": staffed,
        "staffing_rate": round(100 * staffed / considered) if considered else 0,
        "unstaffed_needs": [
            {"category": need.category.value, "district": need.district, "description": need.description}
            for need in unstaffed[:20]
        ],
    }


def iso_week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def digest_payload(needs: Iterable[Need], moment: datetime) -> dict[str, Any]:
    return {"digest": digest(needs), "week": iso_week(moment)}


def zone(name: str) -> ZoneInfo:
    """The tenant's time zone; Berlin if the name is unknown here."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Europe/Berlin")


def digest_due(now: datetime, timezone: str, weekday: int, hour: int) -> bool:
    """Whether this week's digest is due in the tenant's local time (from ``weekday`` ``hour`` on;
    the delivery key makes planning it again later in the week a no-op)."""
    local = now.astimezone(zone(timezone))
    return (local.weekday(), local.hour) >= (weekday, hour)


def quiet_until(now: datetime, start: time, end: time, timezone: str) -> datetime | None:
    """The end of the quiet window ``now`` falls into (in UTC), or None outside it. The window is in
    the tenant's local time and may cross midnight (start after end, e.g. 21:00-07:00)."""
    tz = zone(timezone)
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside, day = start <= clock < end, local.date()
    elif clock >= start:
        inside, day = True, local.date() + timedelta(days=1)
    else:
        inside, day = clock < end, local.date()
    if not inside:
        return None
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


_ADDRESS = re.compile(r"[^\s<>\"'@,;:]+@[^\s<>\"'@,;:]+")


def without_addresses(text: str) -> str:
    """Error texts of mail servers often quote the recipient; the log and the events keep no address."""
    return _ADDRESS.sub("<address>", text)


def synthetic_trigger(*parts: str) -> UUID:
    """A stable id for messages not caused by one event (reminders, digests), so that triggering
    the same reminder or the same week's digest twice yields the same delivery key."""
    return uuid5(NAMESPACE_URL, "lotse:notifications:" + ":".join(parts))


def delivery_key(trigger_event_id: str, recipient_kind: str, recipient_id: str, channel: Channel) -> str:
    return f"{trigger_event_id}:{recipient_kind}:{recipient_id}:{channel}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_valid(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: datetime | None = None, tolerance: int = 300
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent (no replays)."""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    current = int((now or datetime.now(UTC)).timestamp())
    if abs(current - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def backoff_seconds(attempt: int, *, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2^(attempt-1)``, at most
    ``cap``, so that retries of many deliveries do not arrive in lockstep."""
    growth: int = 2 ** max(attempt - 1, 0)
    ceiling = min(cap, base * growth)
    return ceiling / 2 + jitter() * ceiling / 2


def sample_payload(kind: str) -> dict[str, Any]:
    """A payload like a real one of this kind, from the contract examples (for template checks)."""
    opened = NeedOpened.example()
    need = NeedSnapshot.from_event(opened)
    if kind in {catalogue.MATCH_PROPOSED, catalogue.PROPOSAL_REMINDER}:
        # As the worker adds them to an email at send time.
        links = {
            f"{choice}_url": f"https://lotse.example/answers/sample.token?choice={choice}"
            for choice in ("accept", "decline")
        }
        return proposal_payload(MatchProposed.example(), need) | links
    if kind in {catalogue.PROPOSAL_ACCEPTED, catalogue.NEED_CANCELLED}:
        return need_payload(str(opened.need_id), need)
    if kind == catalogue.NEED_UNSTAFFED:
        return unstaffed_payload(NeedUnstaffed.example(), need)
    if kind == catalogue.NEED_STAFFED:
        return staffed_payload(NeedStaffed.example(), need)
    if kind == catalogue.WEEKLY_DIGEST:
        sample = Need("sample", str(opened.need_id), version=1, snapshot=need)
        sample_needs = [
            replace(sample, status=NeedStatus.OPEN, unstaffed=True),
            replace(sample, status=NeedStatus.OPEN, unstaffed=False),
            replace(sample, status=NeedStatus.STAFFED),
        ]
        return digest_payload(sample_needs, datetime(2026, 11, 23, tzinfo=UTC))
    return {}
