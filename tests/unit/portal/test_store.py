"""A copy of the portal's database hands out neither live sessions nor the people's tokens."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from lotse_portal.store import Session, SignedInUser, session_key

USER = SignedInUser(
    subject="sub",
    volunteer_id="v",
    tenant="lindenau",
    roles=("volunteer",),
    organisation=None,
    name="Maria",
    access_token="access-token-value",
    refresh_token="refresh-token-value",
    id_token="id-token-value",
    expires_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
)


def test_the_stored_session_holds_no_id_and_no_token_in_the_clear() -> None:
    session = replace(Session.new(timedelta(hours=1)), user=USER)
    document = session.to_document()
    stored = json.dumps(document, default=str)
    assert document["_id"] == session_key(session.id) and session.id not in stored
    for secret in ("access-token-value", "refresh-token-value", "id-token-value"):
        assert secret not in stored
    assert Session.from_document(session.id, document).user == USER


def test_tokens_stored_for_one_session_id_do_not_open_with_another() -> None:
    session = replace(Session.new(timedelta(hours=1)), user=USER)
    document = session.to_document()
    assert Session.from_document("another-session-id", document).user is None


def test_a_session_without_a_refresh_token_round_trips() -> None:
    session = replace(Session.new(timedelta(hours=1)), user=replace(USER, refresh_token=None))
    assert Session.from_document(session.id, session.to_document()).user == replace(USER, refresh_token=None)
