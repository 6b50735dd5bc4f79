"""What the registry's statistics publish of its counts: nothing below five, at the boundary."""

from __future__ import annotations

from lotse_registry.api.statistics import published
from lotse_registry.store import NeedTally, RawStatistics


def _raw(**changes: object) -> RawStatistics:
    values: dict[str, object] = {
        "tenant": "musterstadt",
        "organisation_id": None,
        "needs_by_category": {"translation": NeedTally(open=4, staffed=5, unstaffed=0)},
        "needs_by_district": {None: NeedTally(open=5), "Mitte": NeedTally(open=4, staffed=5)},
        "active": 5,
        "withdrawn": 4,
        "engaged": 5,
        "erased": 4,
    }
    values.update(changes)
    return RawStatistics(**values)  # type: ignore[arg-type]


def test_four_is_withheld_and_five_is_shown() -> None:
    shown = published(_raw())
    assert shown.model_dump()["needs_by_category"] == {"translation": {"open": None, "staffed": 5, "unstaffed": None}}
    assert shown.model_dump()["volunteers"] == {"active": 5, "engaged": 5, "withdrawn": None, "erased": None}
    assert shown.suppressed_below == 5


def test_districts_come_by_name_with_the_needs_without_one_last() -> None:
    rows = published(_raw()).model_dump()["needs_by_district"]
    assert rows == [
        {"district": "Mitte", "open": None, "staffed": 5, "unstaffed": None},
        {"district": None, "open": 5, "staffed": None, "unstaffed": None},
    ]


def test_an_organisations_figures_have_no_erasures() -> None:
    shown = published(_raw(organisation_id="org-1", erased=None, active=12))
    assert shown.organisation_id == "org-1" and shown.volunteers.erased is None and shown.volunteers.active == 12


def test_the_tally_counts_unstaffed_needs_among_the_open_ones() -> None:
    tally = NeedTally()
    for status, unstaffed in (("open", True), ("open", False), ("staffed", False), ("closed", False)):
        tally.add(status, unstaffed)
    assert tally == NeedTally(open=2, staffed=1, unstaffed=1)
