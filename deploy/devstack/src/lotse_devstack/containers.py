"""Apache Kafka and MongoDB in containers, for machines where a Docker engine answers."""

from __future__ import annotations

from contextlib import ExitStack

DOCKER_PING_TIMEOUT_SECONDS = 2
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
# The Atlas local image runs mongod as a single-node replica set, so transactions work.
MONGO_IMAGE = "mongodb/mongodb-atlas-local:8.0"


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_SECONDS)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means: no engine to use
        return False


def start_containers(resources: ExitStack) -> tuple[str, str]:
    """Start Kafka (KRaft) and MongoDB; ``resources`` stops them. Returns (bootstrap, mongo url)."""
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.mongodb import MongoDBAtlasLocalContainer

    kafka = resources.enter_context(KafkaContainer(KAFKA_IMAGE).with_kraft())
    mongo = resources.enter_context(MongoDBAtlasLocalContainer(MONGO_IMAGE))
    return kafka.get_bootstrap_server(), mongo.get_connection_url()
