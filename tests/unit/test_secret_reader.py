"""What a task may read of the secrets (streams.secrets.SecretReader): the store first, in the scopes of
its project only (keptn-default, the connector's, the project's own), then the operator's
TIDEGATE_SECRET_<NAME>_<KEY>; errors name the secret, the key and the scopes, never a value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tidegate.streams.secrets import (
    DEFAULT_SCOPE,
    FileSecretStore,
    SecretError,
    SecretNotFound,
    SecretReader,
    task_scopes,
)

VALUE = "v4lue-of-a-secret-9321"


@pytest.fixture
def store(tmp_path: Path) -> FileSecretStore:
    made = FileSecretStore(tmp_path / "home" / "secrets.json")
    made.create("shared", DEFAULT_SCOPE, {"token": "shared-token"})
    made.create("hooks", "keptn-webhook-service", {"token": "hook-token"})
    made.create("sockshop-db", "sockshop", {"user": "u", "password": VALUE})
    made.create("bank-db", "bank", {"password": "bank-" + VALUE})
    return made


def test_a_project_reads_the_shared_scopes_and_its_own() -> None:
    assert task_scopes("sockshop") == (DEFAULT_SCOPE, "sockshop")
    assert task_scopes("sockshop", "keptn-webhook-service") == (DEFAULT_SCOPE, "keptn-webhook-service", "sockshop")
    assert task_scopes("keptn-default") == (DEFAULT_SCOPE,)
    assert task_scopes("") == (DEFAULT_SCOPE,)
    assert task_scopes("x" * 64) == (DEFAULT_SCOPE,)  # longer than a scope may be: it has none of its own


def test_the_store_comes_first_then_the_environment(store: FileSecretStore) -> None:
    reader = SecretReader(task_scopes("sockshop"), {"TIDEGATE_SECRET_SOCKSHOP_DB_PASSWORD": "from-env",
                                                    "TIDEGATE_SECRET_SOCKSHOP_DB_PORT": "5432"}, store)
    assert reader.value("sockshop-db", "password") == VALUE
    assert reader.value("sockshop-db", "port") == "5432"  # a key the store lacks: the operator's variable
    assert reader.value("shared", "token") == "shared-token"
    assert reader.data("sockshop-db") == {"user": "u", "password": VALUE}


def test_another_projects_secret_cannot_be_read_and_the_error_holds_no_value(store: FileSecretStore) -> None:
    reader = SecretReader(task_scopes("sockshop", "keptn-webhook-service"), {}, store)
    assert reader.value("hooks", "token") == "hook-token"
    with pytest.raises(SecretNotFound) as missing:
        reader.value("bank-db", "password")
    message = str(missing.value)
    assert "'bank-db' with key 'password'" in message
    assert "scopes keptn-default, keptn-webhook-service, sockshop" in message
    assert "TIDEGATE_SECRET_BANK_DB_PASSWORD" in message and "--scope=sockshop" in message
    assert VALUE not in message
    with pytest.raises(SecretNotFound, match="'bank-db' is not in the secret store"):
        reader.data("bank-db")
    # The other project reads it, and not sockshop's.
    bank = SecretReader(task_scopes("bank"), {}, store)
    assert bank.value("bank-db", "password") == "bank-" + VALUE
    with pytest.raises(SecretNotFound):
        bank.value("sockshop-db", "password")
    with pytest.raises(SecretNotFound):
        bank.value("hooks", "token")  # the webhook scope is the webhook connector's


def test_a_store_that_cannot_be_read_falls_back_to_the_environment_then_says_why(tmp_path: Path) -> None:
    broken = FileSecretStore(tmp_path / "secrets.json")
    broken.path.write_text("{not json")
    reader = SecretReader(task_scopes("sockshop"), {"TIDEGATE_SECRET_DB_PASSWORD": "from-env"}, broken)
    assert reader.value("db", "password") == "from-env"
    with pytest.raises(SecretError, match=r"the secret 'db' \(key 'user'\) cannot be read: the secret store .* cannot be "
                                          "read .*TIDEGATE_SECRET_DB_USER is not set either"):
        reader.value("db", "user")
    with pytest.raises(SecretError, match="the secret 'db' cannot be read"):
        reader.data("db")


def test_without_a_store_only_the_environment_is_read() -> None:
    reader = SecretReader(environ={"TIDEGATE_SECRET_SLACK_TOKEN": "t"})
    assert reader.value("slack", "token") == "t"
    with pytest.raises(SecretNotFound, match="neither in the connector's environment variable TIDEGATE_SECRET_SLACK_URL"):
        reader.value("slack", "url")
