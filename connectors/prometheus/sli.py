"""SLI queries for Prometheus: which PromQL to run for an indicator, and what its answer means (pure).

Compatible with keptn-contrib/prometheus-service (reference §5.4):
- `prometheus/sli.yaml` files are merged project → stage → service, later levels overriding earlier ones
  indicator by indicator (`merge_indicators`).
- A query's placeholders are replaced in Keptn's order: SLO filter keys (`$<key>` and `$<KEY>`, quotes
  removed from the value), then `$PROJECT $STAGE $SERVICE $DEPLOYMENT`, `$LABEL.<key>`, `$DURATION_SECONDS`
  (the timeframe in whole seconds, rounded up, with an `s`: `1800s`). Where one key is a prefix of
  another (`$LABEL.a`, `$LABEL.ab`) the longer is replaced first, which Keptn left to map order.
- Unlike Keptn, a value can never rewrite the query (labels come from whoever triggers an evaluation):
  the query is read once, left to right, and each placeholder is replaced by its value as a PromQL
  string literal would hold it when it stands inside quotes (backslash, the quote and line breaks
  escaped), and only when it is plain (letters, digits, `_ . : -`) when it stands outside quotes;
  any other value fails the indicator with UnsafeValue. Replaced values are not searched again for
  placeholders. The built-in queries and SLO filters are built the same way (filter keys must be label
  names). A value inside a regular-expression matcher (`=~"$LABEL.x"`) is still a regular expression.
- Indicators with no query in the files fall back to Keptn's built-ins `throughput`, `error_rate`,
  `response_time_p50|p90|p95` on job `<service>-<project>-<stage>-canary`, narrowed by the SLO filters.
- `$DEPLOYMENT` is the event's `deployment` label if present, else its `deployment` field, else `primary`.

Deliberate differences from Keptn, because a wrong number in a quality gate is worse than no number:
an answer with no series, several series, or NaN/±Inf is a failed indicator with a message (Keptn took
0, the first series, or failed to encode), and an instant `scalar` answer is accepted as the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidegate.connectors.prometheus.errors import (
    EmptyResult,
    InvalidTimeframe,
    NotANumber,
    QueryRejected,
    SeveralSeries,
    UnexpectedAnswer,
    UnknownIndicator,
    UnsafeValue,
)
from tidegate.schemas.errors import TidegateError
from tidegate.schemas.events import Result
from tidegate.schemas.payloads import GetSLITriggered, IndicatorValue
from tidegate.schemas.sli import SLI

THROUGHPUT = "throughput"
ERROR_RATE = "error_rate"
RESPONSE_TIME_P50 = "response_time_p50"
RESPONSE_TIME_P90 = "response_time_p90"
RESPONSE_TIME_P95 = "response_time_p95"
BUILTIN_INDICATORS = (THROUGHPUT, ERROR_RATE, RESPONSE_TIME_P50, RESPONSE_TIME_P90, RESPONSE_TIME_P95)
DEFAULT_DEPLOYMENT = "primary"
UNABLE_TO_RETRIEVE = "unable to retrieve metrics"


# -- which queries ---------------------------------------------------------------------------------


def merge_indicators(*levels: SLI | Mapping[str, str] | None) -> dict[str, str]:
    """Merge SLI files (or their `indicators` maps) given from the most general (project) to the most specific."""
    merged: dict[str, str] = {}
    for level in levels:
        indicators = level.indicators if isinstance(level, SLI) else level
        if indicators:
            merged.update({str(name): str(query) for name, query in indicators.items()})
    return merged


@dataclass(frozen=True, slots=True)
class QueryContext:
    """What a query's placeholders stand for, taken from one `get-sli.triggered` event."""

    project: str
    stage: str
    service: str
    start: datetime
    end: datetime
    deployment: str = DEFAULT_DEPLOYMENT
    labels: Mapping[str, str] = field(default_factory=dict)
    custom_filters: Sequence[tuple[str, str]] = ()

    @property
    def duration(self) -> str:
        """The timeframe as a PromQL range, whole seconds rounded up: `300s`."""
        return f"{math.ceil((self.end - self.start).total_seconds())}s"


