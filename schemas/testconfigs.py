"""Load-test configurations: `jmeter/jmeter.conf.yaml` and `locust/locust.conf.yaml` (reference §6.2, §6.3).

Both list workloads by test strategy; the `test` task's `teststrategy` property picks one.

    JMeterConfig.model_validate(raw).workload("performance")   # falls back to Keptn's built-in defaults
    LocustConfig.model_validate(raw).workload("functional")     # None: run the default locustfile

The JMeter models live in `schemas.jmeter` (whose import creates Keptn's default JMeter workloads):
a Locust file does not build them. Their names stay importable from here, looked up on first use.
"""

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidegate.schemas.lazy import lazy_surface
from tidegate.schemas.nulls import empty_list, null_is_empty_list

_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True)


# -- JMeter: in schemas.jmeter ---------------------------------------------------------------------

_JMETER: dict[str, str] = dict.fromkeys(("DEFAULT_JMETER_WORKLOADS", "JMeterConfig", "JMeterWorkload"), "jmeter")
if TYPE_CHECKING:  # `X as X`: re-exported, for type checkers
    from tidegate.schemas.jmeter import DEFAULT_JMETER_WORKLOADS as DEFAULT_JMETER_WORKLOADS
    from tidegate.schemas.jmeter import JMeterConfig as JMeterConfig
    from tidegate.schemas.jmeter import JMeterWorkload as JMeterWorkload
else:
    __getattr__, __dir__ = lazy_surface(__name__, _JMETER, base="tidegate.schemas")


# -- Locust ---------------------------------------------------------------------------------------

DEFAULT_LOCUST_SCRIPT = "locust/locustfile.py"
"""Run when a service has no locust.conf.yaml at all."""
DEFAULT_LOCUST_USERS = 10
DEFAULT_LOCUST_RUN_TIME = "2m"
"""`--users` and `--run-time` given to locust when the workload names no `conf` file."""


class LocustWorkload(BaseModel):
    """One Locust run: a locustfile (`script`) and/or a locust configuration file (`conf`).

    With neither, locust-service skipped the test and reported pass.
    """

    model_config = _CONFIG

    teststrategy: str
    script: str | None = None
    conf: str | None = None


class LocustConfig(BaseModel):
    model_config = _CONFIG

    spec_version: str | None = None
    workloads: list[LocustWorkload] = Field(default_factory=empty_list)

    _null_is_empty = field_validator("workloads", mode="before")(null_is_empty_list)

    def workload(self, teststrategy: str) -> LocustWorkload | None:
        """The workload for a strategy; when several match, the last one wins, as in locust-service."""
        found: LocustWorkload | None = None
        for candidate in self.workloads:
            if candidate.teststrategy == teststrategy:
                found = candidate
        return found
