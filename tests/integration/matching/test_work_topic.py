"""Matching refuses to start on a work topic with another partition count than the catalogue's:
it computes a tenant's owner from the catalogue's count, the producer partitions by the topic's,
and events would reach a partition whose tenants no replica owns (issue 19)."""

from __future__ import annotations

import uuid

import pytest

from lotse_devstack import Stack, TopicSpec, ensure_topics
from lotse_matching.app import create_app
from tests.integration.matching.support import service_settings

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_work_topic_with_other_partitions_stops_the_start(stack: Stack) -> None:
    settings = service_settings(stack, f"partitions-{uuid.uuid4().hex[:8]}")
    await ensure_topics(stack.kafka_bootstrap, [TopicSpec(settings.work_topic, 3)])
    app = create_app(settings)

    with pytest.raises(RuntimeError, match=r"has 3 partitions, matching needs 12"):
        async with app.router.lifespan_context(app):
            pass


async def test_a_missing_work_topic_stops_the_start(stack: Stack) -> None:
    """Kafka says it does not exist (0 partitions); Tansu creates it when asked, with its default."""
    settings = service_settings(stack, f"missing-{uuid.uuid4().hex[:8]}")
    app = create_app(settings)

    with pytest.raises(RuntimeError, match=r"has \d+ partitions, matching needs 12: create it"):
        async with app.router.lifespan_context(app):
            pass
