"""The gateway's settings, from flags and `TIDEGATE_*` environment variables.

| variable | default | meaning |
|---|---|---|
| TIDEGATE_API_TOKEN | (none) | the `x-token` every `/api` request must carry (at least 16 characters) |
| TIDEGATE_GATEWAY_NO_TOKEN | false | local mode: no token needed (refused unless bound to loopback) |
| TIDEGATE_GATEWAY_HOST / _PORT | 127.0.0.1 / 8080 | where to listen |
| TIDEGATE_GATEWAY_MAX_BODY | 16 MiB | larger request bodies are refused with 413 |
| TIDEGATE_GATEWAY_MAX_EVENT | 512 KiB | larger events (encoded as their Kafka record) are refused with 413; at most 1 000 000 so that one always fits Kafka's default 1 MiB record |
| TIDEGATE_HISTORY_URL | sqlite:///$TIDEGATE_HOME/history.db | the history store (postgresql+psycopg://... for PostgreSQL) |
| TIDEGATE_GATEWAY_FOLLOW_AUDIT | true | run the audit follower in the gateway (feeds history and streams) |
"""

from __future__ import annotations

import ipaddress

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_NAMES = frozenset({"localhost"})
DEFAULT_MAX_EVENT = 512 * 1024
# Key, value and headers of an event's record stay under this; with Kafka's per-record overhead (under
# 100 bytes) a record then fits the producer's and the broker's default limit of 1 MiB.
MAX_EVENT_CEILING = 1_000_000
MIN_SECRET_LENGTH = 16
"""Shortest API or Alertmanager token accepted: a short one can be guessed (the Bridge login is throttled,
the API is not)."""


def short_secret(variable: str, length: int) -> str | None:
    """The refusal of a secret shorter than MIN_SECRET_LENGTH (naming the variable, never the value)."""
    if length >= MIN_SECRET_LENGTH:
        return None
    return (f"{variable} is {length} characters long; use at least {MIN_SECRET_LENGTH} random characters "
            "(for example: openssl rand -hex 24)")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GatewaySettings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the token it was given
    model_config = SettingsConfigDict(env_prefix="TIDEGATE_GATEWAY_", frozen=True, extra="ignore",
                                      hide_input_in_errors=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    api_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("TIDEGATE_API_TOKEN", "api_token"))
    no_token: bool = False
    max_body: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_event: int = Field(default=DEFAULT_MAX_EVENT, ge=1024, le=MAX_EVENT_CEILING)
    history_url: str | None = Field(default=None, validation_alias=AliasChoices("TIDEGATE_HISTORY_URL", "history_url"))
    follow_audit: bool = True

    @model_validator(mode="after")
    def _token_or_local(self) -> GatewaySettings:
        if self.api_token is not None and not self.api_token.get_secret_value():
            object.__setattr__(self, "api_token", None)
        if self.api_token is not None:
            refusal = short_secret("TIDEGATE_API_TOKEN", len(self.api_token.get_secret_value()))
            if refusal:
                raise ValueError(refusal)
        if self.api_token is None and not self.no_token:
            raise ValueError(
                "no API token: set TIDEGATE_API_TOKEN (clients send it as the x-token header), or run "
                "without one on this machine only with --no-token (TIDEGATE_GATEWAY_NO_TOKEN=true) on 127.0.0.1"
            )
        if self.api_token is None and not is_loopback(self.host):
            raise ValueError(
                f"--no-token serves the API without authentication and is allowed only on a loopback address, "
                f"not on {self.host!r}; set TIDEGATE_API_TOKEN to listen there"
            )
        return self
