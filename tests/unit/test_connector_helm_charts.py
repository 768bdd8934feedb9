"""The helm connector's pure parts: strategies, scaling values, values merging, URIs, the generated chart, and
the bounded reading of values and manifests (alias bombs refused before Helm runs)."""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tidegate.connectors.helm import HelmConnector, scaling_delta, strategy_of
from tidegate.connectors.helm.charts import (
    MAX_CHART_BYTES,
    MAX_FILE_BYTES,
    MAX_FILES,
    Chart,
    ChartError,
    PublicHost,
    generated_chart,
    generated_objects,
    merge_values,
    parse_manifest,
    primary_objects,
    read_chart,
    scale_manifest,
    service_uris,
    write_chart,
)
from tidegate.connectors.helm.driver import HelmCli
from tidegate.connectors.runtime import TaskContext, run_program
from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.yamlreader import MAX_DEPTH, MAX_NODES
from tidegate.schemas.yamlreader import MAX_FILE_BYTES as MAX_FILE_BYTES_YAML
from tidegate.streams.resources import Resource, ResourceStore
from tidegate.streams.settings import Settings

MANIFEST = [
    {"kind": "Deployment", "metadata": {"name": "carts", "labels": {"app": "carts"}},
     "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "carts"}},
              "template": {"metadata": {"labels": {"app": "carts", "tier": "web"}}}}},
    {"kind": "Service", "metadata": {"name": "carts"},
     "spec": {"clusterIP": "10.0.0.1", "selector": {"app": "carts"},
              "ports": [{"port": 9100}, {"port": 8080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}},
]


@pytest.mark.parametrize(("raw", "expected"), [
    ("direct", "direct"), ("blue_green_service", "duplicate"), ("duplicate", "duplicate"),
    ("user_managed", "user_managed"), (None, "direct"), ("rolling", None),
])
def test_strategies_are_normalised_as_go_utils_does(raw: str | None, expected: str | None) -> None:
    assert strategy_of({"deployment": {"deploymentstrategy": raw}}) == expected


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("-2", -2), (" 3 ", 3), (1, None), ("one", None), (None, None)])
def test_scaling_value_must_be_a_string_integer(value: object, expected: int | None) -> None:
    assert scaling_delta(value) == expected


def test_values_are_deep_merged_and_the_rest_of_the_chart_is_kept() -> None:
    archive = write_chart(Chart({"c/Chart.yaml": b"name: c", "c/values.yaml": b"image: a\nres: {cpu: 1, mem: 2}\n",
                                 "c/templates/x.yaml": b"kind: X"}))
    merged = read_chart(merge_values(archive, {"image": "b", "res": {"mem": 3}}))
    assert yaml.safe_load(merged.file("values.yaml") or b"") == {"image": "b", "res": {"cpu": 1, "mem": 3}}
    assert merged.file("templates/x.yaml") == b"kind: X"
    assert merge_values(archive, {"image": "b"}) == merge_values(archive, {"image": "b"}), "archives must be stable"


def test_a_broken_archive_says_what_is_wrong() -> None:
    with pytest.raises(ChartError, match="not a gzipped tar"):
        read_chart(b"not a tarball", "helm/carts.tgz")
    with pytest.raises(ChartError, match=r"no Chart\.yaml"):
        read_chart(write_chart(Chart({"c/values.yaml": b""})))


def test_uris_use_the_lowest_tcp_port_and_the_hostname_template() -> None:
    local, public = service_uris(MANIFEST, "carts", "sockshop", "dev", PublicHost())
    assert local == ["http://carts.sockshop-dev:8080"]
    assert public == ["http://carts.sockshop-dev.svc.cluster.local:80"]
    custom = PublicHost("https", "example.com", "443", "${INGRESS_PROTOCOL}://${SERVICE}-${STAGE}.${INGRESS_HOSTNAME_SUFFIX}")
    assert service_uris(MANIFEST, "carts", "sockshop", "dev", custom)[1] == ["https://carts-dev.example.com"]


