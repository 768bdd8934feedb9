"""Streams plumbing: settings, the topic registry and key scheme, the CloudEvents codec, the DLQ, the
Faust app factory, topic provisioning and producers.

The pure parts are imported at once. The parts that bring Kafka clients and Faust (`create_app`,
`decode_or_dlq`, `send_event`, `send_to_dlq`, the publishers, `provision_topics`) load on first use,
so that importing the pure parts does not pull Faust in. The key scheme and derived ids are contracts:
they live in `tidegate.schemas` (`keys`, `ids`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tidegate.schemas.lazy import lazy_surface
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

# Loaded on first use (schemas/lazy.py): public name -> its module, relative to this package.
_LAZY = {
    **dict.fromkeys(
        ("TidegateApp", "TopicChannels", "create_app", "decode_or_dlq", "send_event", "send_to_dlq", "worker_command"),
        "app",
    ),
    **dict.fromkeys(("AsyncEventPublisher", "Delivery", "EventPublisher", "PublishError"), "kafka._publish"),
    **dict.fromkeys(("ProvisionError", "ProvisionReport", "delete_topics", "provision_topics"), "kafka._admin"),
}
if not TYPE_CHECKING:  # type checkers read the imports above
    __getattr__, __dir__ = lazy_surface(__name__, _LAZY)

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
