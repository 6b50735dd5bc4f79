"""Pure registry rules: need status transitions, who may do what, what each caller may see.

No I/O here: handlers load documents, ask these functions, and persist what they decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from lotse_contracts.events.organisations import OrganisationKind
from lotse_contracts.events.values import BASE_SKILLS
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
    "availability",
    "engagements",
    "version",
    "created_at",
)


def volunteer_view(principal: Principal, volunteer: Mapping[str, Any], *, in_list: bool) -> dict[str, Any]:
    """What this caller may see of a volunteer. Lists never carry e-mail addresses or phones,
    and the home area (where someone lives) is shown only with the contact."""
    if volunteer.get("status") == VolunteerStatus.ERASED:
        return {"volunteer_id": volunteer["_id"], "status": VolunteerStatus.ERASED, "version": volunteer["version"]}
    view: dict[str, Any] = {"volunteer_id": volunteer["_id"]}
    view.update({name: volunteer.get(name) for name in VOLUNTEER_PUBLIC_FIELDS if name != "volunteer_id"})
    if may_see_contact(principal, volunteer):
        contact = dict(volunteer["contact"])
        if in_list:
            view["contact"] = {"display_name": contact["display_name"]}
        else:
            view["contact"] = contact
            view["home_area"] = volunteer["home_area"]
            view["consent"] = volunteer.get("consent")
    return view


def need_view(principal: Principal, need: Mapping[str, Any]) -> dict[str, Any]:
    view = {key: value for key, value in need.items() if key not in {"_id", "tenant", "partner_ref", "reported_by"}}
    view["need_id"] = need["_id"]
    if not may_see_household_ref(principal, need):
        view.pop("household_ref", None)
        view.pop("committed", None)
    return view