def test_primary_objects_never_overlap_the_canary() -> None:
    objects = primary_objects(MANIFEST, "carts")
    deployment, primary_service, canary_service = objects
    assert deployment["metadata"]["name"] == "carts-primary"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "carts-primary"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "carts-primary", "tier": "web"}
    assert primary_service["metadata"]["name"] == "carts-primary"
    assert primary_service["spec"]["selector"] == {"app": "carts-primary"}
    assert canary_service["spec"]["selector"] == {"app": "carts"}
    assert "clusterIP" not in canary_service["spec"]
    assert MANIFEST[0]["metadata"]["name"] == "carts", "the input must not be changed"
    with pytest.raises(ChartError, match="no Service"):
        primary_objects(MANIFEST[:1], "carts")


def test_generated_chart_round_trips_and_scales() -> None:
    objects = primary_objects(MANIFEST, "carts")
    archive = generated_chart(objects, "carts")
    assert read_chart(archive).root == "carts-generated"
    assert generated_objects(archive, "g") == objects
    scaled, counts = scale_manifest(objects, 3)
    assert counts == [5]
    assert scale_manifest(objects, -9)[1] == [0]
    assert objects[0]["spec"]["replicas"] == 2
    assert scaled[1] == objects[1]


# --- archives are unpacked within Helm's bounds (issue 16) --------------------------------------------


def _gzipped_tar(*members: tuple[str, int], declared: int | None = None) -> bytes:
    """A chart archive of zero-filled files (they compress to almost nothing: a gzip bomb)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1) as packed:
        for name, size in members:
            info = tarfile.TarInfo(name)
            info.size = declared if declared is not None else size
            packed.write(info.tobuf(format=tarfile.PAX_FORMAT))
            packed.write(bytes(size))
            packed.write(bytes(-size % tarfile.BLOCKSIZE))
        packed.write(bytes(2 * tarfile.BLOCKSIZE))
    return buffer.getvalue()


def test_a_file_larger_than_helm_allows_is_refused_from_its_header() -> None:
    bomb = _gzipped_tar(("carts/Chart.yaml", 1024), declared=2**40)
    with pytest.raises(ChartError, match=r"carts/Chart\.yaml has 1099511627776 bytes, over the limit of 5 MiB"):
        read_chart(bomb, "helm/carts.tgz")


def test_a_gzip_bomb_is_refused_at_the_unpacked_limit() -> None:
    bomb = _gzipped_tar(("carts/Chart.yaml", 20), *((f"carts/f{i}", MAX_FILE_BYTES) for i in range(22)))
    assert len(bomb) < MAX_CHART_BYTES // 100
    with pytest.raises(ChartError, match=r"helm/carts\.tgz unpacks to more than 100 MiB"):
        read_chart(bomb, "helm/carts.tgz")


def test_too_many_files_are_refused() -> None:
    many = _gzipped_tar(*((f"carts/f{i}", 0) for i in range(MAX_FILES + 1)))
    with pytest.raises(ChartError, match=f"more than {MAX_FILES} files"):
        read_chart(many, "helm/carts.tgz")


def _alias_bomb(last: str = "") -> bytes:
    """~450 bytes standing for 8**10 values once the aliases are expanded (a billion laughs)."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 8) + "]" for i in range(1, 10)]
    return ("\n".join(lines) + "\n" + last).encode()


def test_a_billion_laughs_values_file_is_refused_with_the_limit() -> None:
    # yaml.safe_load took it (the aliases share one list) and handed 8**10 values on to the merge and
    # to Helm; the bounded reader counts the expanded values first and refuses at line 5.
    archive = write_chart(Chart({"c/Chart.yaml": b"name: c", "c/values.yaml": _alias_bomb("image: a\n")}))
    with pytest.raises(ChartError) as refused:
        merge_values(archive, {"image": "b"}, "helm/carts.tgz")
    message = str(refused.value)
    assert message.startswith("the chart's values cannot be used: helm/carts.tgz: values.yaml:5: ")
    assert f"more than {MAX_NODES} values once its aliases (*name) are expanded" in message


