"""The in-memory index of one tenant's volunteers, so a need's top candidates never take a scan
of everybody nor a database query per candidate.

Every volunteer who could be proposed gets a slot number, and the index keeps one bitset
(a Python int, bit = slot) per skill, per language and minimum level, per hour of the week
and per geographic grid cell. There is one grid per travel-radius band, its cells as wide as
the band's largest radius, so a need only looks at the cells around it. A query ANDs the
bitsets of what the need requires (skills, languages at their level, an hour in common, a
nearby cell) and checks only the volunteers left with the exact hard rules of
`candidates.assess`. Pruning only ever drops people the rules drop too, so the result equals
a brute-force scan. Engagements and recent proposals (for the limit, overlaps and fairness)
live here as well, so that ranking needs no I/O at all.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from lotse_matching.candidates import Candidate, Engagement, MatchContext, Need, Volunteer, rank
from lotse_matching.profiles import timezone_of

RADIUS_BANDS_KM = (2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 200.0)
KM_PER_DEGREE = 111.195  # along a meridian, on the same sphere as the haversine distance
FAIRNESS_WINDOW = timedelta(days=30)
HOURS_OF_WEEK = 7 * 24

Cell = tuple[int, int]
_NONZERO = re.compile(rb"[^\x00]")
_BITS_OF_BYTE = [tuple(bit for bit in range(8) if byte >> bit & 1) for byte in range(256)]


def band_of(radius_km: float) -> int:
    return next((i for i, limit in enumerate(RADIUS_BANDS_KM) if radius_km <= limit), len(RADIUS_BANDS_KM) - 1)


def cell_of(point: tuple[float, float], band: int) -> Cell:
    size = RADIUS_BANDS_KM[band] / KM_PER_DEGREE
    return (math.floor(point[0] / size), math.floor(point[1] / size))


def slots_of(bits: int) -> Iterator[int]:
    """The set bits of a bitset, lowest first; the scan for non-zero bytes runs in C."""
    data = bits.to_bytes((bits.bit_length() + 7) // 8, "little")
    for match in _NONZERO.finditer(data):
        base = match.start() * 8
        for bit in _BITS_OF_BYTE[data[match.start()]]:
            yield base + bit


class TenantIndex:
    def __init__(self, tenant: str, timezone: str | None = None) -> None:
        self.tenant = tenant
        self.timezone: ZoneInfo = timezone_of(timezone)
        self.volunteers: dict[str, Volunteer] = {}
        self.open_needs: dict[str, Need] = {}  # needs that still look for volunteers
        self.engagements: dict[str, tuple[Engagement, ...]] = {}
        self._asks: dict[str, list[datetime]] = {}
        self._slot: dict[str, int] = {}
        self._holder: list[str | None] = []  # slot -> volunteer id
        self._free: list[int] = []
        self._bits: dict[Hashable, int] = {}  # ("skill", s) / ("language", code, rank) / ("hour", h)
        self._cells: list[dict[Cell, int]] = [{} for _ in RADIUS_BANDS_KM]

    # -- volunteers --------------------------------------------------------------------------

    def upsert(self, volunteer: Volunteer) -> None:
        self.upsert_many([volunteer])

    def upsert_many(self, volunteers: Iterable[Volunteer]) -> None:
        """Add or replace volunteers; bitsets are built once per call (fast for a rebuild)."""
        gathered: dict[Hashable, list[int]] = {}
        cells: list[dict[Cell, list[int]]] = [{} for _ in RADIUS_BANDS_KM]
        latest = {volunteer.id: volunteer for volunteer in volunteers}
        for volunteer in latest.values():
            self.remove(volunteer.id)
            self.volunteers[volunteer.id] = volunteer
            # Only who could ever be proposed goes into the bitsets.
            if not volunteer.active or volunteer.point is None:
                continue
            slot = self._free.pop() if self._free else len(self._holder)
            if slot == len(self._holder):
                self._holder.append(volunteer.id)
            else:
                self._holder[slot] = volunteer.id
            self._slot[volunteer.id] = slot
            for key in _keys(volunteer):
                gathered.setdefault(key, []).append(slot)
            band = band_of(volunteer.travel_radius_km)
            cells[band].setdefault(cell_of(volunteer.point, band), []).append(slot)
        for key, slots in gathered.items():
            self._bits[key] = self._bits.get(key, 0) | _bitset(slots)
        for band, members in enumerate(cells):
            for cell, slots in members.items():
                self._cells[band][cell] = self._cells[band].get(cell, 0) | _bitset(slots)

    def remove(self, volunteer_id: str) -> None:
        old = self.volunteers.pop(volunteer_id, None)
        slot = self._slot.pop(volunteer_id, None)
        if old is None or slot is None:
            return
        clear = ~(1 << slot)
        for key in _keys(old):
            _clear(self._bits, key, clear)
        assert old.point is not None
        band = band_of(old.travel_radius_km)
        _clear(self._cells[band], cell_of(old.point, band), clear)
        self._holder[slot] = None
        self._free.append(slot)

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
        if need.tenant != self.tenant or not self._holder:
            return iter(())
        required = [self._bits.get(("skill", skill), 0) for skill in sorted(need.required_skills)]
        required += [self._bits.get(("language", code, level), 0) for code, level in need.languages]
        # Rarest first, so that the running AND shrinks early.
        found = -1  # all bits
        for bits in sorted(required, key=int.bit_count):
            found &= bits
            if not found:
                return iter(())
        hours = 0
        for hour in slots_of(need.hours):
            hours |= self._bits.get(("hour", hour), 0)
        found &= hours
        if found:
            found &= self._nearby(need.area)  # where `assess` measures the travel radius to
        if found <= 0:
            return iter(())
        holder, volunteers = self._holder, self.volunteers
        return (volunteers[holder[slot]] for slot in slots_of(found))  # type: ignore[index]

    def _nearby(self, point: tuple[float, float]) -> int:
        """Everybody in the cells around `point`, per radius band."""
        lat, lon = point
        nearby = 0
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
                columns = None
            else:
                columns = range(math.floor((lon - dlon) / size), math.floor((lon + dlon) / size) + 1)
            if columns is None or len(rows) * len(columns) > len(cells):
                for (row, column), members in cells.items():
                    if row in rows and (columns is None or column in columns):
                        nearby |= members
                continue
            for row in rows:
                for column in columns:
                    nearby |= cells.get((row, column), 0)
        return nearby


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


def _keys(volunteer: Volunteer) -> Iterator[Hashable]:
    for skill in volunteer.skills:
        yield ("skill", skill)
    for code, level in volunteer.languages.items():
        for at_least in range(level + 1):
            yield ("language", code, at_least)
    for hour in slots_of(volunteer.hours):
        yield ("hour", hour)


def _bitset(slots: list[int]) -> int:
    if len(slots) == 1:
        return 1 << slots[0]
    data = bytearray(max(slots) // 8 + 1)
    for slot in slots:
        data[slot >> 3] |= 1 << (slot & 7)
    return int.from_bytes(data, "little")


def _clear(bitsets: dict, key: Hashable, mask: int) -> None:  # type: ignore[type-arg]
    remaining = bitsets.get(key, 0) & mask
    if remaining:
        bitsets[key] = remaining
    else:
        bitsets.pop(key, None)
