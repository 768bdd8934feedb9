"""JMeter load-test configuration, `jmeter/jmeter.conf.yaml` (reference §6.2): workloads by test strategy,
with jmeter-service's built-in workloads as the fallback.

    JMeterConfig.model_validate(raw).workload("performance")   # falls back to Keptn's built-in defaults

Its own module (the Locust file's models are in `schemas.testconfigs`, which re-exports these names):
creating the default workloads builds the JMeter validator, which a Locust file does not need.
"""

from pydantic import BaseModel, Field, field_validator

from tidegate.schemas.nulls import empty_list, empty_mapping, null_is_empty_list, null_is_empty_mapping
from tidegate.schemas.testconfigs import _CONFIG


class JMeterWorkload(BaseModel):
    """One JMeter run. The test passes when errors <= acceptederrorrate x runs and, if set, the
    average response time (ms) is at most `avgrtvalidation`."""

    model_config = _CONFIG

    teststrategy: str
    vuser: int = Field(ge=1)
    loopcount: int = Field(ge=1)
    script: str
    thinktime: int = Field(default=0, ge=0)
    """Milliseconds between requests; Keptn's Go struct left it 0 when omitted."""
    acceptederrorrate: float = Field(default=0.0, ge=0.0)
    avgrtvalidation: int = Field(default=0, ge=0)
    properties: dict[str, str] = Field(default_factory=empty_mapping)

    _null_is_empty = field_validator("properties", mode="before")(null_is_empty_mapping)


DEFAULT_JMETER_WORKLOADS: tuple[JMeterWorkload, ...] = (
    JMeterWorkload(teststrategy="healthcheck", vuser=1, loopcount=1, thinktime=250,
                   script="jmeter/basiccheck.jmx", acceptederrorrate=0.0),
    JMeterWorkload(teststrategy="performance", vuser=10, loopcount=500, thinktime=250,
                   script="jmeter/load.jmx", acceptederrorrate=0.1),
    JMeterWorkload(teststrategy="functional", vuser=1, loopcount=1, thinktime=250,
                   script="jmeter/load.jmx", acceptederrorrate=0.1),
)
"""jmeter-service's built-in workloads (model.go), used when the file does not define the strategy."""


class JMeterConfig(BaseModel):
    model_config = _CONFIG

    spec_version: str | None = None
    workloads: list[JMeterWorkload] = Field(default_factory=empty_list)

    _null_is_empty = field_validator("workloads", mode="before")(null_is_empty_list)

    def workload(self, teststrategy: str) -> JMeterWorkload | None:
        """The file's workload for a strategy, else Keptn's default one, else None."""
        for candidate in (*self.workloads, *DEFAULT_JMETER_WORKLOADS):
            if candidate.teststrategy == teststrategy:
                return candidate
        return None
