"""Moved to `tidegate.streams.kafka` (the one Kafka layer); kept so existing imports keep working."""

from tidegate.streams.kafka._publish import (
    DELIVERY_TIMEOUT,
    AsyncEventPublisher,
    Delivery,
    EventPublisher,
    PublishError,
    async_producer,
)

__all__ = ["DELIVERY_TIMEOUT", "AsyncEventPublisher", "Delivery", "EventPublisher", "PublishError", "async_producer"]
