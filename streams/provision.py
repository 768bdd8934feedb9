"""Moved to `tidegate.streams.kafka` (the one Kafka layer); kept so existing imports keep working."""

from tidegate.streams.kafka._admin import (
    ADMIN_TIMEOUT,
    ProvisionError,
    ProvisionReport,
    TopicPlan,
    TopicState,
    delete_topics,
    describe_topics,
    plan_topics,
    provision_topics,
    topic_partitions,
)

__all__ = [
    "ADMIN_TIMEOUT",
    "ProvisionError",
    "ProvisionReport",
    "TopicPlan",
    "TopicState",
    "delete_topics",
    "describe_topics",
    "plan_topics",
    "provision_topics",
    "topic_partitions",
]
