"""The key scheme (project/stage/service) and deterministic output ids."""

from __future__ import annotations

import uuid

import pytest

from tidegate.schemas.events import KeptnEvent
from tidegate.schemas.ids import NAMESPACE, context_from_text, derived_id
from tidegate.schemas.keys import Key, key_mismatch
from tidegate.streams.codec import event_key


class TestKey:
    def test_text_and_bytes(self) -> None:
        key = Key("sockshop", "dev", "carts")
        assert str(key) == "sockshop/dev/carts"
        assert key.encode() == b"sockshop/dev/carts"

    def test_empty_segments_are_kept(self) -> None:
        assert str(Key("sockshop")) == "sockshop//"
        assert str(Key("sockshop", "", "carts")) == "sockshop//carts"

    @pytest.mark.parametrize("raw", ["sockshop/dev/carts", b"sockshop/dev/carts", "sockshop//", "a//c"])
    def test_parse_inverts_str(self, raw: str | bytes) -> None:
        key = Key.parse(raw)
        text = raw.decode() if isinstance(raw, bytes) else raw
        assert str(key) == text

    @pytest.mark.parametrize("raw", ["sockshop", "sockshop/dev", "a/b/c/d"])
    def test_parse_rejects_other_shapes(self, raw: str) -> None:
        with pytest.raises(ValueError, match="project/stage/service"):
            Key.parse(raw)

    def test_of_data_ignores_other_fields_and_missing_values(self) -> None:
        assert Key.of_data({"project": "p", "stage": "s", "service": "c", "labels": {}}) == Key("p", "s", "c")
        assert Key.of_data({"project": "p", "stage": None}) == Key("p", "", "")
        assert Key.of_data({}) == Key("", "", "")

    def test_event_key_uses_the_data_block(self) -> None:
        event = KeptnEvent(type="sh.keptn.event.test.triggered", data={"project": "p", "stage": "hardening"})
        assert event_key(event) == Key("p", "hardening", "")


class TestDerivedIds:
    def test_same_input_and_purpose_same_id(self) -> None:
        assert derived_id("input-1", "deployment.triggered") == derived_id("input-1", "deployment.triggered")

    def test_differs_by_input_and_by_purpose(self) -> None:
        ids = {
            derived_id("input-1", "deployment.triggered"),
            derived_id("input-2", "deployment.triggered"),
            derived_id("input-1", "test.triggered"),
        }
        assert len(ids) == 3

    def test_is_the_documented_uuid5(self) -> None:
        # ARCHITECTURE: uuid5(NAMESPACE, X.id + ":" + purpose), a version-5 UUID.
        value = uuid.UUID(derived_id("abc", "p"))
        assert value.version == 5
        assert value == uuid.uuid5(NAMESPACE, "abc:p")

    def test_context_from_text(self) -> None:
        existing = "08735340-6f9e-4b32-97ff-3b6c292bc509"
        assert context_from_text(existing) == existing
        derived = context_from_text("my-build-42")
        assert derived == context_from_text("my-build-42")
        assert uuid.UUID(derived).version == 5


def test_a_record_key_matching_the_event_or_missing_is_accepted() -> None:
    data = {"project": "sockshop", "stage": "dev", "service": "carts"}
    assert key_mismatch(b"sockshop/dev/carts", data) is None
    assert key_mismatch(None, data) is None


def test_a_record_key_naming_another_service_is_explained() -> None:
    problem = key_mismatch(b"sockshop/dev/orders", {"project": "sockshop", "stage": "dev", "service": "carts"})
    assert problem is not None
    assert "'sockshop/dev/orders'" in problem and "'sockshop/dev/carts'" in problem
    assert "key Tidegate events by project/stage/service" in problem
