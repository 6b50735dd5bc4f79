"""Real servers for local runs and tests: a Kafka-protocol broker and a MongoDB-protocol server.

Backend choice, in this order: URLs given in ``LOTSE_KAFKA_BOOTSTRAP`` / ``LOTSE_MONGO_URL``;
testcontainers (Apache Kafka, MongoDB as a single-node replica set) when a Docker engine answers;
otherwise the embedded servers installed from PyPI (Tansu and SecantusDB).
"""

from lotse_devstack.stack import Stack, StackError, running_stack

# Topic creation lives in lotse_runtime (the ops CLI needs it without the local stack); re-exported
# here because every user of a local stack needs it too.
from lotse_runtime.topics import TopicMismatch, TopicSpec, ensure_topics

__all__ = ["Stack", "StackError", "TopicMismatch", "TopicSpec", "ensure_topics", "running_stack"]
