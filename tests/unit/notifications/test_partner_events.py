"""What partners receive of answers and withdrawals: how and why a volunteer answered is theirs
(issue 18). Pure projections, no I/O."""

from __future__ import annotations

import pytest

from lotse_contracts import ProposalAccepted, ProposalDeclined, ProposalWithdrawn
from lotse_contracts.events.matching import AnswerChannel, WithdrawReason
from lotse_contracts.events.partner import DeclineReason
from lotse_notifications.partner_events import PartnerField, project
from tests.support.events import example_data

PLAIN: frozenset[PartnerField] = frozenset()
ANSWERING = frozenset({PartnerField.VOLUNTEER_IDS})


def projected(data: object, fields: frozenset[PartnerField]) -> dict[str, object]:
    found = project(data, fields)
    assert found is not None
    return found.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("fields", [PLAIN, ANSWERING], ids=["plain", "volunteer_ids"])
def test_a_decline_never_tells_partners_why_and_how_only_with_the_opt_in(fields: frozenset[PartnerField]) -> None:
    declined = example_data(ProposalDeclined, answered_via=AnswerChannel.VOLUNTEER_APP, reason=DeclineReason.TOO_FAR)
    accepted = example_data(ProposalAccepted, answered_via=AnswerChannel.VOLUNTEER_APP)

    for data in (declined, accepted):
        sent = projected(data, fields)
        assert "reason" not in sent
        assert ("answered_via" in sent) is (fields == ANSWERING), "how they answered: for the answering partner"


@pytest.mark.parametrize("fields", [PLAIN, ANSWERING], ids=["plain", "volunteer_ids"])
def test_a_withdrawal_never_tells_partners_that_the_person_left(fields: frozenset[PartnerField]) -> None:
    left = example_data(ProposalWithdrawn, reason=WithdrawReason.VOLUNTEER_WITHDRAWN)
    staffed = example_data(ProposalWithdrawn, reason=WithdrawReason.NEED_STAFFED)

    assert "reason" not in projected(left, fields)
    expected = {"reason": "need_staffed"} if fields == ANSWERING else {}
    assert {k: v for k, v in projected(staffed, fields).items() if k == "reason"} == expected
