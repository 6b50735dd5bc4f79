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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lotse_contracts import (
    MatchProposed,
    NeedOpened,
    NeedStaffed,
    NeedUnstaffed,
    ProposalDeclined,
    VolunteerCertificateExpiring,
)
from lotse_contracts.events.notifications import RecipientKind
from lotse_contracts.events.values import EXAMPLE_VOLUNTEER_ID, Channel, OneOffWindow, WeeklyRecurrence
from lotse_notifications import catalogue
from lotse_notifications.records import Contact, DigestItem, Need, NeedSnapshot, NeedStatus

SIGNATURE_HEADER = "X-Lotse-Signature"
TIMESTAMP_HEADER = "X-Lotse-Timestamp"
DELIVERY_HEADER = "X-Lotse-Delivery"
EVENT_TYPE_HEADER = "X-Lotse-Event-Type"

# Channels every volunteer message is queued on (a channel not chosen is recorded as skipped);
# SMS only for those who chose it, so that the log does not fill with SMS nobody wanted.
PERSON_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.IN_APP)
# Engagements: remind this long before the start; thank at most this long after the end (a
# scheduler that was down for longer does not thank for something long past).
ENGAGEMENT_REMINDER_BEFORE = timedelta(hours=24)
THANKS_WITHIN = timedelta(days=7)
# The longest a daily digest gets; what is beyond is counted ("and 12 more").
DAILY_DIGEST_ITEMS = 100


def volunteer_channels(contact: Contact | None) -> tuple[Channel, ...]:
    """The channels a volunteer message is queued on: email and in-app always (one not chosen is
    skipped as opted out), SMS when the volunteer chose it."""
    if contact is not None and contact.details is not None and Channel.SMS in contact.details.channels:
        return (*PERSON_CHANNELS, Channel.SMS)
    return PERSON_CHANNELS


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


def channel_problem(contact: Contact, channel: Channel, *, sms_gateway: bool) -> str | None:
    """Why a channel the volunteer chose cannot reach them whatever the message (None: it can).
    In-app messages always arrive: Lotse stores them itself."""
    details = contact.details
    if details is None or channel is Channel.IN_APP:
        return None
    if channel is Channel.SMS:
        if not sms_gateway:
            return "sms_unavailable"
        if not details.phone:
            return "no_phone"
    if channel is Channel.EMAIL and contact.contact_consent is False:
        return "no_contact_consent"
    if channel in contact.failed_channels:
        return "bounced"
    return None


def unreachable(contact: Contact | None, *, sms_gateway: bool) -> dict[Channel, str] | None:
    """The problem of each channel the volunteer chose, when none of them works; None when one
    works, or when there is nobody to reach (withdrawn, erased, not read yet)."""
    if contact is None or contact.details is None or not contact.active:
        return None
    problems = {}
    for channel in contact.details.channels:
        problem = channel_problem(contact, channel, sms_gateway=sms_gateway)
        if problem is None:
            return None
        problems[channel] = problem
    return problems or None


# Static problems a send can meet as well (the settings or the contact changed since the last check).
CHANNEL_PROBLEM_CODES = frozenset({"sms_unavailable", "no_phone", "no_contact_consent"})


def refuses_address(channel: Channel, code: str) -> bool:
    """Whether a send's final failure says the volunteer's address itself does not work (a mail
    server refused the mailbox, the SMS gateway the number), rather than that a server is away."""
    if channel is Channel.EMAIL:
        return code in {"recipient_refused", "smtp_550", "smtp_551", "smtp_553"}
    if channel is Channel.SMS:
        return code in {"sms_http_400", "sms_http_422"}
    return False


@dataclass(frozen=True)
class SharedPerson:
    """What a message to the office or an organisation shows of a volunteer: the name, and the
    contact data only where the volunteer's consent or the registry's own rule allows it."""

    name: str
    email: str | None = None
    phone: str | None = None


def shared_with(contact: Contact | None, recipient_kind: str, recipient_id: str) -> SharedPerson | None:
    """What ``recipient`` (the office: ``tenant``; an ``organisation``) may read of a volunteer who
    committed to one of its needs: always the name; the email address and phone number only if
    the volunteer agreed to share them with the organisations whose needs they take on, or if
    the registry shows them to this recipient anyway (the volunteer's own organisation; the office
    for the volunteers it coordinates itself, those without an organisation), and never without
    consent to be contacted. None for someone erased or not read yet."""
    if contact is None or contact.details is None:
        return None
    details = contact.details
    own = (recipient_kind == RecipientKind.ORGANISATION.value and contact.organisation_id == recipient_id) or (
        recipient_kind == RecipientKind.TENANT.value
        and contact.organisation_id is None
        and contact.contact_consent is not None
    )
    shares = contact.contact_consent is not False and (contact.share_consent is True or own)
    if not shares:
        return SharedPerson(details.display_name)
    return SharedPerson(details.display_name, details.email, details.phone)


