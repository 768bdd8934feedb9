"""The Alertmanager bridge's settings, from `TIDEGATE_ALERTMANAGER_*` environment variables.

| variable | default | meaning |
|---|---|---|
| TIDEGATE_ALERTMANAGER_TOKEN | - | bearer token Alertmanager must send (`http_config.authorization`; at least 16 characters) |
| TIDEGATE_ALERTMANAGER_USER / _PASSWORD | - | or basic auth (`http_config.basic_auth`; a password of at least 16 characters); either kind is accepted |
| TIDEGATE_ALERTMANAGER_PROJECT_LABEL / _STAGE_LABEL / _SERVICE_LABEL | project / stage / service | alert labels naming the service |
| TIDEGATE_ALERTMANAGER_DEPLOYMENT_LABEL | deployment | alert label naming the deployment (primary, canary) |
| TIDEGATE_ALERTMANAGER_ENTITY_LABELS | ["pod_name", "instance"] | first one present is the problem's ImpactedEntity |
| TIDEGATE_ALERTMANAGER_TITLE_ANNOTATION | summary | problem title (else the alert name) |
| TIDEGATE_ALERTMANAGER_ROOT_CAUSE_ANNOTATION | root_cause | problem root cause (else the alert name) |
| TIDEGATE_ALERTMANAGER_PUBLISH_TIMEOUT | 10 | seconds to get a batch acknowledged by Kafka before answering 503 |
| TIDEGATE_ALERTMANAGER_MAX_EVENT | 512 KiB | an alert whose problem event is larger as a Kafka record is rejected (dead letter without its content) |

Secrets are `SecretStr`: they never show in a repr, a log line or an error message.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidegate.gateway.settings import DEFAULT_MAX_EVENT, MAX_EVENT_CEILING


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_ALERTMANAGER_", frozen=True, extra="ignore")

    token: SecretStr | None = None
    user: str | None = None
    password: SecretStr | None = None

    project_label: str = "project"
    stage_label: str = "stage"
    service_label: str = "service"
    deployment_label: str = "deployment"
    entity_labels: tuple[str, ...] = ("pod_name", "instance")
    title_annotation: str = "summary"
    root_cause_annotation: str = "root_cause"
    publish_timeout: float = Field(default=10.0, gt=0)
    max_event: int = Field(default=DEFAULT_MAX_EVENT, ge=1024, le=MAX_EVENT_CEILING)
    source: str = "tidegate/alertmanager"
