"""A volunteer's address becomes exactly one mailbox in the mail's headers, or the delivery fails
for good: the contract's e-mail pattern lets through strings a header parser reads as something else."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from pydantic import TypeAdapter

from lotse_contracts.events.values import Email
from lotse_notifications.channels import SendFailed, email_message
from lotse_notifications.templates import Rendered

RENDERED = Rendered(kind="welcome", language="de", subject="Willkommen", text="Hallo", html="<p>Hallo</p>")


def _message(to: str, reply_to: str | None = None) -> EmailMessage:
    return email_message(RENDERED, sender="lotse@example.org", to=to, delivery_id="d-1", reply_to=reply_to)


@pytest.mark.parametrize(
    "address",
    [
        "a,b@example.org",  # two recipients: "a" and "b@example.org"
        "https://x/a@example.org",  # a group named "https"
        'x"@example.org',  # an unbalanced quote
    ],
)
def test_an_address_the_header_would_read_otherwise_fails_for_good(address: str) -> None:
    # The contract accepts each of them, so they reach the worker.
    assert TypeAdapter(Email).validate_python(address) == address
    with pytest.raises(SendFailed) as failure:
        _message(address)
    assert failure.value.permanent
    assert failure.value.code == "address_invalid"


def test_a_reply_to_address_is_checked_the_same_way() -> None:
    with pytest.raises(SendFailed):
        _message("maria@example.org", reply_to="a,b@example.org")


def test_an_ordinary_address_is_the_one_recipient() -> None:
    message = _message("maria@example.org", reply_to="buero@verein.example")
    assert [str(a) for a in message["To"].addresses] == ["maria@example.org"]
    assert [str(a) for a in message["Reply-To"].addresses] == ["buero@verein.example"]
