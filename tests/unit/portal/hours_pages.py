"""The hours pages' contexts for tests/unit/portal/test_pages.py (every page in every language,
escaped) and tests/unit/portal/test_hours.py: what people typed is hostile everywhere."""

from __future__ import annotations

from datetime import date
from typing import Any

from lotse_portal import hours

HOSTILE = "<script>alert(1)</script>"  # as test_pages.HOSTILE
ENTRY = {
    "entry_id": "e1",
    "volunteer_id": "v1",
    "need_id": "n1",
    "organisation_id": "o1",
    "organisation_name": HOSTILE,
    "category": "translation",
    "description": HOSTILE,
    "date": "2026-12-01",
    "minutes": 150,
    "note": HOSTILE,
    "state": "pending",
    "logged_at": "2026-12-01T19:00:00Z",
    "updated_at": "2026-12-01T19:00:00Z",
    "decided_at": None,
    "decided_by": None,
    "rejection_reason": None,
}
PENDING = hours.Entry.from_json(ENTRY)
REJECTED = hours.Entry.from_json({**ENTRY, "entry_id": "e2", "state": "rejected", "rejection_reason": HOSTILE})
CONFIRMED = hours.Entry.from_json(
    {
        **ENTRY,
        "entry_id": "e3",
        "state": "confirmed",
        "decided_at": "2026-12-02T08:00:00Z",
        "decided_by": {"subject": "s", "role": "coordinator"},
    }
)
NEED = hours.LoggableNeed("n1", "translation", HOSTILE, HOSTILE, date(2026, 11, 24), None)
VALUES = {"need_id": "n1", "date": "2026-12-01", "hours": "2", "minutes": "30", "note": HOSTILE, "entry_id": "x"}


def duration(minutes: int) -> str:
    return hours.duration_words(minutes, str)


HOURS_PAGES: dict[str, dict[str, Any]] = {
    "hours.html": {
        "needs": [NEED],
        "values": VALUES,
        "errors": {"date": hours.RULES["after_engagement"][1]},
        "years": [(2026, [PENDING, REJECTED, CONFIRMED])],
        "totals": [
            hours.YearTotal.from_json(
                {
                    "year": 2026,
                    "confirmed_minutes": 150,
                    "pending_minutes": 150,
                    "organisations": [{"organisation_name": HOSTILE, "confirmed_minutes": 150}],
                }
            )
        ],
        "today": "2026-12-02",
        "states": hours.STATES,
        "duration": duration,
    },
    "hours_edit.html": {
        "entry": REJECTED,
        "needs": [NEED],
        "values": VALUES,
        "errors": {"duration": hours.RULES["too_many_per_day"][1]},
        "today": "2026-12-02",
        "states": hours.STATES,
        "duration": duration,
    },
    "hours_confirmation.html": {
        "listed": hours.confirmation_list([PENDING, REJECTED, CONFIRMED], 2026),
        "tenant_name": HOSTILE,
        "person": HOSTILE,
        "made_on": date(2026, 12, 3),
        "local_day": lambda moment: moment.date(),
        "duration": duration,
        "decimal_hours": lambda minutes: round(minutes / 60, 2),
    },
    "hours_office.html": {
        "is_coordinator": True,
        "entries": [PENDING],
        "more": True,
        "names": {"v1": HOSTILE},
        "errors": {"e1": "Bitte schreiben Sie, warum Sie die Stunden nicht bestätigen."},
        "reasons": {"e1": HOSTILE},
        "duration": duration,
    },
}
