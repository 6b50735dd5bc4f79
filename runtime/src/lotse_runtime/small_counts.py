"""Statistics that single out nobody: every count below five is withheld by the service itself.

A municipality's statistics (needs by category and district, volunteers, proposals, time to
staff) go to coordinators, initiatives and their spreadsheets. Two needs of one category in one
district can point at a household, one active volunteer of an initiative at a person. So every
service withholds each count below :data:`MINIMUM_COUNT` before it leaves the service, and every
figure computed from fewer items than that (a median, a ratio): no API caller gets a small
number, whatever it shows to whom.

A withheld count is ``null`` in JSON (``SmallCount``); answers name the threshold
(``suppressed_below``), so that a reader can say "fewer than 5". Totals are not published beside
withheld parts, as they would give a withheld part away by subtraction.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MINIMUM_COUNT = 5

SmallCount = Annotated[
    int | None,
    Field(ge=MINIMUM_COUNT, description=f"A count; null when it is below {MINIMUM_COUNT} (withheld)."),
]


def disclosed(count: int) -> int | None:
    """``count`` if it singles out nobody, else ``None`` (withheld)."""
    return count if count >= MINIMUM_COUNT else None


def enough(items: int) -> bool:
    """Whether a figure computed from ``items`` items (a median, a ratio) may be published."""
    return items >= MINIMUM_COUNT
