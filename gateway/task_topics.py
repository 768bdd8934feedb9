"""The task topics of an accepted shipyard, created on Kafka (the gateway's `TaskTopics`).

A shipyard may name any task; its `tasks.<task>` topic must exist before the sequencer sends the
first `.triggered` event there. The gateway asks for them when a shipyard is accepted (project
created or updated, shipyard.yaml uploaded) through the one provisioner (`provision_topics`), and
reports a problem to the client as a warning: the shipyard is valid either way.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidegate.streams.kafka import ProvisionError, provision_topics
from tidegate.streams.settings import Settings
from tidegate.streams.topics import TopicRegistry, TopicSpec


class KafkaTaskTopics:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = TopicRegistry.from_settings(settings)

    def ensure(self, tasks: Sequence[str]) -> list[str]:
        problems: list[str] = []
        specs: list[TopicSpec] = []
        for task in tasks:
            try:
                specs.append(self.registry.spec(self.registry.task(task)))
            except ValueError as error:
                problems.append(f"task {task!r} cannot have a topic ({error}); rename the task")
        if not specs:
            return problems
        try:
            report = provision_topics(self.settings, specs)
        except ProvisionError as error:
            return [*problems, f"{error}; create the topics with `tidegate topics create --task NAME`"]
        return [*problems, *report.problems]
