"""Reports as text for people: the report's JSON in, lines out (the same from the gateway or a local store). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidegate.cli.output import table
from tidegate.qualitygate.explanation import show


def duration(seconds: float | None) -> str:
    """`90061` -> `1d 1h`, `3700` -> `1h 1m`, `75` -> `1m 15s`; None -> `-`."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{show(fraction * 100)}%"


def render_metrics(report: Mapping[str, Any]) -> list[str]:
    """The MetricsReport JSON as a summary and a table per stage and service."""
    dora, gates, remediation = report["dora"], report["qualityGates"], report["remediation"]
    production = report["productionStage"]
    lines = [
        f"Project {report['project']}: {report['since'][:10]} to {report['until'][:10]} ({show(report['windowDays'])} days)",
        "",
        f"DORA ({'production stage ' + production + ', ' + report['productionStageFrom'] if production else 'no deliveries yet'})",
        f"  deployment frequency  {dora['deployments']} successful deliveries, {show(dora['deploymentsPerDay'])} per day",
        f"  lead time for changes median {duration(dora['leadTime']['medianSeconds'])}, "
        f"p90 {duration(dora['leadTime']['p90Seconds'])} ({dora['leadTime']['count']} changes)",
        f"  change failure rate   {percent(dora['changeFailureRate'])} ({dora['failedChanges']} of {dora['changes']} changes; "
        + ", ".join(f"{cause.replace('_', ' ')} {count}" for cause, count in dora["failureCauses"].items())
        + f"; window {duration(report['failureWindowSeconds'])})",
        f"  time to restore       median {duration(dora['timeToRestore']['medianSeconds'])} "
        f"({dora['restored']} restored, {dora['unresolved']} unresolved)",
        "",
        f"Quality gates: {gates['evaluations']} evaluations ({show(gates['evaluationsPerDay'])} per day), "
        + ", ".join(f"{r} {percent(gates['shares'][r])}" for r in ("pass", "warning", "fail"))
        + f"; score median {_number(gates['score']['median'])}",
    ]
    if gates["failingSlis"]:
        lines.append("  failing most often: " + ", ".join(f"{s['sli']} ({s['failures']})" for s in gates["failingSlis"]))
    lines.append(
        f"Remediation: {remediation['actions']} actions, success rate {percent(remediation['successRate'])}, "
        f"{remediation['escalations']} escalation(s)"
    )
    for action in remediation["byAction"]:
        lines.append(f"  {action['action']}: {action['runs']} run(s): {action['succeeded']} succeeded, {action['failed']} failed, "
                     f"{action['pending']} still running (success rate {percent(action['successRate'])})")
    rows = []
    for stage in report["stages"]:
        for scope, name in [(stage, "(all)"), *((s, s["service"]) for s in stage["services"])]:
            rows.append([
                stage["stage"], name, scope["dora"]["deployments"], duration(scope["dora"]["leadTime"]["medianSeconds"]),
                percent(scope["dora"]["changeFailureRate"]), duration(scope["dora"]["timeToRestore"]["medianSeconds"]),
                scope["qualityGates"]["evaluations"], percent(scope["qualityGates"]["shares"]["pass"]),
                scope["remediation"]["actions"], scope["remediation"]["escalations"],
            ])
    if rows:
        lines += ["", table(rows, ["stage", "service", "deploys", "lead time", "cfr", "restore", "evals", "pass",
                                   "actions", "escalated"])]
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else show(value)


def render_whatif(report: Mapping[str, Any]) -> list[str]:
    """The WhatIfReport JSON: a summary, then each verdict that would change and why."""
    changed = report["changed"]
    lines = [
        f"{report['project']}/{report['stage']}/{report['service']}: {report['rescored']} of {report['evaluations']} "
        f"evaluations re-scored; {len(changed)} would change, {report['unchanged']} would not",
    ]
    if report["transitions"]:
        lines.append("  " + ", ".join(f"{move.replace('->', ' -> ')}: {n}" for move, n in report["transitions"].items()))
    for change in changed:
        lines.append("")
        lines += _change_lines(change)
    if report["skipped"]:
        lines.append("")
        lines.append("Not re-scored:")
        lines += [f"  {s['time'][:16].replace('T', ' ')} {s['id']}: {s['reason']}" for s in report["skipped"]]
    return lines


def _change_lines(change: Mapping[str, Any]) -> list[str]:
    was_score = f" ({_number(change['wasScore'])})" if change["wasScore"] is not None else ""
    lines = [
        f"{change['time'][:16].replace('T', ' ')} {change['keptnContext'] or change['id']}: was {change['wasResult']}"
        f"{was_score}, would be {change['nowResult']} ({_number(change['nowScore'])})"
    ]
    for indicator in change["indicators"]:
        value = "not measured" if indicator["value"] is None else f"= {_number(indicator['value'])}"
        missed = f", misses {', '.join(indicator['violated'])}" if indicator["violated"] else ""
        lines.append(f"  {indicator['sli']} {value}: {indicator['was'] or 'not scored'} -> {indicator['now']}{missed}")
    if change["unmeasured"]:
        lines.append(f"  not measured then: {', '.join(change['unmeasured'])}")
    if change["message"]:
        lines.append(f"  why: {change['message']}")
    return lines
