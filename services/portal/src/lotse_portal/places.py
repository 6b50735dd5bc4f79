"""Where a need or a volunteer is placed, without I/O: the need form's address search decided, and
the place that was used said in words (on the initiative's page and the volunteer's overview).

Nothing is left unplaced in silence: a need's place is the point of its address (when the
registry's geocoder finds exactly one in its postcode), a candidate the person picked, or the
centroid of its postcode, which the person is told about (without a geocoder the form says so;
with one, only on their explicit choice when the address was not found). The street itself is
never stored: a need's place is a point, its postcode and district.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lotse_portal.maps import Point, PostcodePoint, distance_km, nearest
from lotse_runtime.i18n import N_

# The place choices the need form sends back (``place_choice``): the postcode's centroid, or one
# of the candidates as "lat,lon".
CENTRE = "centre"
_CANDIDATE = re.compile(r"^(-?[0-9]{1,2}(\.[0-9]{1,8})?),(-?[0-9]{1,3}(\.[0-9]{1,8})?)$")
# Same point: the registry stores what it was given, so a centroid comes back unchanged.
SAME_KM = 0.001

NOT_FOUND = N_("Diese Adresse haben wir nicht gefunden. Bitte prüfen Sie Straße, Hausnummer und Postleitzahl.")
UNAVAILABLE = N_("Die Adresssuche antwortet gerade nicht. Bitte versuchen Sie es später noch einmal.")
SEVERAL = N_("Zu dieser Adresse passen mehrere Orte. Bitte wählen Sie den richtigen.")


@dataclass(frozen=True)
class AddressCandidate:
    """A place the registry's address search found."""

    label: str
    point: Point
    postcode: str | None = None
    district: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AddressCandidate:
        point: Mapping[str, Any] = data["point"]
        return cls(
            str(data.get("label") or ""),
            Point(float(point["lat"]), float(point["lon"])),
            str(data["postcode"]) if data.get("postcode") else None,
            str(data["district"]) if data.get("district") else None,
        )

    @property
    def choice(self) -> str:
        """The value of its radio button."""
        return f"{self.point.lat},{self.point.lon}"


def read_candidates(answer: Any) -> list[AddressCandidate]:
    """The registry's ``GET /tenants/{tenant}/places`` answer; rows it cannot read are left out."""
    rows = answer.get("items") if isinstance(answer, Mapping) else None
    found = []
    for row in rows if isinstance(rows, list) else []:
        try:
            found.append(AddressCandidate.from_json(row))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def chosen_point(choice: str) -> Point | None:
    """A candidate's point from its radio button's value (None: not a point)."""
    match = _CANDIDATE.fullmatch(choice)
    if match is None:
        return None
    lat, lon = float(match.group(1)), float(match.group(3))
    return Point(lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def need_place(point: Point, centre: PostcodePoint) -> dict[str, Any]:
    """A need's place (the contract's ``Place``): the point, its postcode and that postcode's district."""
    place: dict[str, Any] = {"point": point.as_json(), "postcode": centre.postcode}
    if centre.district:
        place["district"] = centre.district
    return place


def centre_place(centre: PostcodePoint) -> dict[str, Any]:
    return need_place(Point(centre.lat, centre.lon), centre)


@dataclass(frozen=True)
class PlaceDecision:
    """What the need form's address comes to: a place, or candidates to choose from, or a message
    next to the street field (with the postcode's centroid offered instead)."""

    place: dict[str, Any] | None = None
    candidates: tuple[AddressCandidate, ...] = field(default_factory=tuple)
    error: str | None = None
    centre: PostcodePoint | None = None  # offered instead, for the person to choose


def place_without_search(
    *, street: str, choice: str, searched: str, centre: PostcodePoint, address_search: bool
) -> PlaceDecision | None:
    """The place where no search is needed: the person chose the centroid or one of the candidates
    shown for this very street, or gave no street (or there is no address search); None: search."""
    if choice == CENTRE:
        return PlaceDecision(place=centre_place(centre))
    point = chosen_point(choice)
    if point is not None and street and street == searched:
        return PlaceDecision(place=need_place(point, centre))
    if not street or not address_search:
        return PlaceDecision(place=centre_place(centre))
    return None


def place_from_search(found: Sequence[AddressCandidate] | None, centre: PostcodePoint) -> PlaceDecision:
    """The place from the address search's answer (None: the search did not answer). Candidates in
    another postcode than the one given are not the address meant."""
    if found is None:
        return PlaceDecision(error=UNAVAILABLE, centre=centre)
    fitting = tuple(candidate for candidate in found if candidate.postcode in (None, centre.postcode))
    if not fitting:
        return PlaceDecision(error=NOT_FOUND, centre=centre)
    if len(fitting) == 1:
        return PlaceDecision(place=need_place(fitting[0].point, centre))
    return PlaceDecision(candidates=fitting, error=SEVERAL, centre=centre)


# --- the place used, in words ----------------------------------------------------------------


@dataclass(frozen=True)
class PlaceInWords:
    """A place as people read it: ``Postleitzahl 48143 (Mitte)``, and whether it is that
    postcode's centre (else a point near it: an address, or a point chosen on the map)."""

    postcode: str
    district: str
    at_centre: bool


def describe(
    point: Mapping[str, Any] | None, postcode: str | None, table: Sequence[PostcodePoint], *, by_nearest: bool
) -> PlaceInWords | None:
    """The place a need or a volunteer's home area has in the registry, in words. A point that is
    not a postcode's centroid is named by its own postcode, or with ``by_nearest`` (a point chosen
    on the map) by the postcode whose centroid is nearest. None: neither a point nor a postcode."""
    by_postcode = {row.postcode: row for row in table}
    try:
        where = Point(float(point["lat"]), float(point["lon"])) if point else None
    except (KeyError, TypeError, ValueError):
        where = None
    own = by_postcode.get(postcode) if postcode else None
    if where is None:
        return PlaceInWords(postcode, own.district if own else "", True) if postcode else None
    if own is not None and distance_km(Point(own.lat, own.lon), where) < SAME_KM:
        return PlaceInWords(own.postcode, own.district, True)
    near = nearest(table, where) if by_nearest or not postcode else None
    if near is not None:
        return PlaceInWords(near.postcode, near.district, False)
    return PlaceInWords(postcode, own.district if own else "", False) if postcode else None
