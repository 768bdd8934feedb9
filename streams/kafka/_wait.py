"""Starting without Kafka: wait until a broker answers, retrying with backoff.

Every long-running part (the gateway, the connector host, the worker) calls `wait_for_kafka` before
it builds its clients, instead of exiting with a traceback when the broker is down at start. Each
failed attempt logs one line; the backoff doubles up to `max_backoff`, which bounds the log rate.
`KafkaWait` holds what is being waited for, so a health endpoint can report not-ready meanwhile;
the gauge `tidegate_kafka_waiting` is 1 while a process waits (the connectors' and worker's signal).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tidegate.streams.kafka._config import confluent_config
from tidegate.streams.metrics import set_kafka_waiting
from tidegate.streams.settings import Settings

log = logging.getLogger("tidegate.kafka")

PROBE_TIMEOUT = 3.0


@dataclass(slots=True)
class KafkaWait:
    """Whether a part is still waiting for Kafka, and why (for a readiness endpoint)."""

    bootstrap: str
    waiting: bool = True
    attempts: int = 0
    last_error: str = ""

    def reason(self) -> str | None:
        """None once Kafka answered; otherwise a sentence for a not-ready report."""
        if not self.waiting:
            return None
        detail = f" (attempt {self.attempts}: {self.last_error})" if self.attempts else ""
        return f"waiting for Kafka at {self.bootstrap}{detail}"


def probe(settings: Settings, timeout: float = PROBE_TIMEOUT) -> None:
    """Ask the brokers for their metadata once; raises KafkaException when none answers in `timeout`."""
    admin = AdminClient(confluent_config(settings, **{"log_level": 0, "socket.timeout.ms": int(timeout * 1000)}))
    metadata = admin.list_topics(timeout=timeout)
    if not metadata.brokers:
        raise KafkaException("the cluster named no broker")


async def wait_for_kafka(
    settings: Settings,
    *,
    state: KafkaWait | None = None,
    what: str = "tidegate",
    first_backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> KafkaWait:
    """Return once a broker answers; until then retry, logging one line per failed attempt."""
    state = state or KafkaWait(settings.kafka_bootstrap)
    state.waiting = True
    set_kafka_waiting(True)
    backoff = first_backoff
    while True:
        try:
            await asyncio.to_thread(probe, settings)
        except KafkaException as error:
            state.attempts += 1
            reason = error.args[0] if error.args else error
            state.last_error = reason.str() if hasattr(reason, "str") else str(reason)
            log.warning("%s: Kafka at %s does not answer (attempt %d: %s); retrying in %.1f s", what,
                        settings.kafka_bootstrap, state.attempts, state.last_error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        if state.attempts:
            log.info("%s: Kafka at %s answers after %d failed attempt(s)", what, settings.kafka_bootstrap,
                     state.attempts)
        state.waiting = False
        set_kafka_waiting(False)
        return state
