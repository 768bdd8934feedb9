"""Who may call the bridge: a bearer token or basic auth, compared in constant time.

The bridge starts events that change running systems, so it never runs open: without
TIDEGATE_ALERTMANAGER_TOKEN or TIDEGATE_ALERTMANAGER_USER/_PASSWORD it refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

from tidegate.gateway.alertmanager.settings import BridgeSettings
from tidegate.gateway.settings import short_secret
from tidegate.schemas.errors import TidegateError


class AuthConfigError(TidegateError, ValueError):
    """The bridge has no usable credentials configured; the message says which variables to set."""


@dataclass(frozen=True, slots=True)
class Credentials:
    token: bytes | None = None
    basic: tuple[bytes, bytes] | None = None

    @classmethod
    def from_settings(cls, settings: BridgeSettings) -> Credentials:
        token = settings.token.get_secret_value().encode() if settings.token else None
        basic = None
        if settings.user or settings.password:
            if not (settings.user and settings.password):
                raise AuthConfigError(
                    "basic auth for the Alertmanager bridge needs both TIDEGATE_ALERTMANAGER_USER and "
                    "TIDEGATE_ALERTMANAGER_PASSWORD"
                )
            basic = (settings.user.encode(), settings.password.get_secret_value().encode())
        for variable, secret in (("TIDEGATE_ALERTMANAGER_TOKEN", settings.token),
                                 ("TIDEGATE_ALERTMANAGER_PASSWORD", settings.password)):
            refusal = short_secret(variable, len(secret.get_secret_value())) if secret else None
            if refusal:
                raise AuthConfigError(refusal)
        if not token and not basic:
            raise AuthConfigError(
                "the Alertmanager bridge needs credentials: set TIDEGATE_ALERTMANAGER_TOKEN (bearer) or "
                "TIDEGATE_ALERTMANAGER_USER and TIDEGATE_ALERTMANAGER_PASSWORD (basic auth), and give "
                "Alertmanager the same in the receiver's http_config"
            )
        return cls(token, basic)

    def allows(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries these credentials (constant-time comparisons)."""
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.token is not None:
            return secrets.compare_digest(value.encode(), self.token)
        if scheme.lower() == "basic" and self.basic is not None:
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(b":")
            # Both compared every time, so the answer time does not tell which one was wrong.
            user_ok = secrets.compare_digest(user, self.basic[0])
            password_ok = secrets.compare_digest(password, self.basic[1])
            return bool(sep) and user_ok and password_ok
        return False

    @property
    def challenge(self) -> str:
        return "Bearer" if self.token is not None else 'Basic realm="tidegate"'
