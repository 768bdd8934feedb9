"""A fake Unleash server: the admin API's feature-environment on/off endpoints, with Unleash's shapes.

    POST /api/admin/projects/{project}/features/{feature}/environments/{environment}/on|off
         Authorization: <token>        200 + the feature; 401 without a valid token; 404 NotFoundError
"""

from __future__ import annotations

import re
import uuid

from tests.fakes.loopback import LoopbackServer, QuietHandler

_TOGGLE = re.compile(r"^/api/admin/projects/([^/]+)/features/([^/]+)/environments/([^/]+)/(on|off)$")


class FakeUnleash(LoopbackServer):
    def __init__(self, token: str = "*:*.admin-token", environments: tuple[str, ...] = ("dev", "production")) -> None:
        self.token = token
        self.environments = environments
        # (project, feature) -> environment -> enabled
        self.features: dict[tuple[str, str], dict[str, bool]] = {}
        self.calls: list[tuple[str, str, str, str]] = []
        fake = self

        class Handler(QuietHandler):
            json_content_type = "application/json; charset=utf-8"

            def _error(self, code: int, name: str, message: str) -> None:
                self.send_json(code, {"id": str(uuid.uuid4()), "name": name, "message": message})

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
                self.send_json(200, {"name": feature, "project": project, "environments": [
                    {"name": env, "enabled": on} for env, on in sorted(toggles.items())]})

        super().__init__(Handler)

    def add(self, feature: str, project: str = "default", **enabled: bool) -> None:
        self.features[(project, feature)] = dict(enabled)
