"""Request and response bodies of the API, as they appear in the OpenAPI description.

Names and shapes follow Keptn's swagger files (api, shipyard-controller, resource-service,
mongodb-datastore) so that Keptn clients keep working; unknown fields in requests are kept or ignored
as Keptn did.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class KeptnContextOut(BaseModel):
    keptnContext: str


class EventIn(BaseModel):
    """Keptn's KeptnContextExtendedCE: `type`, `source` and `data` matter; the server sets id and time."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(default=None, examples=["sh.keptn.event.dev.delivery.triggered"])
    source: str | None = None
    data: dict[str, Any] | None = None
    specversion: str | None = None
    id: str | None = None
    time: str | None = None
    contenttype: str | None = None
    datacontenttype: str | None = None
    shkeptncontext: str | None = None
    triggeredid: str | None = None
    gitcommitid: str | None = None
    shkeptnspecversion: str | None = None


class Message(BaseModel):
    message: str
    warnings: list[str] | None = Field(default=None, description="what was done but needs attention (Tidegate)")


class Metadata(BaseModel):
    namespace: str
    keptnlabel: str
    keptnversion: str
    shipyardversion: str
    bridgeversion: str
    keptnservices: dict[str, Any]
    automaticprovisioning: bool


class CreateProject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(description="project name: lower-case letters, digits and dashes")
    shipyard: str = Field(description="the shipyard file, base64-encoded")
    gitCredentials: dict[str, Any] | None = None


class UpdateProject(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    shipyard: str | None = Field(default=None, description="a new shipyard, base64-encoded")
    gitCredentials: dict[str, Any] | None = None


class CreateService(BaseModel):
    model_config = ConfigDict(extra="ignore")

    serviceName: str


class ExpandedService(BaseModel):
    serviceName: str
    deployedImage: str | None = Field(default=None, description="the image of the last successful deployment.finished")
    creationDate: str | None = Field(default=None, description="Unix nanoseconds, as a decimal string (Keptn's form)")


class ExpandedStage(BaseModel):
    stageName: str
    parentStages: list[str]
    services: list[ExpandedService]


class ExpandedProject(BaseModel):
    projectName: str
    creationDate: str | None = Field(default=None, description="Unix nanoseconds, as a decimal string (Keptn's form)")
    shipyard: str
    shipyardVersion: str
    stages: list[ExpandedStage]


class Projects(BaseModel):
    projects: list[ExpandedProject]
    nextPageKey: str | None = None
    totalCount: int
    pageSize: int


class Stages(BaseModel):
    stages: list[ExpandedStage]
    nextPageKey: str | None = None
    totalCount: int
    pageSize: int


class Services(BaseModel):
    services: list[ExpandedService]
    nextPageKey: str | None = None
    totalCount: int
    pageSize: int


class EvaluationRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    start: str | None = Field(default=None, examples=["2024-05-01T12:00:00.000Z"])
    end: str | None = None
    timeframe: str | None = Field(default=None, examples=["5m"])
    labels: dict[str, str] | None = None
    gitcommitid: str | None = None


class SequenceControl(BaseModel):
    state: Literal["pause", "resume", "abort"]
    stage: str | None = None


class SequenceStates(BaseModel):
    states: list[dict[str, Any]]
    nextPageKey: str | None = None
    totalCount: int
    pageSize: int


class EventList(BaseModel):
    events: list[dict[str, Any]]
    nextPageKey: str | None = None
    totalCount: int = 0
    pageSize: int = 0


class ResourceIn(BaseModel):
    resourceURI: str = Field(description="the file's path, e.g. slo.yaml or helm/carts.tgz")
    resourceContent: str = Field(description="the file's content, base64-encoded")


class ResourcesIn(BaseModel):
    resources: list[ResourceIn] = Field(min_length=1)


class ResourceContentIn(BaseModel):
    resourceContent: str


class ResourceMetadata(BaseModel):
    branch: str
    version: str
    upstreamURL: str = ""


class ResourceOut(BaseModel):
    resourceURI: str
    resourceContent: str | None = None
    metadata: ResourceMetadata


class Resources(BaseModel):
    resources: list[ResourceOut]
    nextPageKey: str | None = None
    totalCount: int
    pageSize: int


class CommitOut(BaseModel):
    commitID: str
    metadata: ResourceMetadata | None = None
    warnings: list[str] | None = Field(default=None, description="what was done but needs attention (Tidegate)")
