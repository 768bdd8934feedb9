"""Who may use the Bridge, and the protection of its forms.

- Local mode (the gateway runs without an API token, which it allows on loopback only): no login.
  Requests must then name a loopback host (`Host: 127.0.0.1:8080`, `localhost`), so a web page
  elsewhere cannot reach the Bridge through a DNS name that points at 127.0.0.1 (DNS rebinding).
- Token mode: a login form takes the gateway's API token once and sets an HttpOnly, SameSite=Strict
  cookie holding a session value derived from the token (HMAC), not the token itself: the cookie
  opens the Bridge but is useless as an `x-token` on the API. Changing the token logs everyone out.
- Every form carries a CSRF token derived from the session (or, in local mode, from a secret made at
  start), and a POST whose Origin names another site is refused.
Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from tidegate.gateway.auth import loopback_host, token_matches

SESSION_COOKIE = "tidegate_bridge"
SESSION_PURPOSE = b"tidegate-bridge-session:v1"
CSRF_PURPOSE = b"tidegate-bridge-csrf:v1"
SESSION_MAX_AGE = 12 * 3600
# Made once per process: local mode has one process, and its forms need a secret no page elsewhere knows.
_LOCAL_SECRET = secrets.token_bytes(32)


def _mac(key: bytes, purpose: bytes) -> str:
    return hmac.new(key, purpose, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Access:
    """The Bridge's view of the gateway's token (None: local mode)."""

    api_token: str | None

    @property
    def local(self) -> bool:
        return self.api_token is None

    def session_value(self) -> str:
        """What the session cookie holds after a successful login."""
        assert self.api_token is not None
        return _mac(self.api_token.encode("utf-8"), SESSION_PURPOSE)

    def token_ok(self, given: str) -> bool:
        return self.api_token is not None and token_matches(self.api_token, given)

    def session_ok(self, cookie: str | None) -> bool:
        if self.local:
            return True
        if not cookie:
            return False
        return hmac.compare_digest(self.session_value().encode("ascii"), cookie.encode("utf-8", "replace"))

    def csrf_token(self) -> str:
        key = self.api_token.encode("utf-8") if self.api_token is not None else _LOCAL_SECRET
        return _mac(key, CSRF_PURPOSE)

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token().encode("ascii"), (given or "").encode("utf-8",
                                                                                                        "replace"))


def host_allowed(access: Access, host_header: str | None) -> bool:
    """In local mode only loopback host names may be used (see the module docstring)."""
    return not access.local or loopback_host(host_header)


def same_origin(origin: str | None, host_header: str | None) -> bool:
    """A browser's Origin header for a POST must name this server (absent: not a cross-site browser POST)."""
    if origin is None:
        return True
    if origin == "null" or not host_header:
        return False
    return urlsplit(origin).netloc == host_header


def safe_next(target: str | None, default: str) -> str:
    """Where to go after a login or an action: a path inside the Bridge only (no open redirect)."""
    if not target or not target.startswith("/bridge") or target.startswith("//") or "\\" in target:
        return default
    return target
