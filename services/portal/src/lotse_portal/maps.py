"""The map of a municipality on which a volunteer marks an approximate home point, without I/O and
without JavaScript.

No tile server: the browser is never sent to another host (privacy, and the pages' content
security policy allows images from the portal only). The map is an SVG drawn from the tenant's
postcode table: each postcode's centroid as a labelled point, a grid and a scale, in a square frame
around the table's points plus a margin. The page shows it as ``<input type="image">`` of a fixed
CSS size (``MAP_SIZE``), so a click submits the form with ``map.x`` and ``map.y`` in CSS pixels,
which :meth:`MapFrame.to_point` turns into latitude and longitude, linearly within the frame
(an equirectangular projection: over a town's few kilometres nothing else is needed).

The frame's sides are equally long on the ground (longitude degrees are shorter than latitude
degrees by the cosine of the latitude), so the map is not stretched. Points are rounded to three
decimals (about 100 m): an approximate point is all matching needs.

Postcodes and districts are the tenant's data: the SVG is built with ElementTree, which escapes
every text and attribute.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

from lotse_runtime.i18n import N_

# The map's side in CSS pixels: fits a 360 px phone inside the page's and the fieldset's padding.
MAP_SIZE = 300
KM_PER_DEGREE = 111.32  # of latitude, and of longitude at the equator
MARGIN = 0.15  # of the points' extent, on every side
SMALLEST_SIDE_KM = 2.0  # a table of one postcode still gets a map of some extent
DECIMALS = 3  # about 100 m: an approximate point is enough
NUDGES_PER_SIDE = 12  # one nudge moves the point by this fraction of the map's side
NEAR_CENTRE_KM = 0.2  # closer than this to a postcode's centroid is "at its centre"
SVG = "http://www.w3.org/2000/svg"


@dataclass(frozen=True)
class PostcodePoint:
    """One row of the tenant's public postcode table: the centroid of a postcode and its district."""

    postcode: str
    district: str
    lat: float
    lon: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PostcodePoint:
        point: Mapping[str, Any] = data["point"]
        return cls(str(data["postcode"]), str(data.get("district") or ""), float(point["lat"]), float(point["lon"]))


def read_table(answer: Any) -> list[PostcodePoint]:
    """The registry's ``GET /public/tenants/{tenant}/postcodes`` answer; rows it cannot read are left out."""
    rows = answer.get("items") if isinstance(answer, Mapping) else None
    table = []
    for row in rows if isinstance(rows, list) else []:
        try:
            table.append(PostcodePoint.from_json(row))
        except (KeyError, TypeError, ValueError):
            continue
    return table


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float

    def rounded(self) -> Point:
        return Point(round(self.lat, DECIMALS), round(self.lon, DECIMALS))

    def as_json(self) -> dict[str, float]:
        return {"lat": self.lat, "lon": self.lon}


def distance_km(a: Point, b: Point) -> float:
    """Equirectangular distance: exact enough within a town."""
    mean_lat = math.radians((a.lat + b.lat) / 2)
    north = (b.lat - a.lat) * KM_PER_DEGREE
    east = (b.lon - a.lon) * KM_PER_DEGREE * math.cos(mean_lat)
    return math.hypot(north, east)