def test_a_rendered_manifest_is_read_within_the_limits_and_as_helm_reads_it() -> None:
    manifest = yaml.safe_dump_all(MANIFEST).encode()
    assert parse_manifest(manifest.decode()) == MANIFEST
    with pytest.raises(ChartError, match=f"the rendered manifest cannot be used: .*more than {MAX_NODES} values"):
        parse_manifest(_alias_bomb("---\nkind: Service\n").decode())
    with pytest.raises(ChartError, match=f"nests deeper than {MAX_DEPTH} levels"):
        parse_manifest("kind: Deployment\nspec: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n")
    bomb_chart = write_chart(Chart({"c-generated/Chart.yaml": b"name: c", "c-generated/manifest.yaml": _alias_bomb()}))
    with pytest.raises(ChartError, match=r"helm/carts-generated\.tgz: manifest\.yaml cannot be used"):
        generated_objects(bomb_chart, "helm/carts-generated.tgz")


def test_merging_values_keeps_what_helm_reads_in_yaml_1_1() -> None:
    # Helm reads values as YAML 1.1: `off` is false and 0755 is 493. The merged values.yaml must say
    # the same, or a switch written `enabled: off` would turn into the (true) text "off".
    archive = write_chart(Chart({"c/Chart.yaml": b"name: c",
                                 "c/values.yaml": b"enabled: off\nmode: 0755\nimage: a\n"}))
    merged = read_chart(merge_values(archive, {"image": "b"})).file("values.yaml") or b""
    assert yaml.safe_load(merged) == {"enabled": False, "mode": 0o755, "image": "b"}


async def test_the_connector_ends_a_deployment_of_a_bomb_chart_errored_before_helm_runs() -> None:
    calls: list[str] = []

    class Driver:
        async def template(self, *args: Any) -> str:
            calls.append("template")
            return ""

        async def upgrade(self, *args: Any, **kwargs: Any) -> None:
            calls.append("upgrade")

    store = ResourceStore()
    store.put(Resource.new("sockshop", "helm/carts.tgz", write_chart(Chart({
        "carts/Chart.yaml": b"name: carts", "carts/values.yaml": _alias_bomb("image: a\n")})), "dev", "carts"))
    event = KeptnEvent(type="sh.keptn.event.deployment.triggered", shkeptncontext="ctx", data={
        "project": "sockshop", "stage": "dev", "service": "carts", "deployment": {"deploymentstrategy": "direct"},
        "configurationChange": {"values": {"image": "b"}}})
    ctx = TaskContext(event=event, task="deployment", connector="helm", resources=store, settings=Settings(), timeout=30)
    outcome = await HelmConnector(driver_factory=lambda _ctx: Driver()).run(ctx)  # type: ignore[arg-type,return-value]
    assert outcome.status.value == "errored"
    assert "values.yaml:5:" in outcome.message and f"more than {MAX_NODES} values" in outcome.message
    assert calls == []


def _fake_helm(tmp_path: Path, services: int) -> Path:
    """A `helm` whose `template` prints `services` Services (about 150 bytes each), like a big chart's manifest."""
    script = tmp_path / "helm"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"for i in range({services}):\n"
        "    print(f'---\\n# Source: big/templates/s{i}.yaml\\napiVersion: v1\\nkind: Service\\n'\n"
        "          f'metadata: {{name: svc-{i}}}\\nspec: {{ports: [{{port: {i % 60000 + 1}}}]}}')\n")
    script.chmod(0o755)
    return script


async def test_a_rendered_manifest_is_read_whole_past_the_output_limit_of_programs(tmp_path: Path) -> None:
    # helm template's output went through the runtime's default 64 KiB output bound: a longer manifest
    # lost its middle ("...bytes of output dropped...") and was read as broken YAML or fewer objects.
    helm = HelmCli(run_program, _fake_helm(tmp_path, 1000))  # about 130 KiB, 15,000 values
    manifest = parse_manifest(await helm.template("r", tmp_path / "chart.tgz", "ns", []))
    assert len(manifest) == 1000 and manifest[-1]["metadata"]["name"] == "svc-999"
    # Past what the YAML reader takes, it is refused with the limit, never read cut.
    huge = HelmCli(run_program, _fake_helm(tmp_path, 20_000))  # about 2.7 MiB
    with pytest.raises(ChartError, match=f"the rendered manifest cannot be used: .*larger than {MAX_FILE_BYTES_YAML}"):
        parse_manifest(await huge.template("r", tmp_path / "chart.tgz", "ns", []))
