"""The Alertmanager bridge: Alertmanager's webhook (payload version 4) in, remediation events out.

    from tidegate.gateway.alertmanager import AlertmanagerBridge, BridgeSettings, KafkaSink, bridge_router

    bridge = AlertmanagerBridge(BridgeSettings(), KafkaSink(settings), TopicRegistry.from_settings(settings))
    gateway.include_router(bridge_router(bridge), prefix="/api/alertmanager")

Modules: `translate` (pure: payload parsing, alert -> event, deterministic contexts and ids),
`auth` (bearer/basic, constant time), `settings` (env), `app` (FastAPI router, Kafka sink, standalone app).
Run standalone with `tidegate alertmanager-bridge --port 19180`.
"""

from tidegate.gateway.alertmanager.app import (
    AlertmanagerBridge,
    EventSink,
    KafkaSink,
    SinkUnavailable,
    bridge_router,
    create_bridge_app,
)
from tidegate.gateway.alertmanager.auth import AuthConfigError, Credentials
from tidegate.gateway.alertmanager.settings import BridgeSettings
from tidegate.gateway.alertmanager.translate import (
    Accepted,
    Alert,
    Batch,
    PayloadError,
    Rejected,
    alert_context,
    translate,
    translate_alert,
)

__all__ = [
    "Accepted",
    "Alert",
    "AlertmanagerBridge",
    "AuthConfigError",
    "Batch",
    "BridgeSettings",
    "Credentials",
    "EventSink",
    "KafkaSink",
    "PayloadError",
    "Rejected",
    "SinkUnavailable",
    "alert_context",
    "bridge_router",
    "create_bridge_app",
    "translate",
    "translate_alert",
]
