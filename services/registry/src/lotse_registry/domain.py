"""Pure registry rules: need status transitions, who may do what, what each caller may see,
certificate checks and their expiry notices, and the volunteer search's filters.

No I/O here: handlers load documents, ask these functions, and persist what they decide.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from lotse_contracts.events.organisations import OrganisationKind
from lotse_contracts.events.values import BASE_SKILLS, CertificateKind, LanguageLevel, Weekday
from lotse_runtime.auth import Principal, Role


class DomainError(Exception):
    """A command that contradicts the registry's state; the HTTP layer answers 409 or 422.
    ``field`` names the offending field of the request, where there is one."""

    def __init__(self, status: int, title: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field


# --- needs -----------------------------------------------------------------------------------


class NeedStatus(StrEnum):
    OPEN = "open"
    STAFFED = "staffed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


# open -> staffed -> closed; open or staffed -> cancelled; staffed -> open when someone steps back.
_NEED_TRANSITIONS: dict[NeedStatus, frozenset[NeedStatus]] = {
    NeedStatus.OPEN: frozenset({NeedStatus.STAFFED, NeedStatus.CLOSED, NeedStatus.CANCELLED}),
    NeedStatus.STAFFED: frozenset({NeedStatus.OPEN, NeedStatus.CLOSED, NeedStatus.CANCELLED}),
    NeedStatus.CLOSED: frozenset(),
    NeedStatus.CANCELLED: frozenset(),
}


def can_transition(current: NeedStatus, target: NeedStatus) -> bool:
    return target in _NEED_TRANSITIONS[current]


def require_transition(current: str, target: NeedStatus) -> None:
    if not can_transition(NeedStatus(current), target):
        raise DomainError(409, "Invalid status change", f"a need that is {current} cannot become {target}")


def require_editable_need(status: str) -> None:
    if NeedStatus(status) in {NeedStatus.CLOSED, NeedStatus.CANCELLED}:
        raise DomainError(409, "Need is over", f"a need that is {status} cannot be changed")


# --- volunteers ------------------------------------------------------------------------------


class VolunteerStatus(StrEnum):
    ACTIVE = "active"  # may be proposed
    WITHDRAWN = "withdrawn"  # stays registered, never proposed again
    ERASED = "erased"  # only an anonymous tombstone is left


def require_active(status: str) -> None:
    if status != VolunteerStatus.ACTIVE:
        raise DomainError(409, "Volunteer is not active", f"the volunteer is {status}")


def tenant_skills(extra_skills: Iterable[str]) -> frozenset[str]:
    """The tenant's skill catalogue: the base catalogue plus its own extras."""
    return frozenset(BASE_SKILLS) | frozenset(extra_skills)


def unknown_skills(skills: Iterable[str], extra_skills: Iterable[str]) -> list[str]:
    catalogue = tenant_skills(extra_skills)
    return sorted({skill for skill in skills if skill not in catalogue})


# --- who may do what -------------------------------------------------------------------------


def in_tenant(principal: Principal, tenant: str) -> bool:
    """Whether the caller belongs to ``tenant``; platform admins belong to none."""
    return principal.tenant == tenant


def manages_organisation(principal: Principal, organisation_id: str | None) -> bool:
    """Coordinators manage every organisation of their tenant; initiative admins only their own."""
    if principal.has(Role.COORDINATOR):
        return True
    return (
        principal.has(Role.INITIATIVE_ADMIN)
        and organisation_id is not None
        and principal.organisation == str(organisation_id)
    )


def may_set_kind(principal: Principal, current_kind: str, new_kind: str) -> bool:
    """Which organisation is the coordination office is the municipality's decision: only its
    coordinators make an organisation the office (or stop it being one); an initiative admin
    may change its own organisation's kind otherwise."""
    office = OrganisationKind.COORDINATION_OFFICE.value
    if current_kind == new_kind or office not in (current_kind, new_kind):
        return True
    return principal.has(Role.COORDINATOR, Role.PLATFORM_ADMIN)


