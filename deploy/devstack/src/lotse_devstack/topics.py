"""Create the catalogue's topics on a broker, or verify that they are there as declared."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from lotse_contracts import Topic

_TOPIC_ALREADY_EXISTS = TopicAlreadyExistsError.errno


class TopicMismatch(RuntimeError):
    """A topic exists with other settings than the catalogue declares."""


async def ensure_topics(bootstrap: str, topics: Iterable[Topic]) -> list[str]:
    """Create missing topics; return the names created. Existing ones must have enough partitions."""
    wanted = {topic.name: topic for topic in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-topics")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [wanted[name] for name in sorted(wanted) if name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        topic.name,
                        topic.partitions,
                        1,
                        topic_configs=topic.broker_configs(),
                    )
                    for topic in missing
                ]
            )
            for name, code, message in response.topic_errors:
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:
                    raise TopicMismatch(f"cannot create topic {name}: {message} (error {code})")
        present = [name for name in wanted if name in existing]
        if present:
            for description in await admin.describe_topics(present):
                name = description["topic"]
                partitions = len(description["partitions"])
                if partitions < wanted[name].partitions:
                    raise TopicMismatch(
                        f"topic {name} has {partitions} partitions, the catalogue declares "
                        f"{wanted[name].partitions}"
                    )
        return created
    finally:
        await admin.close()
