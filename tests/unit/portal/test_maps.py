"""The map on the profile form: a click's pixel as a point on the earth and back, the nudges, what
a submitted form asks of the map, the point in words, and an SVG in which the tenant's names stay
text."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import pytest

from lotse_portal import maps
from lotse_portal.maps import Click, Direction, MapFrame, Nudge, Point, PostcodePoint, Remove, Start

TABLE = (
    PostcodePoint("48143", "Mitte", 51.9625, 7.6270),
    PostcodePoint("48147", "Kreuzviertel", 51.9720, 7.6180),
    PostcodePoint("48151", "Geist", 51.9450, 7.6130),
)
FRAME = MapFrame.around(TABLE)


def test_the_frame_holds_every_postcode_with_a_margin_and_is_square_on_the_ground() -> None:
    for row in TABLE:
        x, y = FRAME.to_pixel(Point(row.lat, row.lon))
        assert 0.1 * FRAME.size < x < 0.9 * FRAME.size and 0.1 * FRAME.size < y < 0.9 * FRAME.size
    tall = maps.distance_km(Point(FRAME.south, FRAME.west), Point(FRAME.north, FRAME.west))
    wide = maps.distance_km(Point(FRAME.centre.lat, FRAME.west), Point(FRAME.centre.lat, FRAME.east))
    assert tall == pytest.approx(wide, rel=0.01)
    # The points span 3 km north to south: that, and 15 % on each side.
    assert FRAME.side_km == pytest.approx((51.9720 - 51.9450) * maps.KM_PER_DEGREE * 1.3, rel=0.01)


def test_a_single_postcode_still_gets_a_map_around_it() -> None:
    frame = MapFrame.around(TABLE[:1])
    assert frame.side_km == pytest.approx(maps.SMALLEST_SIDE_KM)
    assert frame.centre == Point(51.9625, 7.6270)
    with pytest.raises(ValueError):
        MapFrame.around(())


@pytest.mark.parametrize(
    ("x", "y", "lat", "lon"),
    [
        (0, 0, "north", "west"),
        (300, 300, "south", "east"),
        (300, 0, "north", "east"),
        (150, 150, "middle", "middle"),
        (-20, 999, "south", "west"),  # beyond the image: its edge
    ],
)
def test_a_click_is_linear_within_the_frame(x: float, y: float, lat: str, lon: str) -> None:
    middle = FRAME.centre
    lats = {"north": FRAME.north, "south": FRAME.south, "middle": middle.lat}
    lons = {"west": FRAME.west, "east": FRAME.east, "middle": middle.lon}
    assert FRAME.to_point(x, y) == Point(round(lats[lat], 3), round(lons[lon], 3))


def test_pixel_and_point_are_each_others_inverse_to_the_rounding() -> None:
    for row in TABLE:
        x, y = FRAME.to_pixel(Point(row.lat, row.lon))
        back = FRAME.to_point(x, y)
        assert back == Point(round(row.lat, 3), round(row.lon, 3))
    # A quarter of the way from the left and the top is a quarter of the way from west and north.
    quarter = FRAME.to_point(75, 75)
    assert quarter.lat == pytest.approx(FRAME.north - (FRAME.north - FRAME.south) / 4, abs=0.0005)
    assert quarter.lon == pytest.approx(FRAME.west + (FRAME.east - FRAME.west) / 4, abs=0.0005)


def test_a_nudge_moves_one_step_that_way_and_stays_on_the_map() -> None:
    start = Point(51.960, 7.620)
    assert FRAME.step_km == pytest.approx(FRAME.side_km / maps.NUDGES_PER_SIDE, abs=0.05)
    north = maps.nudge(FRAME, start, Direction.NORTH)
    assert north.lon == start.lon and maps.distance_km(start, north) == pytest.approx(FRAME.step_km, abs=0.06)
    east = maps.nudge(FRAME, start, Direction.EAST)
    assert east.lat == start.lat and east.lon > start.lon
    assert maps.distance_km(start, east) == pytest.approx(FRAME.step_km, abs=0.06)
    assert maps.nudge(FRAME, start, Direction.SOUTH).lat < start.lat
    assert maps.nudge(FRAME, start, Direction.WEST).lon < start.lon
    corner = Point(round(FRAME.north, 3), round(FRAME.west, 3))
    assert FRAME.contains(FRAME.clamp(maps.nudge(FRAME, corner, Direction.NORTH)))
    assert maps.nudge(FRAME, corner, Direction.NORTH).lat <= round(FRAME.north, 3) + 0.001


@pytest.mark.parametrize(
    ("form", "action"),
    [
        ({"map.x": "120", "map.y": "40"}, Click(120.0, 40.0)),
        ({"map.x": "-1", "map.y": "40"}, Click(-1.0, 40.0)),  # on the image's border
        ({"map.x": "0", "map.y": "0"}, Start()),  # the image activated from the keyboard
        ({"map.x": "1e9", "map.y": "x"}, Start()),
        ({"point": "north"}, Nudge(Direction.NORTH)),
        ({"point": "west"}, Nudge(Direction.WEST)),
        ({"point": "start"}, Start()),
        ({"point": "remove"}, Remove()),
        ({"point": "up"}, None),
        ({"postcode": "48143"}, None),  # the save button
    ],
)
def test_what_a_submitted_form_asks_of_the_map(form: dict[str, str], action: maps.MapAction | None) -> None:
    assert maps.read_action(form) == action


def test_the_point_after_each_action() -> None:
    chosen = Point(51.960, 7.620)
    postcode_centre = Point(51.9625, 7.6270)
    assert maps.act(FRAME, Click(150, 150), chosen, None) == FRAME.centre.rounded()
    assert maps.act(FRAME, Nudge(Direction.NORTH), chosen, None) == maps.nudge(FRAME, chosen, Direction.NORTH)
    # Without a point yet, a nudge or the start button begins at the postcode's centre, else the map's.
    assert maps.act(FRAME, Nudge(Direction.EAST), None, postcode_centre) == postcode_centre.rounded()
    assert maps.act(FRAME, Start(), None, None) == FRAME.centre.rounded()
    assert maps.act(FRAME, Start(), chosen, Point(10.0, 10.0)) == FRAME.centre.rounded()  # not on this map
    assert maps.act(FRAME, Remove(), chosen, postcode_centre) is None


def test_the_kept_point_is_read_from_the_hidden_fields_and_only_if_it_is_on_the_map() -> None:
    assert maps.read_point({}, FRAME) is None
    assert maps.read_point({"home_lat": "51.96", "home_lon": "7.62"}, FRAME) == Point(51.96, 7.62)
    for bad in ({"home_lat": "51.96"}, {"home_lat": "nan", "home_lon": "7.6"}, {"home_lat": "52.9", "home_lon": "7.6"}):
        with pytest.raises(ValueError):
            maps.read_point(bad, FRAME)


def test_the_point_in_words_names_the_nearest_postcode_and_the_way_from_its_centre() -> None:
    at_centre = maps.in_words(TABLE, Point(51.9626, 7.6271))
    assert at_centre is not None and at_centre.near.postcode == "48143" and at_centre.direction is None
    north_east = maps.in_words(TABLE, Point(51.9660, 7.6320))
    assert north_east is not None and north_east.near.postcode == "48143"
    assert north_east.direction == "nordöstlich" and north_east.km == pytest.approx(0.5, abs=0.1)
    assert maps.compass(Point(52.0, 7.0), Point(51.99, 7.0)) == "südlich"
    assert maps.compass(Point(52.0, 7.0), Point(52.0, 6.99)) == "westlich"
    assert maps.in_words((), Point(52.0, 7.0)) is None


def test_the_grid_draws_a_few_round_lines() -> None:
    assert maps.grid_step_km(3.9) == 0.5
    assert maps.grid_step_km(12.0) == 2.0
    assert maps.grid_step_km(1000.0) == 50.0


HOSTILE_NAMES = ["<script>alert(1)</script>", '"onload="alert(1)', "x' onmouseover='alert(1)", "]]><script/>"]


def test_the_tenants_names_come_out_of_the_svg_as_inert_text() -> None:
    table = tuple(
        PostcodePoint(f"4814{index}", name, 51.96 + index / 100, 7.62) for index, name in enumerate(HOSTILE_NAMES)
    )
    frame = MapFrame.around(table)
    for svg in (maps.render(frame, table), maps.with_marker(maps.render(frame, table), frame, 150, 150)):
        root = ElementTree.fromstring(svg)  # well-formed: nothing broke out of a text or attribute
        elements = list(root.iter())
        assert not any(element.tag.endswith("script") for element in elements)
        assert not any(name.lower().startswith("on") for element in elements for name in element.attrib)
        texts = [element.text for element in elements if element.text]
        for index, name in enumerate(HOSTILE_NAMES):
            assert f"4814{index} {name}" in texts
        assert "<script" not in svg and "]]><" not in svg
    marked = ElementTree.fromstring(maps.with_marker(maps.render(frame, table), frame, 150, 150))
    rings = [e for e in marked.iter() if e.tag.endswith("circle") and e.get("r") == "9"]
    assert [(ring.get("cx"), ring.get("cy")) for ring in rings] == [("150.0", "150.0")]


def test_the_svg_is_the_fixed_size_the_page_clicks_on() -> None:
    root = ElementTree.fromstring(maps.render(FRAME, TABLE))
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == ("300", "300", "0 0 300 300")
    circles = [e for e in root.iter() if e.tag.endswith("circle")]
    assert len(circles) == len(TABLE)
    for circle, row in zip(circles, TABLE, strict=True):
        x, y = FRAME.to_pixel(Point(row.lat, row.lon))
        assert math.isclose(float(circle.get("cx", "")), x, abs_tol=0.05)
        assert math.isclose(float(circle.get("cy", "")), y, abs_tol=0.05)


def test_the_registrys_table_is_read_leaving_out_what_is_not_a_row() -> None:
    answer = {
        "items": [
            {"postcode": "48143", "point": {"lat": 51.9625, "lon": 7.627}, "district": "Mitte"},
            {"postcode": "48147"},
            "nonsense",
        ]
    }
    assert maps.read_table(answer) == [PostcodePoint("48143", "Mitte", 51.9625, 7.627)]
    assert maps.read_table(None) == [] and maps.read_table({"items": "x"}) == []