@dataclass(frozen=True)
class MapFrame:
    """The square part of the earth the map shows, ``size`` CSS pixels a side."""

    south: float
    west: float
    north: float
    east: float
    size: int = MAP_SIZE

    @classmethod
    def around(cls, table: Sequence[PostcodePoint], *, size: int = MAP_SIZE) -> MapFrame:
        """The table's bounding box plus ``MARGIN`` on every side, made square on the ground."""
        if not table:
            raise ValueError("a map needs at least one postcode")
        lats, lons = [row.lat for row in table], [row.lon for row in table]
        centre_lat, centre_lon = (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2
        squeeze = math.cos(math.radians(centre_lat))
        tall_km = (max(lats) - min(lats)) * KM_PER_DEGREE
        wide_km = (max(lons) - min(lons)) * KM_PER_DEGREE * squeeze
        side_km = max(tall_km, wide_km, SMALLEST_SIDE_KM / (1 + 2 * MARGIN)) * (1 + 2 * MARGIN)
        half_lat = side_km / 2 / KM_PER_DEGREE
        half_lon = side_km / 2 / (KM_PER_DEGREE * squeeze)
        return cls(centre_lat - half_lat, centre_lon - half_lon, centre_lat + half_lat, centre_lon + half_lon, size)

    @property
    def side_km(self) -> float:
        return (self.north - self.south) * KM_PER_DEGREE

    @property
    def centre(self) -> Point:
        return Point((self.south + self.north) / 2, (self.west + self.east) / 2)

    @property
    def step_km(self) -> float:
        """How far one nudge moves the point (a tenth of a kilometre at least)."""
        return max(round(self.side_km / NUDGES_PER_SIDE, 1), 0.1)

    def to_point(self, x: float, y: float) -> Point:
        """A pixel of the map (``map.x``, ``map.y``: from the top left corner, y downwards) as a
        point on the earth, rounded; pixels outside the map count as its edge."""
        x, y = min(max(x, 0.0), self.size), min(max(y, 0.0), self.size)
        lat = self.north - y / self.size * (self.north - self.south)
        lon = self.west + x / self.size * (self.east - self.west)
        return Point(lat, lon).rounded()

    def to_pixel(self, point: Point) -> tuple[float, float]:
        x = (point.lon - self.west) / (self.east - self.west) * self.size
        y = (self.north - point.lat) / (self.north - self.south) * self.size
        return x, y

    def contains(self, point: Point) -> bool:
        return self.south <= point.lat <= self.north and self.west <= point.lon <= self.east

    def clamp(self, point: Point) -> Point:
        return Point(min(max(point.lat, self.south), self.north), min(max(point.lon, self.west), self.east))


class Direction(StrEnum):
    NORTH = "north"
    EAST = "east"
    SOUTH = "south"
    WEST = "west"


# The nudge buttons' labels.
NUDGE_LABELS: dict[Direction, str] = {
    Direction.NORTH: N_("Nach Norden"),
    Direction.EAST: N_("Nach Osten"),
    Direction.SOUTH: N_("Nach Süden"),
    Direction.WEST: N_("Nach Westen"),
}


def nudge(frame: MapFrame, point: Point, direction: Direction) -> Point:
    """The point moved one step (``frame.step_km``) in ``direction``, kept on the map."""
    step_lat = frame.step_km / KM_PER_DEGREE
    step_lon = frame.step_km / (KM_PER_DEGREE * math.cos(math.radians(point.lat)))
    north, east = {
        Direction.NORTH: (step_lat, 0.0),
        Direction.EAST: (0.0, step_lon),
        Direction.SOUTH: (-step_lat, 0.0),
        Direction.WEST: (0.0, -step_lon),
    }[direction]
    return frame.clamp(Point(point.lat + north, point.lon + east)).rounded()


def nearest(table: Sequence[PostcodePoint], point: Point) -> PostcodePoint | None:
    return min(table, key=lambda row: distance_km(Point(row.lat, row.lon), point), default=None)


# Where a point lies as seen from a postcode's centroid, eight ways (German adverbs as message ids).
COMPASS = (
    N_("nördlich"),
    N_("nordöstlich"),
    N_("östlich"),
    N_("südöstlich"),
    N_("südlich"),
    N_("südwestlich"),
    N_("westlich"),
    N_("nordwestlich"),
)


def compass(origin: Point, point: Point) -> str:
    """The compass direction (message id) from ``origin`` to ``point``."""
    north = point.lat - origin.lat
    east = (point.lon - origin.lon) * math.cos(math.radians(origin.lat))
    bearing = math.degrees(math.atan2(east, north)) % 360
    return COMPASS[round(bearing / 45) % 8]


@dataclass(frozen=True)
class PointInWords:
    """Where a point is, for the sentence under the map: the nearest postcode, how far and which
    way from its centroid (``direction`` None: at its centre)."""

    near: PostcodePoint
    km: float
    direction: str | None


def in_words(table: Sequence[PostcodePoint], point: Point) -> PointInWords | None:
    near = nearest(table, point)
    if near is None:
        return None
    centroid = Point(near.lat, near.lon)
    km = distance_km(centroid, point)
    return PointInWords(near, round(km, 1), None if km < NEAR_CENTRE_KM else compass(centroid, point))


# --- what a press on the map or a button under it asks for --------------------------------------


@dataclass(frozen=True)
class Click:
    x: float
    y: float


@dataclass(frozen=True)
class Nudge:
    direction: Direction


@dataclass(frozen=True)
class Start:
    """Put the point at the start: the typed postcode's centroid, else the map's centre."""


@dataclass(frozen=True)
class Remove:
    pass


MapAction = Click | Nudge | Start | Remove
_PIXEL = re.compile(r"^-?[0-9]{1,5}(\.[0-9]{1,3})?$")


def read_action(form: Mapping[str, str]) -> MapAction | None:
    """What the submitted form asks of the map; None: a plain save.

    A click on the image sends ``map.x``/``map.y``. Activating the image from the keyboard sends
    (0, 0), which a pointer never hits in practice: it places the point at the start, from where
    the nudge buttons move it.
    """
    x, y = form.get("map.x"), form.get("map.y")
    if x is not None and y is not None:
        if not (_PIXEL.fullmatch(x) and _PIXEL.fullmatch(y)):
            return Start()
        click = Click(float(x), float(y))
        return Start() if click == Click(0.0, 0.0) else click
    action = form.get("point", "")
    if action in {direction.value for direction in Direction}:
        return Nudge(Direction(action))
    if action == "start":
        return Start()
    if action == "remove":
        return Remove()
    return None


def act(frame: MapFrame, action: MapAction, point: Point | None, start: Point | None) -> Point | None:
    """The home point after ``action``: ``point`` the one chosen so far, ``start`` the centroid of
    the typed postcode (None: unknown), where a first nudge or a keyboard activation begins."""
    origin = start if start is not None and frame.contains(start) else frame.centre
    match action:
        case Click(x, y):
            return frame.to_point(x, y)
        case Nudge(direction):
            return nudge(frame, point, direction) if point is not None else origin.rounded()
        case Start():
            return origin.rounded()
        case Remove():
            return None


_NUMBER = re.compile(r"^-?[0-9]{1,3}(\.[0-9]{1,8})?$")


def read_point(form: Mapping[str, str], frame: MapFrame) -> Point | None:
    """The point kept in the hidden fields ``home_lat``/``home_lon``, None if there is none.
    Raises ValueError if it is not a point on this map (a tampered or outdated form)."""
    lat, lon = form.get("home_lat", ""), form.get("home_lon", "")
    if not lat and not lon:
        return None
    if not (_NUMBER.fullmatch(lat) and _NUMBER.fullmatch(lon)):
        raise ValueError("not a point")
    point = Point(float(lat), float(lon))
    # Rounding may put a point on the edge a hair outside: allow that much.
    tolerance = 10**-DECIMALS
    grown = MapFrame(
        frame.south - tolerance, frame.west - tolerance, frame.north + tolerance, frame.east + tolerance, frame.size
    )
    if not grown.contains(point):
        raise ValueError("outside the map")
    return point


# --- the SVG -------------------------------------------------------------------------------------

INK, MUTED, GRID, WASH, BRAND, MARK = "#1b1b1f", "#4a4a55", "#c4c9d2", "#f3f5f8", "#0b5cad", "#a4161a"
GRID_STEPS_KM = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)


