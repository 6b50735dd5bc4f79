"""Who may be asked for a need, and how well they fit: the hard rules, the score and the reasons.

Pure logic, no I/O. `assess` is the single source of truth for the hard rules; the index only
prunes with necessary conditions before calling it, so index and brute force always agree.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from lotse_contracts import LanguageLevel, MatchReason
from lotse_contracts.events.matching import ReasonCode
from lotse_matching.schedule import WEEKDAYS, DayRange, Overlap, Piece, find_overlap, part_of_day

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = 111.195  # along a meridian, on the same sphere as the haversine distance
LEVELS = list(LanguageLevel)

# What a volunteer who has not committed reads of a need's distance (issue 18): measured to the
# centre of the need's ~1 km grid cell and rounded to half kilometres. Exact distances (1 m) from
# home points the volunteer chooses would give the need's place by trilateration; these give at
# best its cell.
ROUGH_GRID_KM = 1.0
ROUGH_STEP_KM = 0.5

# A skill that makes a volunteer a particularly good fit for a need category (a bonus, not a rule).
CATEGORY_SKILLS: dict[str, frozenset[str]] = {
    "accompaniment_to_authorities": frozenset({"accompaniment", "admin_paperwork"}),
    "translation": frozenset({"translation"}),
    "childcare": frozenset({"childcare"}),
    "tutoring": frozenset({"tutoring"}),
    "housing_help": frozenset({"handicraft", "admin_paperwork"}),
    "mobility": frozenset({"driving"}),
    "leisure": frozenset({"sports", "music", "cooking"}),
}

LANGUAGE_NAMES = {
    "ar": "Arabic", "de": "German", "en": "English", "es": "Spanish", "fa": "Persian", "fr": "French",
    "it": "Italian", "ku": "Kurdish", "pl": "Polish", "ps": "Pashto", "ro": "Romanian", "ru": "Russian",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "ti": "Tigrinya", "tr": "Turkish", "uk": "Ukrainian",
}  # fmt: skip


@dataclass(frozen=True, slots=True, eq=False)
class Volunteer:
    id: str
    tenant: str
    organisation_id: str | None
    active: bool  # consent for matching given, not withdrawn, not erased
    skills: frozenset[str]
    languages: Mapping[str, int]  # ISO code -> LanguageLevel rank
    point: tuple[float, float] | None  # (lat, lon); a postcode alone cannot prove the distance
    travel_radius_km: float
    # Certificates the office has checked: kind -> last day the check counts for. What the
    # volunteer only declares is not here: it never satisfies a need.
    certificates: Mapping[str, date]
    pieces: tuple[Piece, ...]
    unavailable: tuple[DayRange, ...]
    max_engagements: int
    hours: int  # hour-of-week bitset of the availability


@dataclass(frozen=True, slots=True, eq=False)
class Need:
    id: str
    tenant: str
    organisation_id: str
    category: str
    required_skills: frozenset[str]
    languages: tuple[tuple[str, int], ...]  # (ISO code, minimum rank)
    point: tuple[float, float]
    pieces: tuple[Piece, ...]
    first_day: date
    last_day: date  # date.max when open-ended
    volunteers_needed: int
    certificate: str | None
    hours: int
    # The centre of the point's ~1 km cell (`rough_point`): the travel radius is checked against it.
    area: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "area", rough_point(self.point))


@dataclass(frozen=True, slots=True)
class Engagement:
    """A need a volunteer committed to, with its time, so new needs must not overlap it."""

    need_id: str
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class MatchContext:
    today: date
    engagements: Mapping[str, Sequence[Engagement]] = field(default_factory=dict)
    recent_asks: Mapping[str, int] = field(default_factory=dict)  # volunteer -> proposals lately
    excluded: frozenset[str] = frozenset()  # asked for this need before (declined, expired, ...)


@dataclass(frozen=True, slots=True)
class Fit:
    distance_km: float
    overlap: Overlap


@dataclass(frozen=True, slots=True)
class Candidate:
    volunteer_id: str
    score: float  # from the exact distance: for ranking and the office, never for volunteers
    distance_km: float  # exact: for the office
    rough_distance_km: float  # what the volunteer may read before committing (`rough_distance_km`)
    reasons: tuple[MatchReason, ...]  # the distance reason tells the rough distance only


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def rough_point(point: tuple[float, float]) -> tuple[float, float]:
    """The centre of the ~`ROUGH_GRID_KM` grid cell `point` lies in (cells as tall as wide)."""
    lat_step = ROUGH_GRID_KM / KM_PER_DEGREE
    lat = (math.floor(point[0] / lat_step) + 0.5) * lat_step
    lon_step = lat_step / max(math.cos(math.radians(lat)), 0.01)
    lon = (math.floor(point[1] / lon_step) + 0.5) * lon_step
    return (lat, lon)


def rough_distance_km(home: tuple[float, float], need_point: tuple[float, float]) -> float:
    """The distance a volunteer reads before committing: to the need's grid cell centre, in
    `ROUGH_STEP_KM` steps (so metres of difference in the home point change nothing)."""
    return round(haversine_km(home, rough_point(need_point)) / ROUGH_STEP_KM) * ROUGH_STEP_KM


def assess(volunteer: Volunteer, need: Need, context: MatchContext) -> Fit | str:
    """A `Fit` if every hard rule holds, else the name of the first rule that fails."""
    if volunteer.tenant != need.tenant:
        return "tenant"
    if not volunteer.active:
        return "consent"
    if volunteer.id in context.excluded:
        return "asked_before"
    if not need.required_skills <= volunteer.skills:
        return "skills"
    if any(volunteer.languages.get(code, -1) < rank for code, rank in need.languages):
        return "languages"
    if need.certificate is not None and not certificate_valid(volunteer, need, context.today):
        return "certificate"
    if volunteer.point is None:
        return "distance"
    # Within the radius as measured to the need's cell, not its point: whether a need is offered
    # must not tell more than the distance shown (a volunteer moving their home point by metres
    # would find the exact radius edge, and so the exact place). The edge moves by < 0.71 km.
    if haversine_km(volunteer.point, need.area) > volunteer.travel_radius_km:
        return "distance"
    distance = haversine_km(volunteer.point, need.point)
    if not volunteer.hours & need.hours:
        return "availability"
    overlap = find_overlap(need.pieces, volunteer.pieces, volunteer.unavailable)
    if overlap is None:
        return "availability"
    engagements = context.engagements.get(volunteer.id, ())
    if any(engagement.need_id == need.id for engagement in engagements):
        return "asked_before"
    if len(engagements) >= volunteer.max_engagements:
        return "limit"
    if any(find_overlap(need.pieces, engagement.pieces) for engagement in engagements):
        return "engagement_overlap"
    return Fit(distance, overlap)


def certificate_valid(volunteer: Volunteer, need: Need, today: date) -> bool:
    """The office checked a certificate of the kind the need requires, and the check counts on
    the need's dates: through its last day, or for an open-ended need on its first (the expiry
    notices ask for a new certificate in time)."""
    certificate = need.certificate
    if certificate is None or certificate not in volunteer.certificates:
        return False
    needed_until = need.first_day if need.last_day == date.max else need.last_day
    return volunteer.certificates[certificate] >= max(today, needed_until)


def candidate(volunteer: Volunteer, need: Need, context: MatchContext) -> Candidate | None:
    fit = assess(volunteer, need, context)
    if isinstance(fit, str):
        return None
    return _candidate(volunteer, need, fit, score(volunteer, need, fit, context.recent_asks.get(volunteer.id, 0)))


def _candidate(volunteer: Volunteer, need: Need, fit: Fit, value: float) -> Candidate:
    # `assess` returned a fit, so the volunteer has a point.
    rough = rough_distance_km(volunteer.point, need.point) if volunteer.point is not None else 0.0
    return Candidate(
        volunteer_id=volunteer.id,
        score=value,
        distance_km=round(fit.distance_km, 3),
        rough_distance_km=rough,
        reasons=reasons(volunteer, need, fit, rough),
    )


def score(volunteer: Volunteer, need: Need, fit: Fit, recent_asks: int) -> float:
    """Closeness, language margin, a category-fitting skill, and fairness: who was asked
    often lately ranks lower, so requests spread over many people."""
    closeness = 1 / (1 + fit.distance_km / 5)
    if need.languages:
        margins = [(volunteer.languages[code] - rank) / max(1, len(LEVELS) - 1 - rank) for code, rank in need.languages]
        language = 0.5 + 0.5 * sum(margins) / len(margins)
    else:
        language = 0.5
    skill = 1.0 if CATEGORY_SKILLS.get(need.category, frozenset()) & volunteer.skills else 0.5
    fairness = 1 / (1 + recent_asks)
    # Rounded so that float noise never decides between two people; ties go by id.
    return round(0.4 * closeness + 0.2 * language + 0.15 * skill + 0.25 * fairness, 6)


def reasons(volunteer: Volunteer, need: Need, fit: Fit, rough_km: float) -> tuple[MatchReason, ...]:
    # The volunteer reads the reasons before committing: the rough distance only.
    found = [MatchReason(code=ReasonCode.DISTANCE, detail=f"about {rough_km:g} km away")]
    for code, _ in need.languages:
        level = LEVELS[volunteer.languages[code]]
        shown = "native speaker" if level is LanguageLevel.NATIVE else level.value.upper()
        found.append(MatchReason(code=ReasonCode.LANGUAGE, detail=f"speaks {LANGUAGE_NAMES.get(code, code)} ({shown})"))
    if need.required_skills:
        skills = ", ".join(sorted(need.required_skills))
        found.append(MatchReason(code=ReasonCode.SKILLS, detail=f"has the skills needed: {skills}"[:200]))
    found.append(MatchReason(code=ReasonCode.AVAILABILITY, detail=_free_when(fit.overlap)))
    if need.certificate is not None:
        kind = need.certificate.replace("_", " ")
        found.append(MatchReason(code=ReasonCode.CERTIFICATE, detail=f"holds a valid {kind}, checked by the office"))
    if volunteer.organisation_id is not None and volunteer.organisation_id == need.organisation_id:
        found.append(MatchReason(code=ReasonCode.ORGANISATION, detail="belongs to the organisation of this need"))
    return tuple(found)


def _free_when(overlap: Overlap) -> str:
    weekday = WEEKDAYS[overlap.piece.weekday].capitalize()
    part = part_of_day(overlap.start)
    if overlap.piece.first == overlap.piece.last:
        return f"free on {weekday}, {overlap.day.isoformat()}, in the {part}"
    return f"free on {weekday} {part}s"


def rank(volunteers: Iterable[Volunteer], need: Need, context: MatchContext, k: int) -> list[Candidate]:
    """The best `k` candidates, best first; ties broken by volunteer id, so the result is stable.
    Reasons are written only for those `k`."""
    scored = []
    for volunteer in volunteers:
        fit = assess(volunteer, need, context)
        if not isinstance(fit, str):
            scored.append(
                (-score(volunteer, need, fit, context.recent_asks.get(volunteer.id, 0)), volunteer.id, volunteer, fit)
            )
    best = heapq.nsmallest(k, scored, key=lambda item: (item[0], item[1]))
    return [_candidate(volunteer, need, fit, -negative) for negative, _, volunteer, fit in best]
