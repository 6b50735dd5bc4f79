"""Signed answer links: they round-trip, and anything changed, foreign or expired is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from lotse_runtime import answer_links

SECRET = "a-secret-of-sixteen-or-more"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def test_a_signed_answer_token_round_trips_and_refuses_tampering_and_expiry() -> None:
    token = answer_links.sign(SECRET, "p-1", "musterstadt", NOW + timedelta(hours=1))
    claims = answer_links.verify(SECRET, token, NOW)
    assert (claims.proposal_id, claims.tenant) == ("p-1", "musterstadt")
    body, signature = token.split(".")
    forged_body = answer_links._encode(b'{"p":"p-2","t":"musterstadt","e":9999999999,"n":"00"}')
    for forged in (f"{forged_body}.{signature}", f"{body}.{signature[:-1]}x", body, "", "a.b.c"):
        with pytest.raises(answer_links.InvalidToken) as refused:
            answer_links.verify(SECRET, forged, NOW)
        assert refused.value.reason == "tampered"
    with pytest.raises(answer_links.InvalidToken) as refused:
        answer_links.verify("another-secret-entirely", token, NOW)
    assert refused.value.reason == "tampered"
    with pytest.raises(answer_links.InvalidToken) as refused:
        answer_links.verify(SECRET, token, NOW + timedelta(hours=2))
    assert refused.value.reason == "expired" and refused.value.tenant == "musterstadt"


@pytest.mark.parametrize(
    "token",
    ["a.ä", "abc.déf", "ä.abc", "ä.ü", "abc.\ud800", "\ud800.abc", "a.\x00", "é"],
    ids=["signature", "signature-inside", "body", "both", "lone-surrogate", "surrogate-body", "nul", "no-dot"],
)
def test_a_token_with_non_ascii_characters_is_tampered_not_an_error(token: str) -> None:
    # compare_digest raises TypeError on a non-ASCII str, which was a 500 behind the answer pages.
    with pytest.raises(answer_links.InvalidToken) as refused:
        answer_links.verify(SECRET, token, NOW)
    assert refused.value.reason == "tampered"


def test_a_link_puts_the_token_in_the_path_and_the_choice_in_the_query() -> None:
    assert (
        answer_links.link("https://lotse.example/", "t.s", "accept")
        == "https://lotse.example/answers/t.s?choice=accept"
    )


def test_a_missing_secret_is_named_not_used() -> None:
    assert answer_links.secret_value(SecretStr("k" * 32)) == "k" * 32
    with pytest.raises(RuntimeError, match="LOTSE_ANSWER_LINK_SECRET"):
        answer_links.secret_value(None)
