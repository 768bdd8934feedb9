"""Durations in messages: a short Go-style rendering (10m, 1h30m, 45s). Parsing is `schemas.durations`."""

from __future__ import annotations

from datetime import timedelta


def format_duration(value: timedelta) -> str:
    total = int(value.total_seconds())
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts) or "0s"
