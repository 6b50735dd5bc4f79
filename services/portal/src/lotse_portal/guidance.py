"""The guidance texts (pure): what the office's form shows and sends, and how a text reads.

Notifications keeps the texts per topic and language (``/guidance/{language}``): the platform's
default and, where the municipality wrote its own, the tenant's. The form shows every topic with
the text in use; what the coordinator leaves as the default (unchanged, emptied, or reset) is
not sent, so the default stays the default and follows the platform's corrections. Texts are
plain text: pages escape them and make paragraphs of blank lines, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lotse_portal.domain import FormData
from lotse_runtime.i18n import N_

MAX_LENGTH = 1000  # notifications' limit per text
TOPICS: dict[str, str] = {
    "insurance": N_("Versicherung"),
    "certificates": N_("Nachweise und Führungszeugnis"),
    "authorities": N_("Wie die Behörden arbeiten"),
    "contact": N_("Wen Sie fragen können"),
}
TOO_LONG = N_("Bitte kürzen Sie den Text auf höchstens 1000 Zeichen.")
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")


@dataclass(frozen=True)
class TopicText:
    """One topic in one language as the office edits it."""

    topic: str
    text: str  # in use: the tenant's, else the default ("" where there is neither)
    default: str  # the platform's ("" for a topic without one)
    overridden: bool

    @property
    def label(self) -> str:
        return TOPICS.get(self.topic, self.topic)


def topics_of(answer: Mapping[str, Any]) -> list[TopicText]:
    """The topics of a ``GET /guidance/{language}`` answer, in reading order."""
    defaults: Mapping[str, str] = answer.get("defaults") or {}
    overridden = set(answer.get("overridden") or [])
    found = []
    for topic in answer.get("topics") or list(defaults):
        text = answer.get(topic) if isinstance(answer.get(topic), str) else ""
        found.append(TopicText(topic, text or "", defaults.get(topic, ""), topic in overridden))
    return found


def _plain(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def read_form(form: FormData, topics: list[TopicText]) -> tuple[dict[str, str], dict[str, str]]:
    """The tenant's texts to send (topics left at the default are left out) and the errors by topic."""
    texts: dict[str, str] = {}
    errors: dict[str, str] = {}
    for item in topics:
        value = _plain(form.get(item.topic, ""))
        if form.get(f"reset_{item.topic}") == "yes" or not value or value == _plain(item.default):
            continue
        if len(value) > MAX_LENGTH:
            errors[item.topic] = TOO_LONG
        texts[item.topic] = value
    return texts, errors


def paragraphs(text: str) -> list[str]:
    """A plain text's paragraphs (blank lines between them); single line breaks stay in them."""
    return [part for part in (piece.strip() for piece in _BLANK_LINES.split(_plain(text))) if part]
