"""The guidance topics the API offers: every topic with a default, plus the tenant-only ones."""

from __future__ import annotations

from lotse_notifications import catalogue
from lotse_notifications.api.templates import GUIDANCE_TOPICS, GuidanceBody


def test_every_topic_with_a_default_is_offered_and_only_authorities_has_none() -> None:
    assert set(catalogue.GUIDANCE_TOPICS) <= set(GUIDANCE_TOPICS)
    assert set(GUIDANCE_TOPICS) - set(catalogue.GUIDANCE_TOPICS) == {"authorities"}
    assert tuple(GuidanceBody.model_fields) == GUIDANCE_TOPICS
