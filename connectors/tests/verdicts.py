"""Load-test verdicts from the tools' own result files. Pure: text in, numbers and verdicts out.

Locust: the `<prefix>_stats.csv` file of `--csv`, row `Aggregated`. A workload in locust.conf.yaml may
set limits (a Tidegate extension; locust-service only looked at the exit code, which fails on any
failed request):

    workloads:
      - teststrategy: performance
        script: locust/load.py
        users: 20              # -u      (else 10 users and 2m when there is no `conf` file)
        spawnRate: 5           # -r
        runTime: 30s           # -t
        acceptedErrorRate: 0.01   # failed/all requests allowed; default 0: any failure fails
        maxAvgResponseTime: 300   # ms, 0 = not checked
        maxP95ResponseTime: 800   # ms, 0 = not checked

JMeter: a JTL (CSV) results file; pass iff errors <= acceptederrorrate x runs and, when
avgrtvalidation > 0, the average elapsed time <= avgrtvalidation (jmeter-service's rule, §6.2).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tidegate.schemas.errors import TidegateError


class LocustLimits(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    users: int | None = Field(default=None, ge=1)
    spawnRate: float | None = Field(default=None, gt=0)
    runTime: str | None = None
    acceptedErrorRate: float = Field(default=0.0, ge=0.0, le=1.0)
    maxAvgResponseTime: float = Field(default=0.0, ge=0.0)
    maxP95ResponseTime: float = Field(default=0.0, ge=0.0)

    @classmethod
    def of(cls, extra: dict[str, Any] | None) -> LocustLimits:
        return cls.model_validate(extra or {})


class ResultFileError(TidegateError, ValueError):
    """A load tool's result file is missing what Tidegate reads from it."""


@dataclass(frozen=True, slots=True)
class LoadStats:
    requests: int
    failures: int
    average_ms: float
    p95_ms: float | None = None

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def describe(self) -> str:
        p95 = f", p95 {self.p95_ms:.0f} ms" if self.p95_ms is not None else ""
        return (f"{self.requests} requests, {self.failures} failed ({self.error_rate:.1%}), "
                f"average {self.average_ms:.0f} ms{p95}")


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]

    def message(self, stats: LoadStats) -> str:
        head = "passed" if self.passed else "failed"
        return f"load test {head}: {stats.describe()}" + ("; " + "; ".join(self.reasons) if self.reasons else "")


def _number(row: dict[str, str], column: str) -> float:
    try:
        return float(row[column])
    except (KeyError, ValueError) as error:
        raise ResultFileError(f"the locust stats have no numeric column {column!r}") from error


def locust_stats(stats_csv: str) -> LoadStats:
    rows = list(csv.DictReader(io.StringIO(stats_csv)))
    aggregated = next((row for row in rows if row.get("Name") == "Aggregated"), None)
    if aggregated is None:
        raise ResultFileError("the locust stats CSV has no 'Aggregated' row; did locust run any request?")
    p95 = aggregated.get("95%")
    return LoadStats(
        requests=int(_number(aggregated, "Request Count")),
        failures=int(_number(aggregated, "Failure Count")),
        average_ms=_number(aggregated, "Average Response Time"),
        p95_ms=float(p95) if p95 not in (None, "", "N/A") else None,
    )


def judge_locust(stats: LoadStats, limits: LocustLimits) -> Verdict:
    reasons = []
    if stats.requests == 0:
        reasons.append("no request was made; check the locustfile and the host")
    if stats.error_rate > limits.acceptedErrorRate:
        reasons.append(f"error rate {stats.error_rate:.1%} is above the accepted {limits.acceptedErrorRate:.1%}")
    if limits.maxAvgResponseTime and stats.average_ms > limits.maxAvgResponseTime:
        reasons.append(f"average response time {stats.average_ms:.0f} ms is above {limits.maxAvgResponseTime:.0f} ms")
    if limits.maxP95ResponseTime and stats.p95_ms is not None and stats.p95_ms > limits.maxP95ResponseTime:
        reasons.append(f"p95 response time {stats.p95_ms:.0f} ms is above {limits.maxP95ResponseTime:.0f} ms")
    return Verdict(not reasons, tuple(reasons))


def jmeter_stats(jtl_csv: str) -> LoadStats:
    rows = list(csv.DictReader(io.StringIO(jtl_csv)))
    if rows and ("elapsed" not in rows[0] or "success" not in rows[0]):
        raise ResultFileError("the JMeter results have no 'elapsed'/'success' columns; save them as CSV with a header")
    elapsed = [float(row["elapsed"]) for row in rows]
    failures = sum(1 for row in rows if row["success"].strip().lower() != "true")
    return LoadStats(len(rows), failures, sum(elapsed) / len(elapsed) if elapsed else 0.0)


def judge_jmeter(stats: LoadStats, accepted_error_rate: float, avg_rt_limit: int) -> Verdict:
    reasons = []
    if stats.requests == 0:
        reasons.append("no sample was recorded")
    if stats.failures > accepted_error_rate * stats.requests:
        reasons.append(f"{stats.failures} errors is more than the accepted {accepted_error_rate} x {stats.requests} runs")
    if avg_rt_limit and stats.average_ms > avg_rt_limit:
        reasons.append(f"average response time {stats.average_ms:.0f} ms is above {avg_rt_limit} ms")
    return Verdict(not reasons, tuple(reasons))