def may_read_volunteer(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    if principal.has(Role.VOLUNTEER) and principal.volunteer_id == volunteer["_id"]:
        return True
    return manages_organisation(principal, volunteer.get("organisation_id"))


def may_edit_volunteer(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    return may_read_volunteer(principal, volunteer)


def may_erase_volunteer(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    """The volunteer, or the coordination office on the volunteer's request."""
    if principal.has(Role.VOLUNTEER) and principal.volunteer_id == volunteer["_id"]:
        return True
    return principal.has(Role.COORDINATOR)


def may_see_contact(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    """Contact details only for those who need them: the volunteer, their own organisation,
    and the coordination office for the volunteers it coordinates itself (those registered
    directly with the municipality, without an organisation)."""
    if principal.has(Role.VOLUNTEER) and principal.volunteer_id == volunteer["_id"]:
        return True
    organisation_id = volunteer.get("organisation_id")
    if principal.has(Role.INITIATIVE_ADMIN) and organisation_id and principal.organisation == organisation_id:
        return True
    return principal.has(Role.COORDINATOR) and organisation_id is None


def may_list_contact(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    """Contact details in a list (asked for with ``with_contact``) only for the admins of the
    volunteer's own organisation, who reach their volunteers themselves; the coordination
    office's lists keep to the display name and it reads one volunteer at a time."""
    organisation_id = volunteer.get("organisation_id")
    return principal.has(Role.INITIATIVE_ADMIN) and bool(organisation_id) and principal.organisation == organisation_id


def may_check_certificates(principal: Principal, volunteer: Mapping[str, Any]) -> bool:
    """Who records and revokes that a certificate was seen: whoever manages the volunteer, i.e.
    coordinators for every volunteer of their tenant and initiative admins for their own
    organisation's (the organisation that deploys a volunteer is the one that looks at the
    certificate, as with the extended police certificate under § 72a SGB VIII)."""
    return manages_organisation(principal, volunteer.get("organisation_id"))


def may_name_contact_person(principal: Principal) -> bool:
    """A volunteer's contact person at the office is the office's decision."""
    return principal.has(Role.COORDINATOR)


def staff_id(principal: Principal) -> str:
    """The id of a member of the office's staff (or of whoever else acts): the same stable UUID
    of the token's subject that a volunteer's id is, so one person keeps one id at every sign-in."""
    return principal.volunteer_id


def may_see_household_ref(principal: Principal, need: Mapping[str, Any]) -> bool:
    """The household reference is for the need's owner and the coordination office only."""
    return principal.has(Role.COORDINATOR, Role.PARTNER) or manages_organisation(principal, need["organisation_id"])


def may_read_need(principal: Principal, need: Mapping[str, Any]) -> bool:
    """Owners and coordinators always; volunteers see open needs (to pick one) and their own."""
    if principal.has(Role.COORDINATOR, Role.PARTNER) or manages_organisation(principal, need["organisation_id"]):
        return True
    if principal.has(Role.VOLUNTEER):
        return need["status"] == NeedStatus.OPEN or principal.volunteer_id in need.get("committed", [])
    return False


def may_manage_need(principal: Principal, organisation_id: str) -> bool:
    return manages_organisation(principal, organisation_id)


# --- views -----------------------------------------------------------------------------------

VOLUNTEER_PUBLIC_FIELDS = (
    "volunteer_id",
    "organisation_id",
    "status",
    "skills",
    "languages",
    "travel_radius_km",
    "certificates",
    "certificate_checks",
    "contact_person_id",
    "availability",
    "engagements",
    "version",
    "created_at",
)


def volunteer_view(
    principal: Principal,
    volunteer: Mapping[str, Any],
    *,
    in_list: bool,
    with_contact: bool = False,
    today: date,
) -> dict[str, Any]:
    """What this caller may see of a volunteer. Lists carry no e-mail addresses or phones, except
    for an organisation's own admins who ask for them (``with_contact``, see
    :func:`may_list_contact`), and the home area (where someone lives) is shown only with the
    contact of one volunteer. The declared certificates stay as the volunteer gave them;
    ``certificate_status`` says for each kind whether the office has checked it."""
    if volunteer.get("status") == VolunteerStatus.ERASED:
        return {"volunteer_id": volunteer["_id"], "status": VolunteerStatus.ERASED, "version": volunteer["version"]}
    view: dict[str, Any] = {"volunteer_id": volunteer["_id"]}
    view.update({name: volunteer.get(name) for name in VOLUNTEER_PUBLIC_FIELDS if name != "volunteer_id"})
    view["certificate_checks"] = list(volunteer.get("certificate_checks") or [])
    view["certificate_status"] = certificate_status(volunteer, today)
    if may_see_contact(principal, volunteer):
        contact = dict(volunteer["contact"])
        if in_list and not (with_contact and may_list_contact(principal, volunteer)):
            view["contact"] = {"display_name": contact["display_name"]}
        elif in_list:
            view["contact"] = contact
        else:
            view["contact"] = contact
            view["home_area"] = volunteer["home_area"]
            view["consent"] = volunteer.get("consent")
    return view


def may_see_exact_place(principal: Principal, need: Mapping[str, Any]) -> bool:
    """A need's point and postcode can be where a refugee family lives (housing help, childcare):
    its owner, the office and partners see them, a volunteer only once committed to the need."""
    if may_see_household_ref(principal, need):
        return True
    return principal.has(Role.VOLUNTEER) and principal.volunteer_id in need.get("committed", [])


def need_view(principal: Principal, need: Mapping[str, Any]) -> dict[str, Any]:
    view = {key: value for key, value in need.items() if key not in {"_id", "tenant", "partner_ref", "reported_by"}}
    view["need_id"] = need["_id"]
    if not may_see_exact_place(principal, need) and "place" in view:
        # Coarsened here, not by the client: the district (matching adds the volunteer's distance).
        view["place"] = {"district": (view["place"] or {}).get("district")}
    if not may_see_household_ref(principal, need):
        view.pop("household_ref", None)
        view.pop("committed", None)
    return view


# --- certificate checks ----------------------------------------------------------------------

# Before a checked certificate runs out, the volunteer and the office are told this many weeks
# ahead, longest notice first.
EXPIRY_NOTICE_WEEKS: tuple[int, ...] = (8, 2)


class CheckStatus(StrEnum):
    IN_FORCE = "in_force"  # the latest check of its kind, counted by matching while valid
    SUPERSEDED = "superseded"  # a later check of the same kind replaced it
    REVOKED = "revoked"  # the office took it back


class RevocationReason(StrEnum):
    RECORDED_IN_ERROR = "recorded_in_error"
    WITHDRAWN = "withdrawn"  # the certificate was withdrawn or a new entry came to light
    OTHER = "other"


class CertificateState(StrEnum):
    CHECKED = "checked"  # the office saw it, and it is valid today
    CHECK_EXPIRED = "check_expired"  # the office saw it, but its validity has run out
    DECLARED_NOT_CHECKED = "declared_not_checked"  # only the volunteer says so


def check_problem(seen_on: date, valid_until: date, today: date) -> DomainError | None:
    """Why a check cannot be recorded, naming the field; None if it can."""
    if seen_on > today:
        return DomainError(422, "Invalid check", "seen_on: lies in the future", field="seen_on")
    if valid_until < seen_on:
        return DomainError(422, "Invalid check", "valid_until: is before seen_on", field="valid_until")
    if valid_until < today:
        return DomainError(
            422, "Invalid check", "valid_until: has passed; an expired certificate is no check", field="valid_until"
        )
    return None


def in_force(volunteer: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    """The volunteer's check of this kind in force (the latest, whatever its validity), if any."""
    return next((check for check in volunteer.get("certificate_checks") or [] if check["kind"] == kind), None)


def check_valid_on(check: Mapping[str, Any], day: date) -> bool:
    return date.fromisoformat(check["valid_until"]) >= day


def certificate_status(volunteer: Mapping[str, Any], today: date) -> list[dict[str, Any]]:
    """Per certificate kind the volunteer declared or the office checked: what counts of it."""
    declared = {certificate["kind"] for certificate in volunteer.get("certificates") or []}
    checks = {check["kind"]: check for check in volunteer.get("certificate_checks") or []}
    status = []
    for kind in sorted(declared | set(checks)):
        check = checks.get(kind)
        if check is None:
            state, valid_until = CertificateState.DECLARED_NOT_CHECKED, None
        else:
            valid = check_valid_on(check, today)
            state = CertificateState.CHECKED if valid else CertificateState.CHECK_EXPIRED
            valid_until = check["valid_until"]
        status.append({"kind": kind, "declared": kind in declared, "state": state.value, "valid_until": valid_until})
    return status


def tenant_zone(tenant: Mapping[str, Any] | None) -> tzinfo:
    """The municipality's time zone: a day (of a check's validity, of a notice) is its day, not
    UTC's (after midnight in Berlin, UTC is still on the day before)."""
    return ZoneInfo(tenant["timezone"]) if tenant else UTC


def tenant_today(tenant: Mapping[str, Any] | None, now: datetime) -> date:
    return now.astimezone(tenant_zone(tenant)).date()


def notice_due_at(valid_until: date, weeks: int, zone: tzinfo) -> datetime:
    """When the notice ``weeks`` before the last valid day is due: the start of its day in the
    municipality's time zone (as UTC)."""
    return datetime.combine(valid_until - timedelta(weeks=weeks), time.min, tzinfo=zone).astimezone(UTC)


def pending_notices(valid_until: date, now: datetime, zone: tzinfo) -> list[int]:
    """The notices still ahead for a check recorded ``now``; those whose day has come are left
    out, since whoever recorded the check has just seen its date."""
    return [weeks for weeks in EXPIRY_NOTICE_WEEKS if notice_due_at(valid_until, weeks, zone) > now]


def next_notice_at(valid_until: date, pending: Sequence[int], zone: tzinfo) -> datetime | None:
    return min((notice_due_at(valid_until, weeks, zone) for weeks in pending), default=None)


@dataclass(frozen=True)
class NoticeDecision:
    send: int | None  # the notice to send now (weeks before), or None
    pending: list[int]  # the notices still ahead after this one


def notice_now(valid_until: date, pending: Sequence[int], now: datetime, zone: tzinfo) -> NoticeDecision:
    """Which notice to send at ``now``: of those due, only the shortest (after an outage that
    spanned two, the volunteer hears once, with the nearer date); none once the last valid day
    has passed in the municipality."""
    due = [weeks for weeks in pending if notice_due_at(valid_until, weeks, zone) <= now]
    ahead = [weeks for weeks in pending if weeks not in due]
    if not due or valid_until < now.astimezone(zone).date():
        return NoticeDecision(None, ahead)
    return NoticeDecision(min(due), ahead)


# --- searching volunteers --------------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0088
LANGUAGE_LEVELS = [level.value for level in LanguageLevel]
LANGUAGE_WISH = re.compile(rf"(?P<code>[a-z]{{2}})(:(?P<level>{'|'.join(LANGUAGE_LEVELS)}))?")


@dataclass(frozen=True)
class LanguageWish:
    language: str
    min_level: LanguageLevel | None = None

    @classmethod
    def parse(cls, text: str) -> LanguageWish:
        """``ar`` or ``ar:b2`` (at least B2); anything else is refused naming ``query.language``."""
        found = LANGUAGE_WISH.fullmatch(text)
        if found is None:
            raise DomainError(
                422,
                "Invalid request",
                f"query.language: give a language code, optionally with a minimum level "
                f"({', '.join(LANGUAGE_LEVELS)}), like ar or ar:b2",
                field="query.language",
            )
        code, level = found["code"], found["level"]
        return cls(code, LanguageLevel(level) if level else None)


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class VolunteerSearch:
    """The filters of the volunteer list; ``query`` is the part the database narrows down by,
    ``accepts`` the exact rule for each document it returns."""

    status: str | None = None
    organisation_id: str | None = None
    skills: tuple[str, ...] = ()
    languages: tuple[LanguageWish, ...] = ()
    postcode: str | None = None
    near: Circle | None = None
    available_on: Weekday | None = None
    available_at: time | None = None
    certificate_checked: bool | None = None
    certificate_kind: CertificateKind | None = None
    contact_person_id: str | None = None
    name: str | None = None
    today: date = date.min

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.status:
            query["status"] = self.status
        if self.organisation_id:
            query["organisation_id"] = self.organisation_id
        # Each wanted value an equality of its own ($and), which every MongoDB dialect matches
        # against an array the same way (SecantusDB's $all missed values inside sub-documents).
        every = [{"skills": skill} for skill in sorted(set(self.skills))]
        every += [{"languages.language": code} for code in sorted({wish.language for wish in self.languages})]
        if every:
            query["$and"] = every
        if self.postcode:
            query["home_area.postcode"] = self.postcode
        if self.contact_person_id:
            query["contact_person_id"] = self.contact_person_id
        return query

    def accepts(self, principal: Principal, volunteer: Mapping[str, Any]) -> bool:
        if volunteer.get("status") == VolunteerStatus.ERASED:
            return not self._narrows()
        return (
            self._speaks(volunteer)
            and self._near(volunteer)
            and self._available(volunteer)
            and self._certified(volunteer)
            and self._named(principal, volunteer)
        )

    def _narrows(self) -> bool:
        """Whether any filter beyond status and organisation applies (erased volunteers have
        nothing left to match it)."""
        return bool(
            self.skills
            or self.languages
            or self.postcode
            or self.near
            or self.available_on
            or self.available_at
            or self.certificate_checked is not None
            or self.certificate_kind
            or self.contact_person_id
            or self.name
        )

    def _speaks(self, volunteer: Mapping[str, Any]) -> bool:
        spoken: dict[str, int] = {}
        for skill in volunteer.get("languages") or []:
            rank = LanguageLevel(skill["level"]).rank
            spoken[skill["language"]] = max(rank, spoken.get(skill["language"], -1))
        return all(
            wish.language in spoken and (wish.min_level is None or spoken[wish.language] >= wish.min_level.rank)
            for wish in self.languages
        )

    def _near(self, volunteer: Mapping[str, Any]) -> bool:
        if self.near is None:
            return True
        point = (volunteer.get("home_area") or {}).get("point")
        if point is None:
            return False
        return haversine_km((point["lat"], point["lon"]), (self.near.lat, self.near.lon)) <= self.near.radius_km

    def _available(self, volunteer: Mapping[str, Any]) -> bool:
        if self.available_on is None and self.available_at is None:
            return True
        for slot in (volunteer.get("availability") or {}).get("weekly_slots") or []:
            if self.available_on is not None and slot["weekday"] != self.available_on.value:
                continue
            if self.available_at is None or _local(slot["start"]) <= self.available_at < _local(slot["end"]):
                return True
        return False

    def _certified(self, volunteer: Mapping[str, Any]) -> bool:
        if self.certificate_checked is None and self.certificate_kind is None:
            return True
        valid = [
            check
            for check in volunteer.get("certificate_checks") or []
            if check_valid_on(check, self.today)
            and (self.certificate_kind is None or check["kind"] == self.certificate_kind.value)
        ]
        return bool(valid) is (self.certificate_checked is not False)

    def _named(self, principal: Principal, volunteer: Mapping[str, Any]) -> bool:
        """A name matches only where the caller may see it: the search tells nothing more than
        the list shows."""
        if self.name is None:
            return True
        if not may_see_contact(principal, volunteer):
            return False
        return self.name.casefold() in str((volunteer.get("contact") or {}).get("display_name", "")).casefold()


def _local(text: str) -> time:
    """A slot's time as the tenant's local time (slots are local; an offset written with one says nothing more)."""
    return time.fromisoformat(text).replace(tzinfo=None)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
