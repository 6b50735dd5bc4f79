"""The one rule for published statistics: counts below five are withheld, five and more shown."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from lotse_runtime.small_counts import MINIMUM_COUNT, SmallCount, disclosed, enough


def test_the_boundary_is_five() -> None:
    assert MINIMUM_COUNT == 5
    assert [disclosed(count) for count in range(7)] == [None, None, None, None, None, 5, 6]
    assert not enough(4) and enough(5)


class Published(BaseModel):
    count: SmallCount


def test_a_published_count_below_five_is_refused_by_the_model_itself() -> None:
    assert Published(count=5).count == 5 and Published(count=None).count is None
    with pytest.raises(ValidationError):
        Published(count=4)
    assert Published.model_json_schema()["properties"]["count"]["anyOf"][0]["minimum"] == 5
