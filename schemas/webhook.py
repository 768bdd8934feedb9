"""webhook.yaml (`kind: WebhookConfig`): HTTP calls made for Keptn events (reference §6.5).

    apiVersion: webhookconfig.keptn.sh/v1beta1
    kind: WebhookConfig
    metadata: {name: webhook-configuration}
    spec:
      webhooks:
        - type: sh.keptn.event.evaluation.triggered
          subscriptionID: 0a1b...
          sendFinished: true
          envFrom: [{name: token, secretRef: {name: slack, key: token}}]
          requests:
            - url: https://hooks.slack.com/services/{{.env.token}}
              method: POST
              headers: [{key: Content-Type, value: application/json}]
              payload: '{"text": "{{.data.project}}: {{.data.evaluation.score}}"}'

`v1alpha1` wrote each request as one curl command line; `v1beta1` as url/method/headers/payload.
Payloads are Go templates and are kept as written; secrets are referenced, never stored here.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from tidegate.schemas.errors import invalid_fields
from tidegate.schemas.nulls import empty_list, null_is_empty_list

_CURL_VERSION = "webhookconfig.keptn.sh/v1alpha1"

_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True)


class SecretRef(BaseModel):
    model_config = _CONFIG

    name: str
    key: str


class EnvFrom(BaseModel):
    """Makes a secret's key available to templates as `{{.env.<name>}}`."""

    model_config = _CONFIG

    name: str
    secretRef: SecretRef


class Header(BaseModel):
    model_config = _CONFIG

    key: str
    value: str


class WebhookRequest(BaseModel):
    model_config = _CONFIG

    url: str
    method: str
    headers: list[Header] = Field(default_factory=empty_list)
    payload: str = ""
    options: str = ""

    _null_is_empty = field_validator("headers", mode="before")(null_is_empty_list)


def _request_form(value: Any) -> str:
    return "request" if isinstance(value, dict | WebhookRequest) else "curl"


Request = Annotated[
    Annotated[str, Tag("curl")] | Annotated[WebhookRequest, Tag("request")],
    Discriminator(_request_form),
]
"""A curl command line (v1alpha1) or a structured request (v1beta1)."""


class Webhook(BaseModel):
    model_config = _CONFIG

    type: str = Field(min_length=1)
    """The event type this webhook answers, e.g. sh.keptn.event.evaluation.triggered."""
    subscriptionID: str = Field(min_length=1)
    requests: list[Request] = Field(min_length=1)
    sendFinished: bool = False
    sendStarted: bool = True
    envFrom: list[EnvFrom] = Field(default_factory=empty_list)

    _null_is_empty = field_validator("envFrom", mode="before")(null_is_empty_list)


class WebhookSpec(BaseModel):
    model_config = _CONFIG

    webhooks: list[Webhook] = Field(min_length=1)


class Metadata(BaseModel):
    model_config = _CONFIG

    name: str | None = None


class WebhookConfig(BaseModel):
    model_config = _CONFIG

    apiVersion: Literal["webhookconfig.keptn.sh/v1alpha1", "webhookconfig.keptn.sh/v1beta1"]
    kind: Literal["WebhookConfig"] = "WebhookConfig"
    metadata: Metadata = Field(default_factory=Metadata)
    spec: WebhookSpec

    @model_validator(mode="after")
    def _request_form_of_version(self) -> "WebhookConfig":
        wanted, wrong_kind, advice = (
            (str, "a url/method mapping", "write the request as one curl command line")
            if self.apiVersion == _CURL_VERSION
            else (WebhookRequest, "a curl command line", "write the request with url, method, headers, payload")
        )
        wrong = [
            (("spec", "webhooks", w, "requests", r),
             f"{self.apiVersion} does not take {wrong_kind}: {advice}")
            for w, webhook in enumerate(self.spec.webhooks)
            for r, request in enumerate(webhook.requests)
            if not isinstance(request, wanted)
        ]
        if wrong:
            raise invalid_fields("WebhookConfig", wrong)
        return self

    def webhooks_for(self, event_type: str) -> list[Webhook]:
        return [webhook for webhook in self.spec.webhooks if webhook.type == event_type]
