"""The history store's tables (SQLAlchemy 2): events, transitions, sequence states and evaluations.

Every table is keyed so that ingesting the same audit entry twice changes nothing (idempotent on the
event or transition id). The whole database can be dropped and rebuilt by replaying `audit`.
The same schema runs on SQLite (default) and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")
_TIME = DateTime(timezone=True)
_ID = String(200)
_NAME = String(250)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[dict[str, Any]]: JSON}


class EventRow(Base):
    """A Keptn event an agent consumed or emitted, with the columns queries filter on."""

    __tablename__ = "tidegate_events"

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(_ID, unique=True)
    type: Mapped[str] = mapped_column(String(500), index=True)
    source: Mapped[str] = mapped_column(String(500))
    time: Mapped[datetime] = mapped_column(_TIME, index=True)
    keptn_context: Mapped[str | None] = mapped_column(_ID, index=True)
    triggered_id: Mapped[str | None] = mapped_column(_ID, index=True)
    project: Mapped[str | None] = mapped_column(_NAME, index=True)
    stage: Mapped[str | None] = mapped_column(_NAME)
    service: Mapped[str | None] = mapped_column(_NAME)
    gitcommitid: Mapped[str | None] = mapped_column(_ID)
    is_root: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class TransitionRow(Base):
    """A state transition an agent recorded."""

    __tablename__ = "tidegate_transitions"

    seq: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(_ID, unique=True)
    agent: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(100))
    time: Mapped[datetime] = mapped_column(_TIME)
    keptn_context: Mapped[str | None] = mapped_column(_ID, index=True)
    project: Mapped[str] = mapped_column(_NAME)
    stage: Mapped[str] = mapped_column(_NAME)
    service: Mapped[str] = mapped_column(_NAME)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class SequenceRow(Base):
    """The sequence state of one keptnContext (readside.history.sequences.SequenceView)."""

    __tablename__ = "tidegate_sequences"

    keptn_context: Mapped[str] = mapped_column(_ID, primary_key=True)
    project: Mapped[str] = mapped_column(_NAME)
    service: Mapped[str] = mapped_column(_NAME)
    name: Mapped[str] = mapped_column(_NAME)
    state: Mapped[str] = mapped_column(String(50))
    time: Mapped[datetime] = mapped_column(_TIME)
    updated: Mapped[datetime] = mapped_column(_TIME)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_result: Mapped[str | None] = mapped_column(String(50))
    problem_title: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[int] = mapped_column(Integer, default=0)
    stages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (Index("ix_tidegate_sequences_project_time", "project", "time"),)


class EvaluationRow(Base):
    """One `evaluation.finished` result, for trends and `get evaluations`."""

    __tablename__ = "tidegate_evaluations"

    id: Mapped[str] = mapped_column(_ID, primary_key=True)
    keptn_context: Mapped[str | None] = mapped_column(_ID, index=True)
    triggered_id: Mapped[str | None] = mapped_column(_ID, index=True)
    project: Mapped[str] = mapped_column(_NAME)
    stage: Mapped[str] = mapped_column(_NAME)
    service: Mapped[str] = mapped_column(_NAME)
    time: Mapped[datetime] = mapped_column(_TIME)
    result: Mapped[str | None] = mapped_column(String(50))
    score: Mapped[float | None] = mapped_column(Float)
    invalidated: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_tidegate_evaluations_key_time", "project", "stage", "service", "time"),)
