"""What the API commands share: where the gateway is, the token, talking to it, and publishing events.

Configuration, first found wins: flags (`--endpoint`, `--api-token`), then the environment
(`TIDEGATE_ENDPOINT`, `TIDEGATE_API_TOKEN`), then the config file `tidegate auth` writes
(`$XDG_CONFIG_HOME/tidegate/config.yaml`, i.e. `~/.config/tidegate/config.yaml`), then
`http://127.0.0.1:8080` without a token. The token is never printed.

Events reach Kafka through the gateway (`POST /api/v1/event`), or straight to `<prefix>events` with
`--kafka BOOTSTRAP` (CI without a gateway): then the same Keptn validation rules run here first, and
the event is keyed and partitioned (murmur2) exactly as the gateway would.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import yaml

from tidegate.gateway.rules import DEFAULT_SOURCE, check_event, keptn_context_for
from tidegate.schemas.errors import FileError, TidegateError
from tidegate.schemas.yamlreader import load_yaml

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
CLI_SOURCE = "tidegate-cli"

KafkaOption = Annotated[
    str | None,
    typer.Option("--kafka", help="publish straight to Kafka at these bootstrap servers instead of the gateway"),
]


class CliError(TidegateError):
    """A failure to show the user as `error: <message>` (exit code 1 unless given)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tidegate" / "config.yaml"


def read_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"), path)  # bounded, YAML 1.2 (tokens stay text)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read the config file {path}: {error}; fix it or run `tidegate auth` again") from None
    except FileError as error:  # str: "<path>:<line>: <what is wrong>"
        raise CliError(f"cannot read the config file {error}; fix it or run `tidegate auth` again") from None
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if v is not None}


def write_config(endpoint: str, token: str | None, path: Path | None = None) -> Path:
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    content: dict[str, str] = {"endpoint": endpoint}
    if token:
        content["api_token"] = token
    # Written 0600 from the start: the file holds a secret.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        yaml.safe_dump(content, handle)
    return path


@dataclass(frozen=True)
class Connection:
    endpoint: str
    token: str | None

    @classmethod
    def resolve(cls, endpoint: str | None = None, token: str | None = None) -> Connection:
        stored = read_config() if not (endpoint and token) else {}
        chosen_endpoint = endpoint or os.environ.get("TIDEGATE_ENDPOINT") or stored.get("endpoint") or DEFAULT_ENDPOINT
        chosen_token = token or os.environ.get("TIDEGATE_API_TOKEN") or stored.get("api_token") or None
        return cls(chosen_endpoint.rstrip("/"), chosen_token)

    def headers(self) -> dict[str, str]:
        return {"x-token": self.token} if self.token else {}


class Api:
    """Calls to the gateway; every failure becomes a CliError with the server's own message."""

    def __init__(self, connection: Connection, transport: httpx.BaseTransport | None = None) -> None:
        self.connection = connection
        self._client = httpx.Client(
            base_url=connection.endpoint, headers=connection.headers(), timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None) -> Any:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, json=json_body, params=clean)
        except httpx.HTTPError as error:
            raise CliError(
                f"cannot reach the gateway at {self.connection.endpoint} ({error}); is `tidegate gateway` running? "
                "(set --endpoint or TIDEGATE_ENDPOINT)"
            ) from None
        if response.status_code >= 400:
            raise CliError(_server_message(response))
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise CliError(f"the gateway answered {method} {path} with something that is not JSON") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json_body=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json_body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message = body["message"]
    else:
        message = response.text.strip()[:300] or response.reason_phrase
    if response.status_code == 401:
        message += " (run `tidegate auth --endpoint URL --api-token TOKEN`, or set TIDEGATE_API_TOKEN)"
    return f"{response.status_code}: {message}"


# --------------------------------------------------------------------- publishing events


def publish(body: dict[str, Any], *, endpoint: str | None, token: str | None, kafka: str | None) -> str:
    """Send an event body (Keptn's KeptnContextExtendedCE) and return its keptnContext."""
    if kafka:
        return publish_to_kafka(body, kafka)
    with Api(Connection.resolve(endpoint, token)) as api:
        answer = api.post("/api/v1/event", body)
    context = answer.get("keptnContext") if isinstance(answer, dict) else None
    if not isinstance(context, str):
        raise CliError("the gateway accepted the event but did not say its keptnContext")
    return context


def publish_to_kafka(body: dict[str, Any], bootstrap: str) -> str:
    """Validate as the gateway does, then publish to `<prefix>events` (prefix from TIDEGATE_TOPIC_PREFIX)."""
    from tidegate.schemas.events import KeptnEvent
    from tidegate.streams.kafka import EventPublisher, PublishError
    from tidegate.streams.settings import Settings
    from tidegate.streams.topics import TopicRegistry

    problems = check_event(body)
    if problems:
        raise CliError("the event is invalid: " + "; ".join(str(p) for p in problems))
    context = keptn_context_for(body.get("shkeptncontext"))
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "time": datetime.now(UTC),
        "type": body["type"],
        "source": body.get("source") or DEFAULT_SOURCE,
        "shkeptncontext": context,
        "data": body["data"],
    }
    for name in ("triggeredid", "gitcommitid"):
        if body.get(name):
            fields[name] = body[name]
    settings = Settings(kafka_bootstrap=bootstrap)
    topic = TopicRegistry.from_settings(settings).events
    try:
        with EventPublisher(settings) as publisher:
            publisher.publish(topic, KeptnEvent.model_validate(fields))
    except PublishError as error:
        raise CliError(str(error)) from None
    return context


def load_json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{what} file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read {what} file {str(path)!r}: {error}") from None
    except json.JSONDecodeError as error:
        raise CliError(f"{what} file {str(path)!r} is not valid JSON at line {error.lineno}, column {error.colno}: "
                       f"{error.msg}") from None


def read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"{what} file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise CliError(f"{what} {str(path)!r} is a directory; give a file") from None
    except OSError as error:
        raise CliError(f"cannot read {what} file {str(path)!r}: {error.strerror}") from None


def run(action: Any) -> Any:
    """Run a command body, turning CliError into `error: ...` on stderr and its exit code."""
    try:
        return action()
    except CliError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(error.exit_code) from None


def key_values(items: list[str] | None, option: str) -> dict[str, str]:
    """`k=v` items (each may hold several, comma-separated, as Keptn's --labels) into a dict."""
    found: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise CliError(f"{option} {part!r} is not key=value")
            found[name.strip()] = value.strip()
    return found


def nested(pairs: dict[str, str]) -> dict[str, Any]:
    """`{"a.b": "1"}` -> `{"a": {"b": "1"}}` (Keptn's --data and helm-style --values)."""
    out: dict[str, Any] = {}
    for dotted, value in pairs.items():
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = value
    return out