@dataclass(frozen=True)
class ContactPoint:
    """Whom a volunteer asks about an engagement: the organisation that owns the need, or the office."""

    name: str
    email: str


def engagement_window(
    schedule: OneOffWindow | WeeklyRecurrence, timezone: str, after: datetime
) -> tuple[datetime | None, datetime | None]:
    """When an engagement starts and ends, in UTC. A one-off need: its window. A weekly need: the
    first occurrence that has not begun at ``after`` (None once the recurrence is over) and the end
    of its last occurrence (None without a last day). Weekly slots are local times of ``timezone``."""
    if isinstance(schedule, OneOffWindow):
        return _utc(schedule.start), _utc(schedule.end)
    tz = zone(timezone)
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    first_day = max(schedule.starts_on, after.astimezone(tz).date())
    start: datetime | None = None
    for offset in range(8):
        day = first_day + timedelta(days=offset)
        if schedule.ends_on is not None and day > schedule.ends_on:
            break
        begins = [
            datetime.combine(day, slot.start, tzinfo=tz)
            for slot in schedule.slots
            if weekdays[day.weekday()] == slot.weekday.value
        ]
        upcoming = [moment for moment in begins if moment >= after]
        if upcoming:
            start = min(upcoming)
            break
    end: datetime | None = None
    if schedule.ends_on is not None:
        for offset in range(7):
            day = schedule.ends_on - timedelta(days=offset)
            if day < schedule.starts_on:
                break
            ends = [
                datetime.combine(day, slot.end, tzinfo=tz)
                for slot in schedule.slots
                if weekdays[day.weekday()] == slot.weekday.value
            ]
            if ends:
                end = max(ends)
                break
    return (_utc(start) if start else None), (_utc(end) if end else None)


def _utc(moment: datetime) -> datetime:
    """In UTC and to the second, as the database keeps it (milliseconds), so that comparing a
    stored start with a newly computed one finds them equal."""
    return moment.astimezone(UTC).replace(microsecond=0)


def daily_digest_moment(now: datetime, timezone: str, at: time) -> tuple[date, datetime]:
    """Today in the tenant's time and the moment today's daily digest is due (aware)."""
    tz = zone(timezone)
    today = now.astimezone(tz).date()
    return today, datetime.combine(today, at, tzinfo=tz)


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
    """How many committed and who (their ids: names and the contact data the recipient may see
    are looked up when the message is rendered, so the log keeps none). How many the need asks
    for is read from the need when the message is rendered."""
    return {
        "need_id": str(data.need_id),
        "need": _snapshot_document(need),
        "committed": len(data.volunteer_ids),
        "volunteer_ids": [str(volunteer_id) for volunteer_id in data.volunteer_ids],
    }


def declined_payload(data: ProposalDeclined, need: NeedSnapshot | None) -> dict[str, Any]:
    """A declined proposal, for the daily digest: the need and the reason if one was given (not who)."""
    reason = data.reason.value if data.reason is not None else None
    return {"need_id": str(data.need_id), "need": _snapshot_document(need), "reason": reason}


def certificate_payload(data: VolunteerCertificateExpiring) -> dict[str, Any]:
    """A checked certificate that runs out: whose, which kind, its last day and which notice."""
    return {
        "volunteer_id": str(data.volunteer_id),
        "certificate": data.kind.value,
        "valid_until": data.valid_until.isoformat(),
        "weeks_before": data.weeks_before,
    }


def unreachable_payload(volunteer_id: str, problems: Mapping[Channel, str]) -> dict[str, Any]:
    return {
        "volunteer_id": volunteer_id,
        "problems": [{"channel": channel.value, "problem": problem} for channel, problem in problems.items()],
    }


def question_payload(
    thread_id: str, volunteer_id: str, subject: str, link: str | None, *, first: bool = True
) -> dict[str, Any]:
    """A question to the office or its answer: which thread, whose, its subject (the volunteer's
    words) and where to read it. Never the messages themselves: they stay in Lotse, where only
    the volunteer and the office read them, and a mail or SMS is not the place for what someone
    asks about authorities or their residence."""
    return {"thread_id": thread_id, "volunteer_id": volunteer_id, "subject": subject, "link": link, "first": first}


def engagement_payload(need_id: str, proposal_id: str, starts_at: datetime | None) -> dict[str, Any]:
    """A reminder or thank-you: the need is filled in when it is sent (its latest version)."""
    payload: dict[str, Any] = {"need_id": need_id, "need": None, "proposal_id": proposal_id}
    if starts_at is not None:
        payload["starts_at"] = starts_at.isoformat()
    return payload


