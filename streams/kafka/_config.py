"""Client configuration from `Settings`: one function per client library, the only place that maps
Tidegate's connection settings (bootstrap, security protocol, SASL, TLS) to a client's own names."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from tidegate.streams.settings import Settings

if TYPE_CHECKING:
    import faust


def _uses_tls(settings: Settings) -> bool:
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def _password(settings: Settings) -> str:
    return settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the asyncio clients (aiokafka, Faust): the system's CAs plus
    TIDEGATE_KAFKA_SSL_CAFILE, hostname checked; None without TLS."""
    if not _uses_tls(settings):
        return None
    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    return ssl.create_default_context(cafile=cafile)


def confluent_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Configuration of a confluent-kafka client (Producer, Consumer, AdminClient).

    `overrides` use librdkafka's dotted names, so they are given as a mapping:
    `confluent_config(settings, **{"group.id": "g", "enable.auto.commit": False})`.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "security.protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = _password(settings)
    if _uses_tls(settings) and settings.kafka_ssl_cafile:
        config["ssl.ca.location"] = str(settings.kafka_ssl_cafile)
    config.update(overrides)
    return config


def aiokafka_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client (AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient)."""
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = _password(settings)
    context = ssl_context(settings)
    if context is not None:
        config["ssl_context"] = context  # aiokafka refuses SSL/SASL_SSL without one
    config.update(overrides)
    return config


def faust_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's `broker_credentials` (its broker list is `Settings.faust_broker`)."""
    import faust

    context = ssl_context(settings)
    if settings.kafka_sasl_mechanism:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None
