"""Which events run an action: the `events:` entries of a job-executor file (`schemas.jobconfig`) and of
the command connector's file (`schemas.commandconfig`), which read them alike.

    events:
      - name: sh.keptn.event.test.triggered          # a regular expression in the job executor
        jsonpath: {property: $.data.test.teststrategy, match: locust}

Its own module so that reading a command file does not create the job-executor models; both names
are also importable from `tidegate.schemas.jobconfig`, where they were defined before.
"""

from pydantic import BaseModel, ConfigDict

# The job-executor file's settings (schemas.jobconfig declares its models with these too).
_CONFIG = ConfigDict(defer_build=True, extra="allow", coerce_numbers_to_str=True, populate_by_name=True)


class JsonPathMatch(BaseModel):
    """Run only when the value at `property` (a JSONPath into the event) equals `match`."""

    model_config = _CONFIG

    property: str
    match: str


class JobEvent(BaseModel):
    model_config = _CONFIG

    name: str
    jsonpath: JsonPathMatch | None = None
