"""Who may use the Bridge, and the protection of its forms.

- Local mode (the gateway runs without an API token, which it allows on loopback only): no login.
  Requests must then name a loopback host (`Host: 127.0.0.1:8080`, `localhost`), so a web page
  elsewhere cannot reach the Bridge through a DNS name that points at 127.0.0.1 (DNS rebinding); the
  gateway refuses such requests on every route (`tidegate.gateway.auth.LoopbackHostOnly`).
- Token mode: a login form takes the gateway's API token once and opens a session: a random id in an
  HttpOnly, SameSite=Strict cookie, useless as an `x-token` on the API. The gateway process keeps the
  sessions (`Sessions`, bounded): one ends at its time to live (TIDEGATE_BRIDGE_SESSION_TTL, 12 h by
  default), at logout, when every session is revoked (`DELETE /api/bridge/v1/sessions` with the API
  token), and when the gateway restarts (so also when the token changes). Sessions are not shared
  between gateway replicas: route the Bridge to one replica (sticky sessions) when there are several.
- Wrong tokens are throttled per client address (`LoginThrottle`): after `FREE_FAILURES` wrong tokens
  an address waits 1 s, then twice as long after each further wrong token (at most 15 min), and is
  answered 429 with Retry-After meanwhile without its token being checked. Behind a proxy every
  client has the proxy's address, so they share one budget.
- Every form carries a CSRF token derived from the API token (or, in local mode, from a secret made at
  start), and a POST whose Origin names another site is refused.
Tokens are compared in constant time and never logged; session ids are kept only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from cachetools import TTLCache

from tidegate.gateway.auth import loopback_host, token_matches
from tidegate.schemas.durations import parse_duration

SESSION_COOKIE = "tidegate_bridge"
CSRF_PURPOSE = b"tidegate-bridge-csrf:v1"
SESSION_TTL_VARIABLE = "TIDEGATE_BRIDGE_SESSION_TTL"
DEFAULT_SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 10_000
FREE_FAILURES = 5
BACKOFF_CAP = 15 * 60.0
MAX_THROTTLED_ADDRESSES = 10_000
# Made once per process: local mode has one process, and its forms need a secret no page elsewhere knows.
_LOCAL_SECRET = secrets.token_bytes(32)


def _mac(key: bytes, purpose: bytes) -> str:
    return hmac.new(key, purpose, hashlib.sha256).hexdigest()


class Sessions:
    """The Bridge's open sessions in this gateway process: SHA-256 of the cookie's id -> nothing more.

    A TTLCache ends each one `ttl` seconds after login and holds at most MAX_SESSIONS (the oldest go
    first). `timer` is the clock (tests pass their own).
    """

    def __init__(self, ttl: float = DEFAULT_SESSION_TTL, *, timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._open: TTLCache[str, bool] = TTLCache(MAX_SESSIONS, ttl, timer=timer)

    @classmethod
    def from_environment(cls) -> Sessions:
        text = os.environ.get(SESSION_TTL_VARIABLE, "").strip()
        if not text:
            return cls()
        try:
            ttl = parse_duration(text).total_seconds()
        except ValueError:
            ttl = 0.0
        if ttl <= 0:
            raise ValueError(f"{SESSION_TTL_VARIABLE}={text!r} is not a positive duration; write it like 12h or 30m")
        return cls(ttl)

    def open(self) -> str:
        """A new session; returns the id for the cookie."""
        session_id = secrets.token_urlsafe(32)
        self._open[_digest(session_id)] = True
        return session_id

    def valid(self, session_id: str | None) -> bool:
        return bool(session_id) and self._open.get(_digest(session_id or "")) is True

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._open.pop(_digest(session_id), None)

    def close_all(self) -> int:
        """Revoke every session; returns how many were open."""
        self._open.expire()
        count = len(self._open)
        self._open.clear()
        return count


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class LoginThrottle:
    """Wrong tokens per client address: FREE_FAILURES are free, then 1 s, 2 s, 4 s ... (at most
    BACKOFF_CAP) between attempts. An address is forgotten twice BACKOFF_CAP after its last wrong token."""

    def __init__(self, *, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._failures: TTLCache[str, tuple[int, float]] = TTLCache(MAX_THROTTLED_ADDRESSES, 2 * BACKOFF_CAP,
                                                                timer=timer)

    def retry_after(self, address: str) -> int:
        """Whole seconds `address` must still wait before its next attempt (0: it may try now)."""
        count, last = self._failures.get(address, (0, 0.0))
        if count < FREE_FAILURES:
            return 0
        delay = min(BACKOFF_CAP, 2.0 ** (count - FREE_FAILURES))
        return max(0, math.ceil(last + delay - self._timer()))

    def failed(self, address: str) -> None:
        count, _ = self._failures.get(address, (0, 0.0))
        self._failures[address] = (count + 1, self._timer())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)


@dataclass(frozen=True, slots=True)
class Access:
    """The Bridge's view of the gateway's token (None: local mode) and of its sessions."""

    api_token: str | None
    sessions: Sessions

    @property
    def local(self) -> bool:
        return self.api_token is None

    def token_ok(self, given: str) -> bool:
        return self.api_token is not None and token_matches(self.api_token, given)

    def session_ok(self, cookie: str | None) -> bool:
        return self.local or self.sessions.valid(cookie)

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
