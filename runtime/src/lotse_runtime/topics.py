"""Create the catalogue's topics on a broker, or verify that they are there as declared."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from lotse_contracts import Topic


class TopicMismatch(RuntimeError):
    """A topic exists with fewer partitions than declared, or cannot be created."""


@dataclass(frozen=True)
class TopicSpec:
    """What a broker needs to know to create one topic."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, topic: Topic) -> TopicSpec:
        return cls(topic.name, topic.partitions, topic.configs)


async def ensure_topics(
    bootstrap: str, topics: Iterable[Topic | TopicSpec], client_options: Mapping[str, Any] | None = None
) -> list[str]:
    """Create missing topics; return the names created. Existing ones must have enough partitions.

    ``client_options`` are extra aiokafka client arguments, e.g. the SASL login of an ops user.
    """
    wanted = {spec.name: spec for spec in (t if isinstance(t, TopicSpec) else TopicSpec.of(t) for t in topics)}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-topics", **(client_options or {}))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [wanted[name] for name in sorted(wanted) if name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [NewTopic(spec.name, spec.partitions, 1, topic_configs=spec.configs) for spec in missing]
            )
            # A CreateTopicsResponse, which aiokafka annotates as its base class Response.
            for name, code, message in response.topic_errors:  # type: ignore[attr-defined]
                if code == 0:
                    created.append(name)
                elif code != TopicAlreadyExistsError.errno:
                    raise TopicMismatch(f"cannot create topic {name}: {message} (error {code})")
        present = [name for name in wanted if name in existing]
        if present:
            for description in await admin.describe_topics(present):
                name = description["topic"]
                partitions = len(description["partitions"])
                if partitions < wanted[name].partitions:
                    raise TopicMismatch(
                        f"topic {name} has {partitions} partitions, the catalogue declares {wanted[name].partitions}"
                    )
        return created
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str, client_options: Mapping[str, Any] | None = None) -> int:
    """How many partitions ``topic`` has on the broker (0 if it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lotse-topics", **(client_options or {}))
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        return 0 if description.get("error_code") else len(description["partitions"])
    finally:
        await admin.close()
