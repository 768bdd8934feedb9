"""The tests connector (Keptn's locust-service and jmeter-service): `test.triggered` load tests.

    TestsConnector()                       the connector
    LocustLimits, locust_stats, judge_locust, jmeter_stats, judge_jmeter   verdicts from result files
"""

from tidegate.connectors.tests.connector import TestsConnector, locust_argv, target_url
from tidegate.connectors.tests.verdicts import (
    LoadStats,
    LocustLimits,
    ResultFileError,
    Verdict,
    jmeter_stats,
    judge_jmeter,
    judge_locust,
    locust_stats,
)

__all__ = [
    "LoadStats",
    "LocustLimits",
    "ResultFileError",
    "TestsConnector",
    "Verdict",
    "jmeter_stats",
    "judge_jmeter",
    "judge_locust",
    "locust_argv",
    "locust_stats",
    "target_url",
]
