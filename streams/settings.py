"""Runtime settings of the streams layer, read from `TIDEGATE_*` environment variables.

Every agent, connector and CLI command builds its Kafka clients from one `Settings`, so a deployment
changes the broker, the topic prefix or the partition count in one place. Secrets (the SASL password)
are `SecretStr`: they never show in a repr, a log line or an error message.

| variable | default |
|---|---|
| TIDEGATE_KAFKA_BOOTSTRAP | 127.0.0.1:$TIDEGATE_KAFKA_PORT (19092), the local broker of deploy/local/kafka.py |
| TIDEGATE_TOPIC_PREFIX | `tidegate.` |
| TIDEGATE_PARTITIONS | 12 (events, task topics, audit and changelogs: fixed up front, see docs/ARCHITECTURE.md) |
| TIDEGATE_REPLICATION_FACTOR | 1 |
| TIDEGATE_STORE | `memory://`, the only store (see the field) |
| TIDEGATE_DATA_DIR | `$TIDEGATE_HOME/faust` (TIDEGATE_HOME defaults to `.cache`) |
| TIDEGATE_WEB_ENABLED / _WEB_BIND / _WEB_PORT | off / 127.0.0.1 / 6066 |
| TIDEGATE_MAX_STATE_BYTES | 524288: the most state one key may hold (a sequencer trigger past it ends errored) |
| TIDEGATE_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD | PLAINTEXT, none |
| TIDEGATE_KAFKA_SSL_CAFILE | none: the system's CAs (a PEM file of extra CAs for SSL / SASL_SSL) |

Each client library's configuration is built from these in one place, `tidegate.streams.kafka`
(`confluent_config`, `aiokafka_config`, `faust_credentials`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA_PORT = 19092  # below the ephemeral range 32768-60999: see deploy/local/kafka.py
_TOPIC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _local_bootstrap() -> str:
    return f"127.0.0.1:{os.environ.get('TIDEGATE_KAFKA_PORT') or DEFAULT_KAFKA_PORT}"


def _default_data_dir() -> Path:
    return Path(os.environ.get("TIDEGATE_HOME") or ".cache") / "faust"


class Settings(BaseSettings):
    """Where Kafka is, how topics are named and sized, and how a Faust worker runs."""

    model_config = SettingsConfigDict(env_prefix="TIDEGATE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default_factory=_local_bootstrap, min_length=1)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    topic_prefix: str = "tidegate."
    partitions: int = Field(default=12, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    dlq_partitions: int = Field(default=3, ge=1)
    resources_partitions: int = Field(default=1, ge=1)

    # Faust tables (the agents on the Faust host): memory:// replays the changelog at start, which
    # benchmarks/bench_recovery.py measures. rocksdb:// was removed: it failed the kill -9 crash test and
    # the changelog topics already hold every state (docs/ARCHITECTURE.md, "Tables and recovery").
    store: str = "memory://"
    data_dir: Path = Field(default_factory=_default_data_dir)
    web_enabled: bool = False
    web_bind: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)
    # The largest state one key may hold in an agent's core (the sequencer refuses a trigger that would
    # pass it): well below Kafka's default message limit (1 MB), so every state record fits.
    max_state_bytes: int = Field(default=512 * 1024, ge=16 * 1024, le=900_000)
    # How long a worker may take to join its group and recover its tables before it reports failure.
    started_timeout: float = Field(default=60.0, gt=0)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_name(cls, value: str) -> str:
        bad = sorted(set(value) - _TOPIC_CHARS)
        if bad:
            raise ValueError(
                f"topic prefix {value!r} contains {''.join(bad)!r}; Kafka topic names allow only "
                "letters, digits, '.', '_' and '-'"
            )
        return value

    @field_validator("store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value.startswith("rocksdb://"):
            raise ValueError(
                f"store {value!r}: the RocksDB store was removed (it lost state on a kill -9 and is not needed: "
                "each table is rebuilt from its changelog topic at start); set TIDEGATE_STORE=memory:// or unset it"
            )
        if not value.startswith("memory://"):
            raise ValueError(f"store {value!r} is not a Faust table store Tidegate supports; use memory://")
        return value

    @model_validator(mode="after")
    def _sasl_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"security protocol {self.kafka_security_protocol} needs TIDEGATE_KAFKA_SASL_MECHANISM, "
                "TIDEGATE_KAFKA_SASL_USERNAME and TIDEGATE_KAFKA_SASL_PASSWORD"
            )
        return self

    @property
    def faust_broker(self) -> str:
        """Faust's broker URL list: `kafka://host1:9092;host2:9092`."""
        return ";".join(f"kafka://{host.strip()}" for host in self.kafka_bootstrap.split(",") if host.strip())

    def as_env(self) -> dict[str, str]:
        """The `TIDEGATE_*` variables that reproduce these settings in a child process (a Faust worker).

        Includes the secret's value: pass it to a subprocess environment, never print it.
        """
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"TIDEGATE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env
