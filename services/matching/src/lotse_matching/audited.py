"""What matching notes for the audit trail (``lotse_runtime.audit``): the names of the fields a
write changed, never their values.

Every write of staffing (proposals, picks, answers, releases, rounds: ``NeedWork.save``), of hours
and of calendar feeds is noted in its unit of work, recorded as whoever acts: the caller of the
route (``api.access``), the partner system of a partner's answer, or ``system`` for the
registry's events and the timer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lotse_runtime.audit import BOOKKEEPING_FIELDS, Operation, changed_fields

# Resource types: the collections written.
NEEDS = "needs"
PROPOSALS = "proposals"
HOURS = "hours"
CALENDAR_FEEDS = "calendar_feeds"


def written_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> set[str]:
    """The fields ``after`` writes that differ from ``before`` (all of them for a new document);
    a changed sub-document by its changed fields (``staffing.state``)."""
    if before is None:
        return changed_fields(after)
    return _differing(before, after) - BOOKKEEPING_FIELDS


def _differing(before: Mapping[str, Any], after: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            names.update(f"{key}.{inner}" for inner in _differing(old, new))
        else:
            names.add(str(key))
    return names


def operation_of(before: Mapping[str, Any] | None) -> Operation:
    return Operation.CREATE if before is None else Operation.UPDATE
