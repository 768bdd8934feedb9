"""Streams plumbing: settings, the topic registry and key scheme, the CloudEvents codec, the DLQ, the
Faust app factory, topic provisioning and producers.

The pure parts are imported at once. The parts that bring Kafka clients and Faust (`create_app`,
`decode_or_dlq`, `send_event`, `send_to_dlq`, the publishers, `provision_topics`) load on first use,
so that importing the pure parts does not pull Faust in. The key scheme and derived ids are contracts:
they live in `tidegate.schemas` (`keys`, `ids`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tidegate.streams.codec import (
    DecodeError,
    KafkaRecord,
    decode,
    decode_record,
    encode,
    encode_structured,
    event_key,
)
from tidegate.streams.dlq import DeadLetter, DeadLetterCounter, dead_letter_record, read_dead_letter
from tidegate.streams.settings import Settings
from tidegate.streams.topics import STANDARD_TASKS, TopicRegistry, TopicSpec

if TYPE_CHECKING:
    from tidegate.streams.app import (
        TidegateApp,
        TopicChannels,
        create_app,
        decode_or_dlq,
        send_event,
        send_to_dlq,
        worker_command,
    )
    from tidegate.streams.kafka._admin import ProvisionError, ProvisionReport, delete_topics, provision_topics
    from tidegate.streams.kafka._publish import AsyncEventPublisher, Delivery, EventPublisher, PublishError

_LAZY = {
    "TidegateApp": "tidegate.streams.app",
    "TopicChannels": "tidegate.streams.app",
    "create_app": "tidegate.streams.app",
    "decode_or_dlq": "tidegate.streams.app",
    "send_event": "tidegate.streams.app",
    "send_to_dlq": "tidegate.streams.app",
    "worker_command": "tidegate.streams.app",
    "AsyncEventPublisher": "tidegate.streams.kafka._publish",
    "Delivery": "tidegate.streams.kafka._publish",
    "EventPublisher": "tidegate.streams.kafka._publish",
    "PublishError": "tidegate.streams.kafka._publish",
    "ProvisionError": "tidegate.streams.kafka._admin",
    "ProvisionReport": "tidegate.streams.kafka._admin",
    "delete_topics": "tidegate.streams.kafka._admin",
    "provision_topics": "tidegate.streams.kafka._admin",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'streams' has no attribute {name!r}")


__all__ = [
    "STANDARD_TASKS",
    "AsyncEventPublisher",
    "DeadLetter",
    "DeadLetterCounter",
    "DecodeError",
    "Delivery",
    "EventPublisher",
    "KafkaRecord",
    "ProvisionError",
    "ProvisionReport",
    "PublishError",
    "Settings",
    "TidegateApp",
    "TopicChannels",
    "TopicRegistry",
    "TopicSpec",
    "create_app",
    "dead_letter_record",
    "decode",
    "decode_or_dlq",
    "decode_record",
    "delete_topics",
    "encode",
    "encode_structured",
    "event_key",
    "provision_topics",
    "read_dead_letter",
    "send_event",
    "send_to_dlq",
    "worker_command",
]
