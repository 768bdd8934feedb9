"""Streams plumbing: settings, the topic registry and key scheme, the CloudEvents codec, the DLQ, the
Faust app factory, topic provisioning and producers.

The pure parts are imported at once. The parts that bring Kafka clients and Faust (`create_app`,
`decode_or_dlq`, `send_event`, `send_to_dlq`, the publishers, `provision_topics`) load on first use,
so that an agent's pure core importing `streams.keys` does not pull Faust in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streams.codec import (
    DecodeError,
    KafkaRecord,
    decode,
    decode_record,
    encode,
    encode_structured,
    event_key,
)
from streams.dlq import DeadLetter, DeadLetterCounter, dead_letter_record, read_dead_letter
from streams.ids import derived_id
from streams.keys import Key
from streams.settings import Settings
from streams.topics import STANDARD_TASKS, TopicRegistry, TopicSpec

if TYPE_CHECKING:
    from streams.app import (
        TidegateApp,
        TopicChannels,
        create_app,
        decode_or_dlq,
        send_event,
        send_to_dlq,
        worker_command,
    )
    from streams.producer import AsyncEventPublisher, Delivery, EventPublisher, PublishError
    from streams.provision import ProvisionError, ProvisionReport, delete_topics, provision_topics

_LAZY = {
    "TidegateApp": "streams.app",
    "TopicChannels": "streams.app",
    "create_app": "streams.app",
    "decode_or_dlq": "streams.app",
    "send_event": "streams.app",
    "send_to_dlq": "streams.app",
    "worker_command": "streams.app",
    "AsyncEventPublisher": "streams.producer",
    "Delivery": "streams.producer",
    "EventPublisher": "streams.producer",
    "PublishError": "streams.producer",
    "ProvisionError": "streams.provision",
    "ProvisionReport": "streams.provision",
    "delete_topics": "streams.provision",
    "provision_topics": "streams.provision",
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
    "Key",
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
    "derived_id",
    "encode",
    "encode_structured",
    "event_key",
    "provision_topics",
    "read_dead_letter",
    "send_event",
    "send_to_dlq",
    "worker_command",
]