def deployment_type(deployment: str | None, labels: Mapping[str, str] | None) -> str:
    """`$DEPLOYMENT`: a `deployment` label wins over the event's field (as in Keptn), else `primary`."""
    if labels and "deployment" in labels:
        return labels["deployment"]
    return deployment or DEFAULT_DEPLOYMENT


def parse_timestamp(text: str | None, what: str) -> datetime:
    """An RFC 3339 time (`2021-05-10T09:51:00.000Z`) or Unix seconds, as Keptn accepted; naive means UTC."""
    if text is None or not str(text).strip():
        raise ValueError(f"the get-sli request has no {what} time")
    raw = str(text).strip()
    try:
        # Digits only is Unix seconds (checked first: ISO 8601 also has an all-digits basic date form).
        if raw.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(raw), UTC)
        moment = datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError):
        raise ValueError(
            f"the {what} time {raw!r} is neither RFC 3339 (2021-05-10T09:51:00.000Z) nor Unix seconds"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def context_from_request(request: GetSLITriggered) -> QueryContext:
    """The query context of a `get-sli.triggered` event; ValueError (in words) when its timeframe is unusable."""
    start = parse_timestamp(request.get_sli.start, "start")
    end = parse_timestamp(request.get_sli.end, "end")
    if end <= start:
        raise ValueError(f"the timeframe ends ({request.get_sli.end}) before or when it starts ({request.get_sli.start})")
    labels = {str(k): str(v) for k, v in (request.labels or {}).items()}
    return QueryContext(
        project=request.project or "",
        stage=request.stage or "",
        service=request.service or "",
        start=start,
        end=end,
        deployment=deployment_type(request.deployment, labels),
        labels=labels,
        custom_filters=tuple((f.key, f.value) for f in request.get_sli.customFilters),
    )


def timeframe_error(indicator: str, reason: str) -> InvalidTimeframe:
    return InvalidTimeframe(
        indicator, "", reason, "the evaluation must give start and end, e.g. 2021-05-10T09:51:00.000Z, end after start"
    )


class UnsafePlaceholder(TidegateError, ValueError):
    """A placeholder's value that could change the query's structure where it stands."""


_BARE_VALUE = re.compile(r"[A-Za-z0-9_.:-]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def promql_literal_text(value: str, quote: str, what: str = "a value") -> str:
    """`value` as the inside of a PromQL string literal in `quote` (`"`, `'` or a backtick)."""
    if quote == "`":  # a raw string: no escapes exist, so nothing that ends it may appear
        if "`" in value:
            raise UnsafePlaceholder(f"{what} {value!r} contains a backtick, which would end the raw string around it")
        return value
    if any(ord(c) < 0x20 and c not in _LITERAL_ESCAPES for c in value):
        raise UnsafePlaceholder(f"{what} {value!r} contains control characters")
    return "".join(_LITERAL_ESCAPES.get(c, "\\" + c if c == quote else c) for c in value)


def _bare(value: str, what: str) -> str:
    if not _BARE_VALUE.fullmatch(value):
        raise UnsafePlaceholder(f"{what} {value!r} stands outside quotes in the query, where only letters, digits "
                                "and _ . : - may appear")
    return value


def _placeholders(context: QueryContext) -> list[tuple[str, str]]:
    """(placeholder, value) in Keptn's order of replacement."""
    found: list[tuple[str, str]] = []
    for key, value in _longest_first(context.custom_filters):
        found += [(f"${key}", _unquote(value)), (f"${key.upper()}", _unquote(value))]
    found += [("$PROJECT", context.project), ("$STAGE", context.stage), ("$SERVICE", context.service),
              ("$DEPLOYMENT", context.deployment)]
    found += [(f"$LABEL.{key}", value) for key, value in _longest_first(context.labels.items())]
    found.append(("$DURATION_SECONDS", context.duration))
    return found


def substitute_placeholders(query: str, context: QueryContext) -> str:
    """Replace Keptn's placeholders in a query from an SLI file, each value escaped for where it stands
    (inside a string literal, or bare); UnsafePlaceholder for a bare value that is not plain."""
    placeholders = _placeholders(context)
    out: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(query):
        char = query[index]
        if char == "$":
            match = next(((name, value) for name, value in placeholders if query.startswith(name, index)), None)
            if match is not None:
                name, value = match
                out.append(promql_literal_text(value, quote, name) if quote else _bare(value, name))
                index += len(name)
                continue
        out.append(char)
        if quote is not None and char == "\\" and quote != "`" and index + 1 < len(query):
            out.append(query[index + 1])  # an escaped character of the template itself
            index += 2
            continue
        if quote is None and char in "\"'`":
            quote = char
        elif char == quote:
            quote = None
        index += 1
    return "".join(out)


def _longest_first(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _unquote(value: str) -> str:
    return value.replace("'", "").replace('"', "")


def _matcher(key: str, value: str) -> str:
    if not _LABEL_NAME.fullmatch(key):
        raise UnsafePlaceholder(f"the SLO filter {key!r} is not a label name (letters, digits and _)")
    operator = next((op for op in ("=~", "!~", "!=", "=") if value.startswith(op)), "=")
    # A filter may bring its own operator, e.g. `handler: "!=HealthCheckController"`.
    bare = _unquote(value[len(operator):] if value.startswith(operator) else value)
    return f"{key}{operator}'{promql_literal_text(bare, chr(39), f'the SLO filter {key}')}'"


def default_filter_expression(context: QueryContext) -> str:
    """The label matchers of the built-in queries: the SLO filters, plus Keptn's canary job unless a filter sets `job`."""
    matchers = [_matcher(key, value) for key, value in context.custom_filters]
    if not any(key == "job" for key, _ in context.custom_filters):
        job = f"{context.service}-{context.project}-{context.stage}-canary"
        matchers.insert(0, f"job='{promql_literal_text(job, chr(39), 'the job')}'")
    return ",".join(matchers)


def builtin_query(indicator: str, context: QueryContext) -> str | None:
    """Keptn's default query for a built-in indicator, or None if `indicator` is not one."""
    matchers = default_filter_expression(context)
    window = context.duration
    if indicator == THROUGHPUT:
        return f"sum(rate(http_requests_total{{{matchers}}}[{window}]))"
    if indicator == ERROR_RATE:
        return (
            f"sum(rate(http_requests_total{{{matchers},status!~'2..'}}[{window}]))"
            f"/sum(rate(http_requests_total{{{matchers}}}[{window}]))"
        )
    if indicator in (RESPONSE_TIME_P50, RESPONSE_TIME_P90, RESPONSE_TIME_P95):
        quantile = indicator.removeprefix("response_time_p")
        return f"histogram_quantile(0.{quantile},sum(rate(http_response_time_milliseconds_bucket{{{matchers}}}[{window}]))by(le))"
    return None


def build_query(indicator: str, indicators: Mapping[str, str], context: QueryContext) -> str:
    """The PromQL for `indicator`: from the merged SLI files, else a built-in; UnknownIndicator otherwise."""
    custom = indicators.get(indicator)
    try:
        if custom:
            return substitute_placeholders(custom, context)
        builtin = builtin_query(indicator, context)
    except UnsafePlaceholder as problem:
        raise UnsafeValue(indicator, "", str(problem), "a label or filter value may not change the query; "
                          "use plain values, or put the placeholder inside quotes in prometheus/sli.yaml") from None
    if builtin is not None:
        return builtin
    raise UnknownIndicator(
        indicator,
        "",
        "no query for this indicator",
        f"add it under `indicators:` in prometheus/sli.yaml of the project, stage or service "
        f"(built-in indicators: {', '.join(BUILTIN_INDICATORS)})",
    )


# -- what the answer means ---------------------------------------------------------------------------


def parse_instant_answer(indicator: str, query: str, answer: Any) -> float:
    """The single value of an `/api/v1/query` answer, or the SliError that says why there is none."""
    if not isinstance(answer, Mapping) or "status" not in answer:
        raise UnexpectedAnswer(indicator, query, "Prometheus's answer is not a query API result", _url_hint())
    if answer["status"] != "success":
        error_type = answer.get("errorType") or "error"
        error = answer.get("error") or "no reason given"
        raise QueryRejected(
            indicator, query, f"Prometheus rejected the query ({error_type}: {error})", "fix the query in prometheus/sli.yaml"
        )
    data = answer.get("data")
    if not isinstance(data, Mapping):
        raise UnexpectedAnswer(indicator, query, "Prometheus's answer has no data", _url_hint())
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "scalar":
        return _number(indicator, query, result)
    if result_type == "matrix":
        raise UnexpectedAnswer(
            indicator, query, "the query returns a range vector, not one value",
            "wrap the range selector in a function such as rate(), increase() or avg_over_time() and aggregate it",
        )
    if result_type != "vector" or not isinstance(result, list):
        raise UnexpectedAnswer(indicator, query, f"the query returns a {result_type or 'malformed'} result, not a number")
    if not result:
        raise EmptyResult(
            indicator, query, "the query matched no data in the timeframe",
            "check metric and label names (job, handler, ...) and that Prometheus scrapes the service; "
            "if no data means zero here, as for an error rate without errors, append `or vector(0)` to the query",
        )
    if len(result) > 1:
        shown = ", ".join(_labels(series) for series in result[:3])
        more = f" and {len(result) - 3} more" if len(result) > 3 else ""
        raise SeveralSeries(
            indicator, query, f"the query returned {len(result)} series ({shown}{more}) instead of one",
            "aggregate them in the query, e.g. with sum(...) or avg(...)",
        )
    series = result[0]
    return _number(indicator, query, series.get("value") if isinstance(series, Mapping) else None)


def _number(indicator: str, query: str, sample: Any) -> float:
    # A sample is [<unix time>, "<value as text>"]; Prometheus writes NaN and ±Inf as "NaN", "+Inf", "-Inf".
    if not isinstance(sample, list | tuple) or len(sample) != 2:
        raise UnexpectedAnswer(indicator, query, f"the answer's sample {sample!r} is not [time, value]")
    try:
        value = float(sample[1])
    except (TypeError, ValueError):
        raise UnexpectedAnswer(indicator, query, f"the answer's value {sample[1]!r} is not a number") from None
    if math.isnan(value):
        raise NotANumber(
            indicator, query, "the query's value is NaN (not a number)",
            "usually a division by zero or a quantile over no requests: was there traffic in the timeframe?",
        )
    if math.isinf(value):
        raise NotANumber(indicator, query, f"the query's value is {'+' if value > 0 else '-'}Inf", "check for a division by zero")
    return value


def _labels(series: Any) -> str:
    metric = series.get("metric") if isinstance(series, Mapping) else None
    if not metric:
        return "{}"
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


def _url_hint() -> str:
    return "check that the Prometheus URL is the server's base URL (without /api/v1)"


# -- the overall answer -------------------------------------------------------------------------------


def overall_result(values: Sequence[IndicatorValue]) -> tuple[Result, str]:
    """`get-sli.finished` result and message: pass if every indicator has a value, warning if some do, fail if none."""
    failed = [value for value in values if not value.success]
    if not failed:
        return Result.PASS, ""
    if len(failed) < len(values):
        names = ", ".join(value.metric for value in failed)
        return Result.WARNING, f"no value for {len(failed)} of {len(values)} indicators ({names}): " + "; ".join(
            value.message for value in failed
        )
    return Result.FAIL, f"{UNABLE_TO_RETRIEVE}: " + "; ".join(value.message for value in failed)
