"""Where a reported need is placed (its street found once, among several, not at all, or without a
search), and the place that was used, in words."""

from __future__ import annotations

from typing import Any

import pytest

from lotse_portal import places
from lotse_portal.maps import Point, PostcodePoint
from lotse_portal.places import CENTRE, AddressCandidate, PlaceDecision, PlaceInWords

MITTE = PostcodePoint("48143", "Mitte", 51.9625, 7.627)
KREUZVIERTEL = PostcodePoint("48147", "Kreuzviertel", 51.972, 7.618)
TABLE = [MITTE, KREUZVIERTEL]
TOWN_HALL = AddressCandidate("Rathaus, Prinzipalmarkt 10, 48143 Musterstadt", Point(51.9614, 7.6251), "48143", "Mitte")
ELSEWHERE = AddressCandidate("Prinzipalmarkt 10, 10115 Berlin", Point(52.53, 13.38), "10115", None)
NO_POSTCODE = AddressCandidate("Prinzipalmarkt", Point(51.9617, 7.6262))
AT_THE_CENTRE: dict[str, Any] = {"point": {"lat": 51.9625, "lon": 7.627}, "postcode": "48143", "district": "Mitte"}


def without_search(street: str = "", choice: str = "", searched: str = "", search: bool = True) -> PlaceDecision | None:
    return places.place_without_search(
        street=street, choice=choice, searched=searched, centre=MITTE, address_search=search
    )


def test_without_a_street_or_an_address_search_the_postcodes_centre_is_the_place() -> None:
    assert without_search() == PlaceDecision(place=AT_THE_CENTRE)
    assert without_search(street="Prinzipalmarkt 10", search=False) == PlaceDecision(place=AT_THE_CENTRE)
    # With a street and a search, the search decides.
    assert without_search(street="Prinzipalmarkt 10") is None


def test_the_persons_choice_decides_without_a_new_search() -> None:
    assert without_search(street="Prinzipalmarkt 10", choice=CENTRE) == PlaceDecision(place=AT_THE_CENTRE)
    chosen = without_search(street="Prinzipalmarkt 10", choice=TOWN_HALL.choice, searched="Prinzipalmarkt 10")
    assert chosen == PlaceDecision(
        place={"point": {"lat": 51.9614, "lon": 7.6251}, "postcode": "48143", "district": "Mitte"}
    )
    # A candidate of another street (the person changed it since) is searched again.
    assert without_search(street="Ludgeristraße 1", choice=TOWN_HALL.choice, searched="Prinzipalmarkt 10") is None
    assert without_search(street="Prinzipalmarkt 10", choice="91,7", searched="Prinzipalmarkt 10") is None


def test_one_address_found_in_the_postcode_is_the_place() -> None:
    decision = places.place_from_search([TOWN_HALL, ELSEWHERE], MITTE)
    assert decision == PlaceDecision(
        place={"point": {"lat": 51.9614, "lon": 7.6251}, "postcode": "48143", "district": "Mitte"}
    )


def test_several_fitting_addresses_are_offered_to_choose_with_the_centre() -> None:
    decision = places.place_from_search([TOWN_HALL, NO_POSTCODE, ELSEWHERE], MITTE)
    assert decision.place is None and decision.error == places.SEVERAL
    assert decision.candidates == (TOWN_HALL, NO_POSTCODE) and decision.centre == MITTE


@pytest.mark.parametrize(
    ("found", "error"), [([], places.NOT_FOUND), ([ELSEWHERE], places.NOT_FOUND), (None, places.UNAVAILABLE)]
)
def test_an_address_not_found_or_no_answer_is_said_and_the_centre_offered_not_taken(
    found: list[AddressCandidate] | None, error: str
) -> None:
    assert places.place_from_search(found, MITTE) == PlaceDecision(error=error, centre=MITTE)


def test_a_candidates_choice_is_its_point() -> None:
    assert places.chosen_point(TOWN_HALL.choice) == Point(51.9614, 7.6251)
    for bad in ("", CENTRE, "51.9,", "x,y", "95.0,7.6", "51.9,7.6,1", "51.9;7.6"):
        assert places.chosen_point(bad) is None


def test_the_registrys_candidates_are_read_leaving_out_what_is_not_one() -> None:
    answer = {
        "items": [
            {
                "label": TOWN_HALL.label,
                "point": {"lat": 51.9614, "lon": 7.6251},
                "postcode": "48143",
                "district": "Mitte",
            },
            {"label": "no point"},
        ]
    }
    assert places.read_candidates(answer) == [TOWN_HALL]
    assert places.read_candidates([]) == []


def test_the_place_used_is_said_in_words() -> None:
    # A volunteer placed at their postcode's centroid (the registry's doing for a postcode alone).
    assert places.describe(AT_THE_CENTRE["point"], "48143", TABLE, by_nearest=True) == PlaceInWords(
        "48143", "Mitte", at_centre=True
    )
    # A point chosen on the map is named by the nearest postcode, whatever postcode was typed.
    near_kreuzviertel = {"lat": 51.9712, "lon": 7.6190}
    assert places.describe(near_kreuzviertel, "48143", TABLE, by_nearest=True) == PlaceInWords(
        "48147", "Kreuzviertel", at_centre=False
    )
    assert places.describe(near_kreuzviertel, None, TABLE, by_nearest=False) == PlaceInWords(
        "48147", "Kreuzviertel", at_centre=False
    )
    # A need at its address is named by its own postcode.
    assert places.describe(near_kreuzviertel, "48143", TABLE, by_nearest=False) == PlaceInWords(
        "48143", "Mitte", at_centre=False
    )
    # Without the table (the registry did not answer): the postcode alone.
    assert places.describe(near_kreuzviertel, "48143", [], by_nearest=True) == PlaceInWords("48143", "", False)
    assert places.describe(None, None, TABLE, by_nearest=True) is None
