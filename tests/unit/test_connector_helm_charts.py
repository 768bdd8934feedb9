"""The helm connector's pure parts: strategies, scaling values, values merging, URIs, the generated chart."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest
import yaml

from tidegate.connectors.helm import scaling_delta, strategy_of
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
    primary_objects,
    read_chart,
    scale_manifest,
    service_uris,
    write_chart,
)

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
