"""SLI queries: merging, placeholders, Keptn's built-ins, answer parsing, overall result (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tidegate.connectors.prometheus.errors import (
    EmptyResult,
    NotANumber,
    QueryRejected,
    SeveralSeries,
    SliError,
    UnexpectedAnswer,
    UnknownIndicator,
    UnsafeValue,
)
from tidegate.connectors.prometheus.sli import (
    QueryContext,
    build_query,
    builtin_query,
    context_from_request,
    default_filter_expression,
    deployment_type,
    merge_indicators,
    overall_result,
    parse_instant_answer,
    parse_timestamp,
    substitute_placeholders,
)
from tidegate.schemas.events import Result
from tidegate.schemas.payloads import GetSLITriggered, IndicatorValue
from tidegate.schemas.sli import SLI

START = datetime(2021, 5, 10, 9, 51, tzinfo=UTC)


def context(**overrides: Any) -> QueryContext:
    values: dict[str, Any] = {
        "project": "sockshop",
        "stage": "staging",
        "service": "carts",
        "start": START,
        "end": START + timedelta(minutes=30),
        "deployment": "canary",
    }
    values.update(overrides)
    return QueryContext(**values)


# -- merging ----------------------------------------------------------------------------------------


def test_later_levels_override_earlier_ones_indicator_by_indicator() -> None:
    project = {"throughput": "project_tp", "error_rate": "project_er"}
    stage = {"error_rate": "stage_er", "response_time_p95": "stage_p95"}
    service = {"response_time_p95": "service_p95"}
    assert merge_indicators(project, stage, service) == {
        "throughput": "project_tp",
        "error_rate": "stage_er",
        "response_time_p95": "service_p95",
    }


def test_sli_file_models_merge_like_their_indicator_maps() -> None:
    project = SLI.model_validate({"indicators": {"throughput": "p", "error_rate": "p"}})
    service = SLI.model_validate({"spec_version": "1.0", "indicators": {"error_rate": "s"}})
    assert merge_indicators(project, None, service) == {"throughput": "p", "error_rate": "s"}


def test_missing_levels_are_skipped() -> None:
    assert merge_indicators(None, {}, {"a": "q"}, None) == {"a": "q"}
    assert merge_indicators() == {}


# -- placeholders ------------------------------------------------------------------------------------


def test_keptn_placeholders_are_replaced() -> None:
    query = (
        "histogram_quantile(0.95, sum by(le) (rate(http_response_time_milliseconds_bucket"
        '{handler="ItemsController.addToCart",job="$SERVICE-$PROJECT-$STAGE-$DEPLOYMENT"}[$DURATION_SECONDS])))'
    )
    assert substitute_placeholders(query, context()) == (
        "histogram_quantile(0.95, sum by(le) (rate(http_response_time_milliseconds_bucket"
        '{handler="ItemsController.addToCart",job="carts-sockshop-staging-canary"}[1800s])))'
    )


def test_duration_is_rounded_up_to_whole_seconds() -> None:
    ctx = context(end=START + timedelta(seconds=59, milliseconds=1))
    assert substitute_placeholders("[$DURATION_SECONDS]", ctx) == "[60s]"


def test_labels_and_filters_are_replaced_with_quotes_removed_from_filter_values() -> None:
    ctx = context(labels={"team": "cart-team"}, custom_filters=[("mz_id", "'4711'"), ("handler", '"addToCart"')])
    query = 'x{mz="$mz_id",h="$HANDLER",team="$LABEL.team"}'
    assert substitute_placeholders(query, ctx) == 'x{mz="4711",h="addToCart",team="cart-team"}'


def test_a_key_that_is_a_prefix_of_another_does_not_clobber_it() -> None:
    ctx = context(labels={"a": "short", "ab": "long"}, custom_filters=[("f", "1"), ("foo", "2")])
    assert substitute_placeholders("$LABEL.ab $LABEL.a $foo $f", ctx) == "long short 2 1"


def test_unknown_placeholders_are_left_as_they_are() -> None:
    assert substitute_placeholders("up{x='$NOPE'}", context()) == "up{x='$NOPE'}"


def test_deployment_label_wins_then_field_then_primary() -> None:
    assert deployment_type("canary", {"deployment": "blue"}) == "blue"
    assert deployment_type("canary", {}) == "canary"
    assert deployment_type(None, None) == "primary"
    assert deployment_type("", {"other": "x"}) == "primary"


# -- built-in queries (the strings Keptn's prometheus-service sends) ----------------------------------


def test_builtin_queries_use_the_canary_job() -> None:
    ctx = context()
    assert builtin_query("throughput", ctx) == (
        "sum(rate(http_requests_total{job='carts-sockshop-staging-canary'}[1800s]))"
    )
    assert builtin_query("error_rate", ctx) == (
        "sum(rate(http_requests_total{job='carts-sockshop-staging-canary',status!~'2..'}[1800s]))"
        "/sum(rate(http_requests_total{job='carts-sockshop-staging-canary'}[1800s]))"
    )
    assert builtin_query("response_time_p50", ctx) == (
        "histogram_quantile(0.50,sum(rate(http_response_time_milliseconds_bucket"
        "{job='carts-sockshop-staging-canary'}[1800s]))by(le))"
    )
    assert builtin_query("response_time_p90", ctx) is not None
    assert "histogram_quantile(0.95," in (builtin_query("response_time_p95", ctx) or "")
    assert builtin_query("cpu_usage", ctx) is None


def test_slo_filters_narrow_the_builtin_queries() -> None:
    ctx = context(custom_filters=[("handler", "'ItemsController'"), ("method", '!~"HEAD|OPTIONS"')])
    assert default_filter_expression(ctx) == (
        "job='carts-sockshop-staging-canary',handler='ItemsController',method!~'HEAD|OPTIONS'"
    )


def test_a_job_filter_replaces_the_canary_job() -> None:
    ctx = context(custom_filters=[("job", "carts-sockshop-staging-primary")])
    assert default_filter_expression(ctx) == "job='carts-sockshop-staging-primary'"


def test_a_query_from_the_sli_file_wins_over_the_builtin() -> None:
    indicators = {"throughput": "sum(rate(my_requests{job='$SERVICE'}[$DURATION_SECONDS]))"}
    assert build_query("throughput", indicators, context()) == "sum(rate(my_requests{job='carts'}[1800s]))"


def test_an_empty_query_in_the_sli_file_falls_back_to_the_builtin() -> None:
    assert build_query("throughput", {"throughput": ""}, context()).startswith("sum(rate(http_requests_total{")


def test_an_indicator_with_no_query_and_no_builtin_is_unknown() -> None:
    with pytest.raises(UnknownIndicator) as raised:
        build_query("cpu_usage", {"throughput": "q"}, context())
    message = str(raised.value)
    assert "'cpu_usage'" in message
    assert "prometheus/sli.yaml" in message


# -- the request ----------------------------------------------------------------------------------------


def request(**get_sli: Any) -> GetSLITriggered:
    block: dict[str, Any] = {
        "sliProvider": "prometheus",
        "start": "2021-05-10T09:51:00.000Z",
        "end": "2021-05-10T10:21:00.000Z",
        "indicators": ["response_time_p95"],
        "customFilters": [{"key": "handler", "value": "addToCart"}],
    }
    block.update(get_sli)
    return GetSLITriggered.model_validate(
        {
            "project": "sockshop",
            "stage": "staging",
            "service": "carts",
            "labels": {"buildId": "42"},
            "deployment": "canary",
            "get-sli": block,
        }
    )


def test_context_from_a_get_sli_request() -> None:
    ctx = context_from_request(request())
    assert (ctx.project, ctx.stage, ctx.service, ctx.deployment) == ("sockshop", "staging", "carts", "canary")
    assert ctx.start == START
    assert ctx.duration == "1800s"
    assert ctx.labels == {"buildId": "42"}
    assert list(ctx.custom_filters) == [("handler", "addToCart")]


def test_timestamps_in_rfc3339_or_unix_seconds() -> None:
    assert parse_timestamp("2021-05-10T09:51:00.000Z", "start") == START
    assert parse_timestamp("2021-05-10T11:51:00+02:00", "start") == START
    assert parse_timestamp("2021-05-10T09:51:00", "start") == START
    assert parse_timestamp(str(int(START.timestamp())), "start") == START


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (None, "2021-05-10T10:21:00Z", "no start time"),
        ("yesterday", "2021-05-10T10:21:00Z", "neither RFC 3339"),
        ("2021-05-10T10:21:00Z", "2021-05-10T09:51:00Z", "before or when it starts"),
    ],
)
def test_unusable_timeframes_are_explained(start: str | None, end: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        context_from_request(request(start=start, end=end))


# -- answers --------------------------------------------------------------------------------------------

QUERY = "sum(rate(http_requests_total[5m]))"


def vector(*series: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": m, "value": [1620640260.0, v]} for m, v in series]},
    }


def test_one_series_gives_its_value() -> None:
    assert parse_instant_answer("throughput", QUERY, vector(({}, "12.5"))) == 12.5


def test_a_scalar_answer_gives_its_value() -> None:
    answer = {"status": "success", "data": {"resultType": "scalar", "result": [1620640260.0, "0.25"]}}
    assert parse_instant_answer("ratio", "0.5 * 0.5", answer) == 0.25


def failure(answer: Any) -> SliError:
    with pytest.raises(SliError) as raised:
        parse_instant_answer("throughput", QUERY, answer)
    message = str(raised.value)
    # Every failure names the indicator and the query.
    assert "'throughput'" in message
    assert QUERY in message
    return raised.value


def test_no_series_is_a_failure_that_suggests_or_vector_0() -> None:
    error = failure(vector())
    assert isinstance(error, EmptyResult)
    assert "no data" in str(error)
    assert "or vector(0)" in str(error)


def test_several_series_is_a_failure_that_lists_them() -> None:
    error = failure(vector(({"instance": "a"}, "1"), ({"instance": "b"}, "2")))
    assert isinstance(error, SeveralSeries)
    assert 'instance="a"' in str(error)
    assert "2 series" in str(error)


@pytest.mark.parametrize("text", ["NaN", "+Inf", "-Inf"])
def test_nan_and_infinity_are_failures(text: str) -> None:
    error = failure(vector(({}, text)))
    assert isinstance(error, NotANumber)


def test_an_error_answer_is_a_rejected_query_with_prometheus_reason() -> None:
    error = failure({"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected <EOF>"})
    assert isinstance(error, QueryRejected)
    assert "bad_data" in str(error)
    assert "unexpected <EOF>" in str(error)


@pytest.mark.parametrize(
    "answer",
    [
        {"status": "success", "data": {"resultType": "matrix", "result": []}},
        {"status": "success", "data": {"resultType": "string", "result": [1, "x"]}},
        {"status": "success"},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "abc"]}]}},
        ["not", "a", "mapping"],
    ],
)
def test_malformed_or_range_answers_are_unexpected(answer: Any) -> None:
    assert isinstance(failure(answer), UnexpectedAnswer)


def test_a_range_vector_answer_says_how_to_fix_the_query() -> None:
    error = failure({"status": "success", "data": {"resultType": "matrix", "result": []}})
    assert "rate()" in str(error)


# -- overall result -------------------------------------------------------------------------------------


def ok(name: str) -> IndicatorValue:
    return IndicatorValue(metric=name, value=1.0, success=True)


def bad(name: str) -> IndicatorValue:
    return IndicatorValue(metric=name, value=0.0, success=False, message=f"indicator {name!r}: broken")


def test_all_values_pass() -> None:
    assert overall_result([ok("a"), ok("b")]) == (Result.PASS, "")


def test_no_indicators_pass() -> None:
    assert overall_result([]) == (Result.PASS, "")


def test_some_failed_is_a_warning_naming_them() -> None:
    result, message = overall_result([ok("a"), bad("b")])
    assert result is Result.WARNING
    assert "1 of 2" in message
    assert "'b': broken" in message


def test_all_failed_is_a_fail_with_keptns_message_and_the_reasons() -> None:
    result, message = overall_result([bad("a"), bad("b")])
    assert result is Result.FAIL
    assert message.startswith("unable to retrieve metrics")
    assert "'a': broken" in message and "'b': broken" in message


# -- values cannot rewrite the query (issue 16) --------------------------------------------------------

ATTACK = 'x"} or vector(1) or up{a="'


def test_a_label_in_quotes_is_escaped_and_cannot_close_the_matcher() -> None:
    ctx = context(labels={"h": ATTACK, "s": "it's\\\nnew"})
    assert substitute_placeholders('x{handler="$LABEL.h"}', ctx) == 'x{handler="x\\"} or vector(1) or up{a=\\""}'
    assert substitute_placeholders("x{handler='$LABEL.s'}", ctx) == "x{handler='it\\'s\\\\\\nnew'}"
    # An escaped quote of the template itself does not end the literal.
    assert substitute_placeholders('x{h="a\\"$LABEL.h"}', ctx) == 'x{h="a\\"x\\"} or vector(1) or up{a=\\""}'
    with pytest.raises(UnsafeValue, match=r"backtick"):
        build_query("q", {"q": "x{h=`$LABEL.h`}"}, context(labels={"h": "a`} or vector(1) or x{a=`"}))


def test_a_value_outside_quotes_must_be_plain() -> None:
    assert substitute_placeholders("x > $LABEL.t", context(labels={"t": "0.5"})) == "x > 0.5"
    for value in (ATTACK, "1 or vector(1)", "1)#", "1\n"):
        with pytest.raises(UnsafeValue, match=r"outside quotes") as refused:
            build_query("q", {"q": "sum(x) > $LABEL.t"}, context(labels={"t": value}))
        assert refused.value.indicator == "q"


def test_replaced_values_are_not_searched_for_placeholders_again() -> None:
    ctx = context(labels={"a": "$STAGE"})
    assert substitute_placeholders('x{a="$LABEL.a",s="$STAGE"}', ctx) == 'x{a="$STAGE",s="staging"}'


def test_slo_filters_in_the_builtin_queries_are_escaped_and_keys_must_be_label_names() -> None:
    ctx = context(custom_filters=[("handler", "x\\"), ("method", "!=a'b")])
    assert default_filter_expression(ctx) == (
        "job='carts-sockshop-staging-canary',handler='x\\\\',method!='ab'"  # quotes removed, as in Keptn
    )
    with pytest.raises(UnsafeValue, match="not a label name"):
        build_query("throughput", {}, context(custom_filters=[("job='x'} or vector(1) or up{a", "1")]))
