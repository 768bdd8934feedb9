"""Every error the Prometheus SLI provider can meet, in one place.

    PrometheusError                 talking to Prometheus failed (no indicator involved)
     ├── PrometheusUnavailable      connection refused, timeout, or 5xx after all retries
     └── PrometheusRefused          an answer that is not the query API: wrong URL, credentials, non-JSON
    SliError                        one indicator has no value; names the indicator, the query and why
     ├── UnknownIndicator           no query in the SLI files and no built-in of that name
     ├── InvalidTimeframe           start/end missing, unreadable, or end not after start
     ├── UnsafeValue                a label or filter value that would change the query's structure
     ├── QueryNotAnswered           Prometheus could not be asked (wraps a PrometheusError)
     ├── QueryRejected              Prometheus answered `status: error` (bad PromQL, execution error)
     ├── EmptyResult                the query matched no series
     ├── SeveralSeries              the query returned more than one series
     ├── NotANumber                 the value is NaN or ±Inf
     └── UnexpectedAnswer           a range vector, a string, or a malformed answer

An `SliError` never escapes `get_slis`: it becomes that indicator's `success: false` with the error's
text as message, so one bad query does not cost the other indicators their values.
"""

from __future__ import annotations

from tidegate.schemas.errors import TidegateError


class PrometheusError(TidegateError):
    """Talking to Prometheus at `url` failed; `url` never contains credentials."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{reason} (Prometheus at {url})")
        self.url = url
        self.reason = reason


class PrometheusUnavailable(PrometheusError):
    """No usable answer after all retries: Prometheus is down, unreachable, too slow, or failing (5xx)."""


class PrometheusRefused(PrometheusError):
    """Prometheus (or something in front of it) refused the request: fix the URL or the credentials."""


class SliError(TidegateError):
    """Indicator `indicator` has no value. `query` is the PromQL that was (or would have been) run."""

    def __init__(self, indicator: str, query: str, reason: str, hint: str = "") -> None:
        self.indicator = indicator
        self.query = query
        self.reason = reason
        self.hint = hint
        text = f"indicator {indicator!r}: {reason}"
        if hint:
            text += f"; {hint}"
        if query:
            text += f" (query: {query})"
        super().__init__(text)


class UnknownIndicator(SliError):
    pass


class InvalidTimeframe(SliError):
    pass


class UnsafeValue(SliError):
    pass


class QueryNotAnswered(SliError):
    pass


class QueryRejected(SliError):
    pass


class EmptyResult(SliError):
    pass


class SeveralSeries(SliError):
    pass


class NotANumber(SliError):
    pass


class UnexpectedAnswer(SliError):
    pass
