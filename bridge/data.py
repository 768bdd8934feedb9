"""Everything the Bridge reads, in one place: the gateway's configuration catalog and history store.

Each method is a blocking read (SQLAlchemy); the routes call them in a worker thread. The results are
the Bridge's own records and view-model inputs, so the page code never touches a store.
"""

from __future__ import annotations

from dataclasses import dataclass

from tidegate.gateway.context import Gateway
from tidegate.readside.history.sequences import SequenceView
from tidegate.readside.history.store import EventFilter, SequenceFilter

from .evaluations import EVALUATION_FINISHED, EVALUATION_INVALIDATED, Evaluation, read_evaluation
from .overview import REMEDIATION, ProjectInfo, StageInfo
from .records import EventRecord, TimelineItem, timeline_items
from .remediations import RemediationRun, remediation_run

APPROVAL_TRIGGERED = "sh.keptn.event.approval.triggered"
# How many sequences the project pages look at: enough for weeks of a busy project, bounded per request.
SEQUENCE_WINDOW = 300
EVALUATION_WINDOW = 200


@dataclass
class BridgeData:
    gateway: Gateway

    # ------------------------------------------------------------------ configuration

    def project_names(self) -> list[str]:
        return self.gateway.catalog.projects()

    def project(self, name: str) -> ProjectInfo | None:
        catalog = self.gateway.catalog
        shipyard = catalog.shipyard(name)
        if shipyard is None:
            return None
        stages = []
        services: dict[str, list[str]] = {}
        deployed: dict[tuple[str, str], str | None] = {}
        for stage in shipyard.spec.stages:
            parents = list(dict.fromkeys(t.stage for s in stage.sequences for t in s.triggeredOn
                                         if t.stage != stage.name))
            stages.append(StageInfo(stage.name, parents, [s.name for s in stage.sequences]))
            services[stage.name] = catalog.services(name, stage.name)
            for service in services[stage.name]:
                deployed[(stage.name, service)] = self.gateway.history.deployed_image(name, stage.name, service)
        return ProjectInfo(name, stages, services, deployed)

    def projects(self) -> list[ProjectInfo]:
        return [info for info in (self.project(name) for name in self.project_names()) if info is not None]

    # ------------------------------------------------------------------ sequences

    def sequences(self, project: str, *, limit: int = SEQUENCE_WINDOW, name: str | None = None,
                  state: str | None = None) -> list[SequenceView]:
        """The project's sequences, newest first."""
        page = self.gateway.history.sequences(project, SequenceFilter(name=name or None, state=state or None),
                                              page_size=limit)
        return page.items

    def sequence_total(self, project: str) -> int:
        return self.gateway.history.sequences(project, page_size=1).total_count

    def sequence(self, keptn_context: str) -> SequenceView | None:
        return self.gateway.history.sequence(keptn_context)

    def timeline(self, keptn_context: str) -> list[TimelineItem]:
        return timeline_items(self.gateway.history.timeline(keptn_context))

    def open_approvals(self, project: str) -> list[EventRecord]:
        return [EventRecord.of(body) for body in self.gateway.history.open_triggered(APPROVAL_TRIGGERED, project=project)]

    def open_approval(self, project: str, triggered_id: str) -> dict[str, object] | None:
        found = self.gateway.history.open_triggered(APPROVAL_TRIGGERED, project=project, event_id=triggered_id)
        return found[0] if found else None

    # ------------------------------------------------------------------ evaluations

    def evaluations(self, project: str, *, stage: str | None = None, service: str | None = None,
                    limit: int = EVALUATION_WINDOW) -> list[Evaluation]:
        """Evaluations newest first, invalidated ones included and marked."""
        history = self.gateway.history
        everything = history.evaluations(project, stage=stage, service=service, include_invalidated=True,
                                         page_size=limit).items
        valid = {body.get("id") for body in history.evaluations(project, stage=stage, service=service,
                                                                 page_size=limit).items}
        return [read_evaluation(body, invalidated=body.get("id") not in valid) for body in everything]

    def evaluation(self, project: str, event_id: str) -> Evaluation | None:
        body = self.gateway.history.event(event_id)
        if body is None or body.get("type") != EVALUATION_FINISHED:
            return None
        data = body.get("data")
        if not isinstance(data, dict) or data.get("project") != project:
            return None
        triggered_id = body.get("triggeredid")
        invalidated = bool(triggered_id) and self.gateway.history.events(
            EventFilter(type=EVALUATION_INVALIDATED, triggered_id=str(triggered_id)), page_size=1
        ).total_count > 0
        return read_evaluation(body, invalidated=invalidated)

    def invalidation_reason(self, evaluation: Evaluation) -> str | None:
        if not evaluation.triggered_id:
            return None
        page = self.gateway.history.events(
            EventFilter(type=EVALUATION_INVALIDATED, triggered_id=evaluation.triggered_id), page_size=1
        )
        if not page.items:
            return None
        record = EventRecord.of(page.items[0])
        block = record.data.get("evaluation")
        reason = block.get("reason") if isinstance(block, dict) else None
        return reason if isinstance(reason, str) and reason else record.message

    # ------------------------------------------------------------------ remediations

    def remediations(self, project: str, *, limit: int = 30) -> list[RemediationRun]:
        views = self.sequences(project, limit=limit, name=REMEDIATION)
        return [remediation_run(view, self.timeline(view.keptn_context)) for view in views]

    # ------------------------------------------------------------------ change detection

    def version(self, project: str | None, keptn_context: str | None = None) -> str:
        """A fingerprint of what the pages of `project` (None: of every project) show: it changes when a
        new event is stored."""
        page = self.gateway.history.events(EventFilter(project=project or None), page_size=1)
        newest = page.items[0].get("id") if page.items else ""
        marker = f"{page.total_count}:{newest}"
        if keptn_context:
            marker += f":{len(self.gateway.history.timeline(keptn_context))}"
        return marker