def daily_digest_payload(items: Iterable[DigestItem], day: date) -> dict[str, Any]:
    """What a daily digest lists: each event as its message would have said it, oldest first."""
    ordered = sorted(items, key=lambda item: item.created_at)
    shown = ordered[:DAILY_DIGEST_ITEMS]
    return {
        "day": day.isoformat(),
        "items": [{"kind": item.kind, **item.payload} for item in shown],
        "more": len(ordered) - len(shown),
    }


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
# Seven digits or more, single spaces, dashes, slashes or brackets between them, an optional
# leading +: how phone numbers are written; not within a longer word (ids, hex) or a dotted number.
_PHONE = re.compile(r"(?<![\w\-.])\+?\(?\d(?:[\s\-/()]?\d){6,}(?![\w\-.])")


def without_addresses(text: str, *, known: Iterable[str] = ()) -> str:
    """Error texts of mail servers and gateways often quote the recipient; the delivery log and the
    deliveries topic keep no e-mail address or phone number (``known``: the recipient's own, taken
    out as they are, whatever they look like)."""
    for address in known:
        if address:
            text = text.replace(address, "<address>")
    return _PHONE.sub("<phone>", _ADDRESS.sub("<address>", text))


def synthetic_trigger(*parts: str) -> UUID:
    """A stable id for messages not caused by one event (reminders, digests), so that triggering
    the same reminder or the same week's digest twice yields the same delivery key."""
    return uuid5(NAMESPACE_URL, "lotse:notifications:" + ":".join(parts))


def delivery_key(trigger_event_id: str, recipient_kind: str, recipient_id: str, channel: Channel) -> str:
    return f"{trigger_event_id}:{recipient_kind}:{recipient_id}:{channel}"


# What a delivery can wait for: read-model entries that arrive on other topics.
TENANT_REFERENCE = "tenant"
CONTACT_REFERENCE = "contact"
ORGANISATION_REFERENCE = "organisation"
NEED_REFERENCE = "need"


def reference_key(tenant: str, kind: str, reference_id: str = "") -> str:
    """The read-model entry a delivery waits for (its ``waiting_for``), as the event that brings
    it names it: ``<tenant>:contact:<volunteer id>``, ``<tenant>:need:<need id>``, ``<tenant>:tenant``."""
    return f"{tenant}:{kind}:{reference_id}" if reference_id else f"{tenant}:{kind}"


@dataclass(frozen=True)
class Reference:
    """A read-model entry a delivery waits for: the tenant itself, or one of its contacts,
    organisations or needs (``kind``) by id."""

    tenant: str
    kind: str
    id: str = ""

    @property
    def key(self) -> str:
        return reference_key(self.tenant, self.kind, self.id)


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
    if kind in {catalogue.PROPOSAL_ACCEPTED, catalogue.NEED_CANCELLED, catalogue.ENGAGEMENT_THANKS}:
        return need_payload(str(opened.need_id), need)
    if kind == catalogue.ENGAGEMENT_REMINDER:
        proposal_id = str(MatchProposed.example().proposal_id)
        starts_at, _ = engagement_window(need.schedule, "Europe/Berlin", datetime(2026, 11, 1, tzinfo=UTC))
        return engagement_payload(str(opened.need_id), proposal_id, starts_at) | {"need": need.to_document()}
    if kind in {catalogue.CERTIFICATE_EXPIRING, catalogue.CERTIFICATE_EXPIRING_OFFICE}:
        return certificate_payload(VolunteerCertificateExpiring.example())
    if kind in {catalogue.QUESTION_ASKED, catalogue.QUESTION_ANSWERED}:
        link = "https://lotse.example/questions/8a0c5bde-2f7e-4a55-9d51-3f3c8f0e9b11"
        return question_payload(
            "8a0c5bde-2f7e-4a55-9d51-3f3c8f0e9b11", EXAMPLE_VOLUNTEER_ID, "Versicherung beim Fahrdienst", link
        )
    if kind == catalogue.VOLUNTEER_UNREACHABLE:
        return unreachable_payload(EXAMPLE_VOLUNTEER_ID, {Channel.EMAIL: "bounced", Channel.SMS: "sms_unavailable"})
    if kind == catalogue.DAILY_DIGEST:
        moment = datetime(2026, 11, 24, 18, tzinfo=UTC)
        staffed = staffed_payload(NeedStaffed.example(), need)
        unstaffed = unstaffed_payload(NeedUnstaffed.example(), need)
        declined = {"need_id": str(opened.need_id), "need": need.to_document(), "reason": "too_far"}
        items = [
            DigestItem("sample", "tenant", "sample", kind_of, "trigger", payload, moment)
            for kind_of, payload in (
                (catalogue.NEED_STAFFED, staffed),
                (catalogue.NEED_UNSTAFFED, unstaffed),
                (catalogue.PROPOSAL_DECLINED, declined),
            )
        ]
        return daily_digest_payload(items, moment.date())
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
