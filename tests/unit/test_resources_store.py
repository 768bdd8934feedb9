"""The resources store: versioned records, tombstones, and Keptn's service -> stage -> project resolution."""

from tidegate.streams.resources import Resource, ResourceStore, content_version


def _put(store: ResourceStore, content: bytes, stage: str = "", service: str = "", path: str = "slo.yaml") -> Resource:
    resource = Resource.new("sockshop", path, content, stage=stage, service=service)
    key, value = resource.to_record()
    store.apply(key, value)
    return resource


def test_record_round_trip_keeps_content_and_version() -> None:
    resource = Resource.new("sockshop", "/helm/carts.tgz", b"\x00\x01binary", stage="dev", service="carts")
    key, value = resource.to_record()
    assert key == b"sockshop/dev/carts/helm/carts.tgz"
    again = Resource.from_record(value)
    assert again.content == b"\x00\x01binary"
    assert again.version == content_version(b"\x00\x01binary") == resource.version


def test_resolve_prefers_the_most_specific_level() -> None:
    store = ResourceStore()
    _put(store, b"project")
    assert store.resolve("sockshop", "slo.yaml", "dev", "carts").content == b"project"  # type: ignore[union-attr]
    _put(store, b"stage", stage="dev")
    _put(store, b"service", stage="dev", service="carts")
    assert store.resolve("sockshop", "slo.yaml", "dev", "carts").content == b"service"  # type: ignore[union-attr]
    assert store.resolve("sockshop", "slo.yaml", "dev", "orders").content == b"stage"  # type: ignore[union-attr]
    assert store.resolve("sockshop", "slo.yaml", "prod", "carts").content == b"project"  # type: ignore[union-attr]
    assert [r.content for r in store.layers("sockshop", "slo.yaml", "dev", "carts")] == [b"project", b"stage", b"service"]


def test_tombstone_deletes_and_unreadable_records_are_ignored() -> None:
    store = ResourceStore()
    resource = _put(store, b"x", stage="dev", service="carts")
    store.apply(resource.key.encode(), b"not json")
    assert store.get("sockshop", "slo.yaml", "dev", "carts") is not None
    store.apply(resource.key.encode(), None)
    assert store.get("sockshop", "slo.yaml", "dev", "carts") is None
    assert store.resolve("other", "slo.yaml") is None


def test_same_content_same_version_new_content_new_version() -> None:
    assert content_version(b"a") == content_version(b"a") != content_version(b"b")
