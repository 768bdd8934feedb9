"""Structured JSON logs (streams.logging): the keptnContext of the event being worked on on every line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest

from tidegate.schemas.events import KeptnEvent
from tidegate.streams.logging import (
    TidegateJsonFormatter,
    WorkContext,
    bind_event,
    configure,
    current,
    faust_logging_options,
    unbind,
    wanted_format,
)

EVENT = KeptnEvent(id="ev-1", type="sh.keptn.event.dev.delivery.triggered", shkeptncontext="ctx-1",
                   data={"project": "shop", "stage": "dev", "service": "carts"})


@pytest.fixture
def lines() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TidegateJsonFormatter())
    logger = logging.getLogger("tidegate.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    unbind()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_of_work_carries_the_events_context(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    bind_event(EVENT)
    logger.info("dispatched %s", "deployment", extra={"task": "deployment"})
    (line,) = records(stream)
    assert line["message"] == "dispatched deployment"
    assert (line["level"], line["logger"]) == ("INFO", "tidegate.test.json")
    assert line["keptnContext"] == "ctx-1" and line["eventId"] == "ev-1"
    assert (line["eventType"], line["project"], line["stage"], line["service"]) == (
        EVENT.type, "shop", "dev", "carts")
    assert line["task"] == "deployment"
    assert line["time"].endswith("Z") and len(line["time"]) == len("2026-01-01T00:00:00.000Z")


def test_lines_outside_any_event_have_no_context(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines
    bind_event(EVENT)
    unbind()
    logger.warning("worker started")
    (line,) = records(stream)
    assert "keptnContext" not in line and line["message"] == "worker started"


def test_each_agent_task_keeps_its_own_binding(lines: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = lines

    async def agent(context: str, ready: asyncio.Event, other_ready: asyncio.Event) -> None:
        bind_event(EVENT.model_copy(update={"shkeptncontext": context}))
        ready.set()
        await other_ready.wait()  # the other agent has bound its own event meanwhile
        logger.info("done by %s", context)

    async def both() -> None:
        first, second = asyncio.Event(), asyncio.Event()
        await asyncio.gather(agent("ctx-a", first, second), agent("ctx-b", second, first))

    asyncio.run(both())
    assert sorted((r["message"], r["keptnContext"]) for r in records(stream)) == [
        ("done by ctx-a", "ctx-a"), ("done by ctx-b", "ctx-b")
    ]
    assert current() is None  # nothing leaked into the caller


def test_the_format_is_chosen_by_the_environment() -> None:
    assert wanted_format({}) == "text"
    assert wanted_format({"TIDEGATE_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ValueError, match="use json or text"):
        wanted_format({"TIDEGATE_LOG_FORMAT": "xml"})
    assert faust_logging_options({}) == {}


def test_a_faust_worker_gets_a_config_that_makes_its_default_handler_json() -> None:
    config = faust_logging_options({"TIDEGATE_LOG_FORMAT": "json"})["logging_config"]
    assert config["merge"] is True  # mode merges it over its own `default` handler
    stream = io.StringIO()
    applied = {key: value for key, value in config.items() if key != "merge"}
    applied["handlers"]["default"] = {**applied["handlers"]["default"], "stream": stream}
    applied["loggers"] = {"tidegate.test.faust": {"handlers": ["default"], "level": "INFO", "propagate": False}}
    logging.config.dictConfig(applied)
    try:
        bind_event(EVENT)
        logging.getLogger("tidegate.test.faust").info("hello")
        assert records(stream)[0]["keptnContext"] == "ctx-1"
    finally:
        unbind()
        logging.getLogger("tidegate.test.faust").handlers.clear()


def test_configure_sets_up_other_processes() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        configure("info", fmt="json", stream=stream)
        logging.getLogger("tidegate.test.configure").info("ready")
        assert records(stream)[0]["message"] == "ready"
    finally:
        root.handlers[:] = saved
        root.setLevel(level)


@pytest.mark.parametrize("data", [
    {"project": "shop", "stage": "dev", "service": "carts"},
    {"project": "shop"},
    {},
    {"project": "", "stage": 3, "service": ["carts"]},
])
def test_a_bound_event_gives_the_context_it_had_when_bound(data: dict[str, Any]) -> None:
    # bind_event keeps the event's fields and makes the WorkContext only when a line asks for it:
    # the same one WorkContext.of gives, even if the event's data changes after binding.
    event = KeptnEvent(id="ev-2", type="sh.keptn.event.test.finished", shkeptncontext="ctx-2", data=dict(data))
    expected = WorkContext.of(event)
    bind_event(event)
    try:
        event.data["project"] = "changed later"
        assert current() == expected
    finally:
        unbind()
    assert current() is None