def grid_step_km(side_km: float) -> float:
    """A round grid spacing that draws three to eight lines across the map."""
    return next((step for step in GRID_STEPS_KM if side_km / step <= 8), GRID_STEPS_KM[-1])


def render(frame: MapFrame, table: Sequence[PostcodePoint]) -> str:
    """The map without a marker: grid, scale, the postcodes as labelled points."""
    size = frame.size
    svg = ElementTree.Element(
        "svg",
        {
            "xmlns": SVG,
            "width": str(size),
            "height": str(size),
            "viewBox": f"0 0 {size} {size}",
            "font-family": "system-ui, sans-serif",
        },
    )
    ElementTree.SubElement(svg, "rect", {"width": str(size), "height": str(size), "fill": WASH})
    step = grid_step_km(frame.side_km)
    pixels_per_km = size / frame.side_km
    grid = ElementTree.SubElement(svg, "g", {"stroke": GRID, "stroke-width": "1"})
    offset = step * pixels_per_km
    position = offset
    while position < size:
        ElementTree.SubElement(grid, "line", {"x1": _n(position), "y1": "0", "x2": _n(position), "y2": str(size)})
        ElementTree.SubElement(grid, "line", {"x1": "0", "y1": _n(position), "x2": str(size), "y2": _n(position)})
        position += offset
    # The scale: one grid step, bottom left.
    bar = ElementTree.SubElement(svg, "g", {"stroke": INK, "stroke-width": "2"})
    left, base = 10.0, size - 12.0
    ElementTree.SubElement(bar, "line", {"x1": _n(left), "y1": _n(base), "x2": _n(left + offset), "y2": _n(base)})
    for x in (left, left + offset):
        ElementTree.SubElement(bar, "line", {"x1": _n(x), "y1": _n(base - 4), "x2": _n(x), "y2": _n(base + 4)})
    label = ElementTree.SubElement(svg, "text", {"x": _n(left), "y": _n(base - 7), "font-size": "11", "fill": INK})
    label.text = f"{step:g} km"
    # North is up.
    north = ElementTree.SubElement(
        svg,
        "text",
        {"x": str(size - 8), "y": "18", "font-size": "13", "font-weight": "700", "fill": INK, "text-anchor": "end"},
    )
    north.text = "N ↑"
    places = ElementTree.SubElement(svg, "g", {"font-size": "11", "fill": INK})
    for row in table:
        x, y = frame.to_pixel(Point(row.lat, row.lon))
        ElementTree.SubElement(places, "circle", {"cx": _n(x), "cy": _n(y), "r": "4", "fill": BRAND})
        right_half = x > size / 2
        text = ElementTree.SubElement(
            places,
            "text",
            {"x": _n(x - 7 if right_half else x + 7), "y": _n(y + 4), "text-anchor": "end" if right_half else "start"},
        )
        text.text = f"{row.postcode} {row.district}".strip()
    return ElementTree.tostring(svg, encoding="unicode")


def with_marker(base: str, frame: MapFrame, x: float, y: float) -> str:
    """The map with the chosen point marked (a ring with a cross) at pixel ``x``, ``y``."""
    x, y = min(max(x, 0.0), frame.size), min(max(y, 0.0), frame.size)
    marker = ElementTree.Element("g", {"stroke": MARK, "stroke-width": "3", "fill": "none"})
    ElementTree.SubElement(marker, "circle", {"cx": _n(x), "cy": _n(y), "r": "9"})
    ElementTree.SubElement(marker, "line", {"x1": _n(x - 14), "y1": _n(y), "x2": _n(x + 14), "y2": _n(y)})
    ElementTree.SubElement(marker, "line", {"x1": _n(x), "y1": _n(y - 14), "x2": _n(x), "y2": _n(y + 14)})
    closing = base.rindex("</svg>")
    return base[:closing] + ElementTree.tostring(marker, encoding="unicode") + base[closing:]


def _n(value: float) -> str:
    return f"{value:.1f}"
