"""The API commands against the gateway app in process (httpx's transport is swapped, not the client):
configuration precedence, event building, tables and JSON, and the errors users see."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tidegate.bridge import install as install_bridge
from tidegate.cli import client as cli_client
from tidegate.cli.client import Connection, key_values, nested, read_config, write_config
from tidegate.cli.events_build import approval_finished, delivery_trigger, image_reference
from tidegate.cli.main import app
from tidegate.cli.watch_cmd import _verdict, parse_sse
from tidegate.gateway import (
    Catalog,
    Gateway,
    MemoryEventSink,
    MemoryResourceSink,
    VersionedResourceStore,
    create_app,
)
from tidegate.readside.history import HistoryStore
from tidegate.schemas.yamlreader import MAX_NODES

REPO = Path(__file__).resolve().parents[2]
TOKEN = "cli-token"


# --------------------------------------------------------------------- pure helpers


def test_configuration_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("TIDEGATE_ENDPOINT", raising=False)
    monkeypatch.delenv("TIDEGATE_API_TOKEN", raising=False)
    assert Connection.resolve() == Connection("http://127.0.0.1:8080", None)
    path = write_config("http://gw:1/", "from-file")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config() == {"endpoint": "http://gw:1/", "api_token": "from-file"}
    assert Connection.resolve() == Connection("http://gw:1", "from-file")
    monkeypatch.setenv("TIDEGATE_API_TOKEN", "from-env")
    assert Connection.resolve().token == "from-env"
    assert Connection.resolve("http://flag:2", "from-flag") == Connection("http://flag:2", "from-flag")


def test_the_config_file_is_read_by_the_bounded_yaml_reader(tmp_path: Path) -> None:
    # YAML 1.2 scalars: a token of digits with a leading zero stays the text it is (YAML 1.1 read
    # 0755 as the octal number 493, so the stored token changed).
    path = tmp_path / "config.yaml"
    path.write_text("endpoint: http://gw:1\napi_token: 0755\n")
    assert read_config(path) == {"endpoint": "http://gw:1", "api_token": "0755"}
    # An alias bomb is refused with the reader's limit, not expanded.
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\nendpoint: *a9\n")
    with pytest.raises(cli_client.CliError) as caught:
        read_config(path)
    assert caught.value.message.startswith(f"cannot read the config file {path}:5: the document has more than {MAX_NODES}")
    path.write_text("endpoint: [\n")
    with pytest.raises(cli_client.CliError) as caught:
        read_config(path)
    assert f"{path}:2: invalid YAML: " in caught.value.message
    assert caught.value.message.endswith("fix it or run `tidegate auth` again")


def test_values_and_labels() -> None:
    assert key_values(["a=1,b=2", "c=x=y"], "--labels") == {"a": "1", "b": "2", "c": "x=y"}
    assert nested({"image.pullPolicy": "Always", "replicas": "2"}) == {"image": {"pullPolicy": "Always"}, "replicas": "2"}
    with pytest.raises(cli_client.CliError, match="key=value"):
        key_values(["oops"], "--labels")


def test_delivery_and_approval_events() -> None:
    event = delivery_trigger("sockshop", "dev", "carts", image_reference("carts", "1.2"), labels={"build": "7"},
                             values={"replicas": "2"})
    assert event["type"] == "sh.keptn.event.dev.delivery.triggered"
    assert event["data"] == {"configurationChange": {"values": {"replicas": "2", "image": "carts:1.2"}},
                             "project": "sockshop", "stage": "dev", "service": "carts", "labels": {"build": "7"}}
    triggered = {"id": "a-1", "shkeptncontext": "ctx",
                 "data": {"project": "sockshop", "stage": "production", "service": "carts", "result": "pass"}}
    answer = approval_finished(triggered, approve=False)
    assert answer["triggeredid"] == "a-1" and answer["shkeptncontext"] == "ctx"
    assert answer["data"]["result"] == "fail" and answer["data"]["status"] == "succeeded"


def test_server_sent_events_parsing_and_verdict() -> None:
    lines = ["event: state", "id: 3", 'data: {"state": "finished",', 'data: "result": "pass"}', "", ": ping", "",
             "event: event", "data: {}", ""]
    # The last event id carries over to later messages without one, as the SSE standard says.
    assert list(parse_sse(lines)) == [("state", '{"state": "finished",\n"result": "pass"}', "3"), ("event", "{}", "3")]
    assert _verdict({"state": "finished", "result": "warning"}) == 0
    assert _verdict({"state": "finished", "result": "fail"}) == 1
    assert _verdict({"state": "aborted", "result": "pass"}) == 1


# --------------------------------------------------------------------- commands against the app


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.store = VersionedResourceStore()
        self.events = MemoryEventSink()
        self.history = HistoryStore(f"sqlite:///{tmp_path / 'h.db'}")
        gateway = Gateway(catalog=Catalog(self.store), events=self.events, resources=MemoryResourceSink(self.store),
                          history=self.history)
        self.app = create_app(gateway, extensions=(install_bridge,), api_token=TOKEN)
        self.runner = CliRunner()

    def invoke(self, *args: str) -> tuple[int, str, str]:
        result = self.runner.invoke(app, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    made = Harness(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("TIDEGATE_ENDPOINT", "http://testserver")
    monkeypatch.setenv("TIDEGATE_API_TOKEN", TOKEN)
    test_client = TestClient(made.app)
    original = cli_client.Api.__init__

    def in_process(self: cli_client.Api, connection: Connection, transport: httpx.BaseTransport | None = None) -> None:
        original(self, connection, transport=test_client._transport)  # the app, served in process

    monkeypatch.setattr(cli_client.Api, "__init__", in_process)
    yield made
    made.history.close()


def test_project_service_resources_and_reads(harness: Harness) -> None:
    code, out, err = harness.invoke("create", "project", "sockshop", "--shipyard",
                                    str(REPO / "examples" / "sockshop" / "shipyard.yaml"))
    assert code == 0, err
    assert "stages dev, staging, production" in out
    assert harness.invoke("create", "service", "carts", "--project", "sockshop")[0] == 0
    code, out, err = harness.invoke("add-resource", "--project", "sockshop", "--stage", "staging", "--service", "carts",
                                    "--resource", str(REPO / "examples" / "sockshop" / "slo.yaml"))
    assert code == 0, err
    assert "added slo.yaml to sockshop/staging/carts" in out
    assert harness.store.get("sockshop", "slo.yaml", "staging", "carts") is not None

    code, out, _ = harness.invoke("get", "projects")
    assert code == 0 and out.splitlines()[0].split() == ["PROJECT", "STAGES", "SHIPYARD", "VERSION"]
    assert "sockshop" in out and "dev, staging, production" in out
    code, out, _ = harness.invoke("get", "services", "--project", "sockshop", "-o", "json")
    assert [(s["serviceName"], s["stage"]) for s in json.loads(out)] == [
        ("carts", "dev"), ("carts", "staging"), ("carts", "production")]


def test_trigger_delivery_defaults_to_the_first_stage(harness: Harness) -> None:
    harness.invoke("create", "project", "sockshop", "--shipyard", str(REPO / "examples" / "sockshop" / "shipyard.yaml"))
    harness.invoke("create", "service", "carts", "--project", "sockshop")
    code, out, err = harness.invoke("trigger", "delivery", "--project", "sockshop", "--service", "carts",
                                    "--image", "carts:0.13.1", "--labels", "build=17", "-o", "json")
    assert code == 0, err
    context = json.loads(out)["keptnContext"]
    [event] = harness.events.events
    assert event.type == "sh.keptn.event.dev.delivery.triggered" and event.shkeptncontext == context
    assert event.data["labels"] == {"build": "17"}
    code, out, err = harness.invoke("trigger", "evaluation", "--project", "sockshop", "--stage", "staging",
                                    "--service", "carts", "--timeframe", "10m")
    assert code == 0, err
    assert harness.events.events[-1].data["evaluation"]["timeframe"] == "10m"


def test_errors_are_sentences_with_the_servers_reason(harness: Harness, tmp_path: Path) -> None:
    code, _, err = harness.invoke("create", "service", "carts", "--project", "nope")
    assert code == 1 and err.startswith("error: 404: project 'nope' does not exist")
    code, _, err = harness.invoke("create", "project", "x", "--shipyard", str(tmp_path / "missing.yaml"))
    assert code == 1 and "does not exist" in err
    broken = tmp_path / "shipyard.yaml"
    broken.write_text("apiVersion: spec.keptn.sh/0.2.2\nkind: Shipyard\nspec:\n  stages: []\n")
    code, _, err = harness.invoke("create", "project", "x", "--shipyard", str(broken))
    assert code == 1 and "400" in err and "stages" in err
    code, _, err = harness.invoke("approve", "--project", "x", "--stage", "dev")
    assert code == 1 and "404" in err


def test_a_wrong_token_says_how_to_fix_it(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEGATE_API_TOKEN", "wrong")
    code, _, err = harness.invoke("get", "projects")
    assert code == 1 and "401" in err and "tidegate auth" in err
    assert "wrong" not in err and TOKEN not in err


def test_send_event_validates_before_kafka(harness: Harness, tmp_path: Path) -> None:
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps({"type": "sh.keptn.event.dev.delivery.finished", "data": {"project": "p"}}))
    code, _, err = harness.invoke("send", "event", "--file", str(event_file), "--kafka", "127.0.0.1:1")
    assert code == 1 and "only `.triggered` sequence events" in err
    assert harness.events.events == []


def test_cli_does_not_leak_the_environment_token_into_output(harness: Harness) -> None:
    code, out, err = harness.invoke("auth", "--check")
    assert code == 0 and "authenticated at http://testserver" in out
    assert TOKEN not in out + err
    assert not Path(os.environ["XDG_CONFIG_HOME"], "tidegate", "config.yaml").exists()


def test_pause_resume_abort_reach_every_key_of_the_run(harness: Harness) -> None:
    from tidegate.readside.history import SeenEvent
    from tidegate.schemas.events import KeptnEvent

    harness.invoke("create", "project", "sockshop", "--shipyard", str(REPO / "examples" / "sockshop" / "shipyard.yaml"))
    context = "6f1c1f7e-3d0b-4a77-9a3e-0d8a2c1b5e10"
    harness.history.ingest([
        SeenEvent(KeptnEvent(type=f"sh.keptn.event.{stage}.delivery.triggered", shkeptncontext=context,
                             data={"project": "sockshop", "stage": stage, "service": "carts"}))
        for stage in ("dev", "staging")
    ])
    for verb in ("pause", "resume", "abort"):
        code, out, err = harness.invoke(verb, "sequence", "--project", "sockshop", "--keptn-context", context)
        assert code == 0, err
        assert f"{verb} sent" in out
    assert [(e.data["state"], e.data["stage"]) for e in harness.events.events] == [
        ("pause", "dev"), ("pause", "staging"), ("resume", "dev"), ("resume", "staging"),
        ("abort", "dev"), ("abort", "staging")]
    code, _, err = harness.invoke("abort", "sequence", "--project", "sockshop", "--keptn-context", context,
                                  "--stage", "qa")
    assert code == 1 and "'qa'" in err
