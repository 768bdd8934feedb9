"""sli.yaml: the queries an SLI provider runs, by indicator name (reference §5.4).

    spec_version: "1.0"        # optional; older files have none
    indicators:
      response_time_p95: histogram_quantile(0.95, sum by(le) (rate(..._bucket{job="$SERVICE-$PROJECT-$STAGE"}[$DURATION_SECONDS])))

Queries are kept as written: placeholders such as `$SERVICE`, `$STAGE` or `$DURATION_SECONDS` are
filled in by the provider at query time.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True)


class SLI(BaseModel):
    model_config = _CONFIG

    spec_version: str | None = None
    indicators: dict[str, str]

    @field_validator("indicators", mode="before")
    @classmethod
    def _at_least_one(cls, value: Any) -> Any:
        # Keptn's providers reject an SLI file without indicators ("missing required field").
        if value is None or value == {}:
            raise ValueError("missing required field: no indicators are defined; add `<name>: <query>` lines")
        return value

    def query(self, indicator: str) -> str | None:
        """The query for an indicator, or None when this file does not define it."""
        return self.indicators.get(indicator)

    def merged_with(self, more_specific: "SLI") -> "SLI":
        """This file's queries overridden by those of a more specific one (project < stage < service)."""
        return self.model_copy(update={"indicators": {**self.indicators, **more_specific.indicators}})
