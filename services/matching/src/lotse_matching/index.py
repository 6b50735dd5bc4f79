"""The in-memory index of one tenant's volunteers, so a need's top candidates never take a scan
of everybody nor a database query per candidate.

Volunteers are placed in geographic grid cells, one grid per travel-radius band (a cell is as
wide as the band's largest radius, so a need only looks at the cells around it), and in sets
per skill and per language. A query starts from the smallest of those and checks the rest with
the exact hard rules of `candidates.assess`; pruning only ever drops people the rules would
drop too, so the result equals a brute-force scan. Engagements and recent proposals (for the
limit, overlaps and fairness) live here too, so that ranking needs no I/O at all.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from lotse_matching.candidates import Candidate, Engagement, MatchContext, Need, Volunteer, rank
from lotse_matching.profiles import timezone_of

RADIUS_BANDS_KM = (2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0)
KM_PER_DEGREE = 111.195  # along a meridian, on the same sphere as the haversine distance
FAIRNESS_WINDOW = timedelta(days=30)

Cell = tuple[int, int]
_EMPTY: frozenset[str] = frozenset()


def band_of(radius_km: float) -> int:
    return next((i for i, limit in enumerate(RADIUS_BANDS_KM) if radius_km <= limit), len(RADIUS_BANDS_KM) - 1)


def cell_of(point: tuple[float, float], band: int) -> Cell:
    size = RADIUS_BANDS_KM[band] / KM_PER_DEGREE
    return (math.floor(point[0] / size), math.floor(point[1] / size))


class TenantIndex:
    def __init__(self, tenant: str, timezone: str | None = None) -> None:
        self.tenant = tenant
        self.timezone: ZoneInfo = timezone_of(timezone)
        self.volunteers: dict[str, Volunteer] = {}
        self.open_needs: dict[str, Need] = {}  # needs that still look for volunteers
        self.engagements: dict[str, tuple[Engagement, ...]] = {}
        self._asks: dict[str, list[datetime]] = {}
        self._cells: list[dict[Cell, set[str]]] = [{} for _ in RADIUS_BANDS_KM]
        self._placed: dict[str, tuple[int, Cell]] = {}
        self._by_skill: dict[str, set[str]] = {}
        self._by_language: dict[str, set[str]] = {}

    # -- volunteers --------------------------------------------------------------------------

    def upsert(self, volunteer: Volunteer) -> None:
        self.remove(volunteer.id)
        self.volunteers[volunteer.id] = volunteer
        # Only who could ever be proposed goes into the search structures.
        if not volunteer.active or volunteer.point is None:
            return
        band = band_of(volunteer.travel_radius_km)
        cell = cell_of(volunteer.point, band)
        self._cells[band].setdefault(cell, set()).add(volunteer.id)
        self._placed[volunteer.id] = (band, cell)
        for skill in volunteer.skills:
            self._by_skill.setdefault(skill, set()).add(volunteer.id)
        for language in volunteer.languages:
            self._by_language.setdefault(language, set()).add(volunteer.id)

    def remove(self, volunteer_id: str) -> None:
        old = self.volunteers.pop(volunteer_id, None)
        placed = self._placed.pop(volunteer_id, None)
        if old is None or placed is None:
            return
        band, cell = placed
        _discard(self._cells[band], cell, volunteer_id)
        for skill in old.skills:
            _discard(self._by_skill, skill, volunteer_id)
        for language in old.languages:
            _discard(self._by_language, language, volunteer_id)

    def forget(self, volunteer_id: str) -> None:
        """Erasure: nothing about the volunteer stays in memory."""
        self.remove(volunteer_id)
        self.engagements.pop(volunteer_id, None)
        self._asks.pop(volunteer_id, None)

    # -- what the volunteers are doing ------------------------------------------------------------

    def set_engagements(self, volunteer_id: str, engagements: Iterable[Engagement]) -> None:
        kept = tuple(sorted(engagements, key=lambda e: e.need_id))
        if kept:
            self.engagements[volunteer_id] = kept
        else:
            self.engagements.pop(volunteer_id, None)

    def add_engagement(self, volunteer_id: str, engagement: Engagement) -> None:
        others = [e for e in self.engagements.get(volunteer_id, ()) if e.need_id != engagement.need_id]
        self.set_engagements(volunteer_id, [*others, engagement])

    def end_engagement(self, volunteer_id: str, need_id: str) -> None:
        self.set_engagements(volunteer_id, [e for e in self.engagements.get(volunteer_id, ()) if e.need_id != need_id])

    def record_ask(self, volunteer_id: str, at: datetime) -> None:
        bisect.insort(self._asks.setdefault(volunteer_id, []), at)

    def context(self, now: datetime, excluded: Iterable[str] = ()) -> MatchContext:
        return MatchContext(
            today=now.astimezone(self.timezone).date(),
            engagements=self.engagements,
            recent_asks=_RecentAsks(self._asks, now - FAIRNESS_WINDOW),
            excluded=frozenset(excluded),
        )

    # -- queries ----------------------------------------------------------------------------

    def top_k(self, need: Need, context: MatchContext, k: int) -> list[Candidate]:
        return rank(self.candidates(need), need, context, k)

    def scan(self, need: Need, context: MatchContext, k: int) -> list[Candidate]:
        """Brute force over everybody: the reference the index must agree with."""
        return rank(self.volunteers.values(), need, context, k)

    def candidates(self, need: Need) -> Iterator[Volunteer]:
        """A superset of the volunteers that can pass the hard rules, found without a scan."""
        if need.tenant != self.tenant:
            return iter(())
        required = [self._by_skill.get(skill, _EMPTY) for skill in need.required_skills]
        required += [self._by_language.get(code, _EMPTY) for code, _ in need.languages]
        near = list(self._nearby_cells(need.point))
        near_count = sum(len(cell) for cell in near)
        if required and min(len(s) for s in required) < near_count:
            smallest = min(required, key=len)
            others = [s for s in required if s is not smallest]
            ids: Iterable[str] = (i for i in smallest if all(i in other for other in others))
        else:
            ids = (i for cell in near for i in cell if all(i in other for other in required))
        volunteers = self.volunteers
        return (volunteers[i] for i in ids)

    def _nearby_cells(self, point: tuple[float, float]) -> Iterator[set[str]]:
        lat, lon = point
        for band, cells in enumerate(self._cells):
            if not cells:
                continue
            size = RADIUS_BANDS_KM[band] / KM_PER_DEGREE
            # 1 % margin over the exact bounding box of a spherical cap.
            dlat = size * 1.01
            rows = range(math.floor((lat - dlat) / size), math.floor((lat + dlat) / size) + 1)
            widest = min(90.0, abs(lat) + dlat)
            dlon = dlat / math.cos(math.radians(widest)) if widest < 89.0 else 360.0
            if dlon >= 180 or lon - dlon < -180 or lon + dlon > 180:
                # Near a pole or the antimeridian: take whole rows rather than wrap around.
                yield from (members for (row, _), members in cells.items() if row in rows)
                continue
            columns = range(math.floor((lon - dlon) / size), math.floor((lon + dlon) / size) + 1)
            if len(rows) * len(columns) > len(cells):
                yield from (members for (row, column), members in cells.items() if row in rows and column in columns)
                continue
            for row in rows:
                for column in columns:
                    members = cells.get((row, column))
                    if members:
                        yield members


class _RecentAsks(Mapping[str, int]):
    """Proposals per volunteer since `since`, counted only for the volunteers looked at."""

    def __init__(self, asks: dict[str, list[datetime]], since: datetime) -> None:
        self._asks = asks
        self._since = since

    def __getitem__(self, volunteer_id: str) -> int:
        times = self._asks.get(volunteer_id)
        if not times:
            return 0
        return len(times) - bisect.bisect_left(times, self._since)

    def __iter__(self) -> Iterator[str]:
        return iter(self._asks)

    def __len__(self) -> int:
        return len(self._asks)


def _discard(mapping: dict[object, set[str]], key: object, member: str) -> None:
    members = mapping.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del mapping[key]
