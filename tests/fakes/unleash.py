"""A fake Unleash server: the admin API's feature-environment on/off endpoints, with Unleash's shapes.

    POST /api/admin/projects/{project}/features/{feature}/environments/{environment}/on|off
         Authorization: <token>        200 + the feature; 401 without a valid token; 404 NotFoundError
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOGGLE = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)/environments/([^/]+)/(on|off)$")


class FakeUnleash:
    def __init__(self, token: str = "*:*.admin-token", environments: tuple[str, ...] = ("dev", "production")) -> None:
        self.token = token
        self.environments = environments
        # (project, feature) -> environment -> enabled
        self.features: dict[tuple[str, str], dict[str, bool]] = {}
        self.calls: list[tuple[str, str, str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, name: str, message: str) -> None:
                self._send(code, {"id": str(uuid.uuid4()), "name": name, "message": message})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.headers.get("Authorization") != fake.token:
                    self._error(401, "AuthenticationRequired", "You must log in to use Unleash. Your request had no "
                                "authorization header, so we could not authorize you.")
                    return
                match = _TOGGLE.match(self.path)
                if not match:
                    self._error(404, "NotFoundError", f"Could not find {self.path}")
                    return
                project, feature, environment, state = match.groups()
                fake.calls.append((project, feature, environment, state))
                toggles = fake.features.get((project, feature))
                if toggles is None:
                    self._error(404, "NotFoundError", f"Could not find feature toggle with name {feature}")
                    return
                if environment not in fake.environments:
                    self._error(404, "NotFoundError", f"Could not find environment with name {environment}")
                    return
                toggles[environment] = state == "on"
                self._send(200, {"name": feature, "project": project, "environments": [
                    {"name": env, "enabled": on} for env, on in sorted(toggles.items())]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add(self, feature: str, project: str = "default", **enabled: bool) -> None:
        self.features[(project, feature)] = dict(enabled)

    def __enter__(self) -> FakeUnleash:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
