"""The gateway: Keptn v1's HTTP API on Kafka (FastAPI), with token auth, OpenAPI, an event stream,
health and metrics.

    create_app(gateway, api_token=...)          the app around a wired Gateway (tests: in-memory sinks)
    create_kafka_app(settings, gateway_settings) the app wired to Kafka in its lifespan (`tidegate gateway`)
    Gateway, GatewaySettings, Catalog, VersionedResourceStore
    MemoryEventSink, MemoryResourceSink          in-memory sinks
    TaskTopics, MemoryTaskTopics                 the task topics of accepted shipyards (Kafka: task_topics.py)
    rules                                        the pure rules (event validation, evaluation window, filters)
"""

from tidegate.gateway.app import create_app
from tidegate.gateway.catalog import SERVICE_MARKER, Catalog, VersionedResourceStore, service_record
from tidegate.gateway.context import Gateway
from tidegate.gateway.ports import (
    EventSink,
    MemoryEventSink,
    MemoryResourceSink,
    MemoryTaskTopics,
    PublishFailed,
    ResourceSink,
    TaskTopics,
)
from tidegate.gateway.settings import GatewaySettings, is_loopback

__all__ = [
    "SERVICE_MARKER",
    "Catalog",
    "EventSink",
    "Gateway",
    "GatewaySettings",
    "MemoryEventSink",
    "MemoryResourceSink",
    "MemoryTaskTopics",
    "PublishFailed",
    "ResourceSink",
    "TaskTopics",
    "VersionedResourceStore",
    "create_app",
    "create_kafka_app",
    "is_loopback",
    "service_record",
]


def __getattr__(name: str) -> object:
    # The Kafka wiring pulls in aiokafka; load it only when asked for.
    if name == "create_kafka_app":
        from tidegate.gateway.kafka import create_kafka_app

        return create_kafka_app
    raise AttributeError(f"module 'tidegate.gateway' has no attribute {name!r}")
