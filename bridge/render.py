"""The Jinja2 environment of the Bridge's pages: templates shipped in the package, autoescaped, with
the filters the templates share (times, durations, numbers, state labels and tones)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from .states import duration_text, label, number_text, short_time, time_text, tone

PACKAGE_DIR = Path(str(resources.files("tidegate.bridge")))
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
STATIC_FILES = {"bridge.css": "text/css; charset=utf-8", "bridge.js": "text/javascript; charset=utf-8"}


def _static_version() -> str:
    """Changes whenever a static file changes, so browsers never keep an old one (cache-busting)."""
    digest = hashlib.sha256()
    for name in sorted(STATIC_FILES):
        digest.update((STATIC_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


STATIC_VERSION = _static_version()


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return ""
    span = (now or datetime.now(UTC)) - moment
    if span < timedelta(seconds=5):
        return "just now"
    return f"{duration_text(span)} ago"


def _score(value: float | None) -> str:
    if value is None:
        return "\u2013"  # an en dash: "no score"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _percent(value: float | None) -> str:
    if value is None:
        return ""
    sign = "+" if value > 0 else ""
    return f"{sign}{value:.1f} %"


def _short_id(value: str | None) -> str:
    return (value or "")[:8]


def _path(value: str) -> str:
    """A path segment, escaped (project, context and event ids in links)."""
    return quote(value, safe="")


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=time_text,
        short_time=short_time,
        duration=duration_text,
        ago=_ago,
        number=number_text,
        score=_score,
        percent=_percent,
        label=label,
        tone=tone,
        short_id=_short_id,
        path=_path,
    )
    env.globals["static_version"] = STATIC_VERSION
    return env


ENVIRONMENT = build_environment()


def render(template: str, **context: object) -> str:
    return ENVIRONMENT.get_template(template).render(**context)
