"""The questions pages' contexts for tests/unit/portal/test_pages.py (every page in every language,
escaped) and tests/unit/portal/test_questions.py: what people typed is hostile everywhere."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from lotse_portal.api.office_questions import QuestionSection
from lotse_portal.domain import QUESTION_SUBJECT_MAX, QUESTION_TEXT_MAX, NeedChoice, QuestionThread

HOSTILE = "<script>alert(1)</script>"  # as test_pages.HOSTILE
BERLIN = ZoneInfo("Europe/Berlin")
ANSWER = {
    "id": "6f1c9d2e-0b9a-4c43-9a57-0d5d3c1f4a10",
    "subject": HOSTILE,
    "state": "answered",
    "about_need_id": "0b7d3c52-9a51-4e1c-8b0e-2f6d4a3c1e77",
    "created_at": "2026-12-01T09:00:00Z",
    "last_activity_at": "2026-12-01T10:30:00Z",
    "last_from": "office",
    "message_count": 2,
    "messages": [
        {"id": "m1", "author": "volunteer", "author_id": None, "text": HOSTILE, "created_at": "2026-12-01T09:00:00Z"},
        {
            "id": "m2",
            "author": "office",
            "author_id": "s1",
            "text": f"{HOSTILE}\nZweite Zeile",
            "created_at": "2026-12-01T10:30:00Z",
        },
    ],
    "volunteer_id": "v1",
    "volunteer_name": HOSTILE,
    "contact_person_id": "s1",
    "mine": True,
}
THREAD = QuestionThread.from_json(ANSWER, "de", BERLIN)
NEED = NeedChoice("0b7d3c52-9a51-4e1c-8b0e-2f6d4a3c1e77", "translation", HOSTILE)
ERRORS = {
    "text": "Bitte füllen Sie dieses Feld aus.",
    "subject": "Bitte kürzen Sie den Betreff auf höchstens 150 Zeichen.",
}

QUESTION_PAGES: dict[str, dict[str, Any]] = {
    "questions.html": {
        "threads": [THREAD],
        "contact_person": HOSTILE,
        "needs": [NEED],
        "values": {"subject": HOSTILE, "text": HOSTILE, "about_need_id": NEED.need_id},
        "errors": ERRORS | {"form": "Sie haben gerade viele Nachrichten geschrieben. Bitte warten Sie einige Minuten."},
        "subject_max": QUESTION_SUBJECT_MAX,
        "text_max": QUESTION_TEXT_MAX,
    },
    "question.html": {
        "thread": THREAD,
        "about": NEED,
        "contact_person": HOSTILE,
        "values": {"text": HOSTILE},
        "errors": ERRORS,
        "text_max": QUESTION_TEXT_MAX,
    },
    "console_questions.html": {
        "sections": [
            QuestionSection("open", "Warten auf Antwort", "Keine Frage wartet auf eine Antwort.", (THREAD,), 150),
            QuestionSection("closed", "Erledigt", "Keine erledigte Frage.", (), 0),
        ],
        "mine": True,
    },
    "console_question.html": {
        "thread": THREAD,
        "values": {"text": HOSTILE},
        "errors": ERRORS,
        "text_max": QUESTION_TEXT_MAX,
    },
}
