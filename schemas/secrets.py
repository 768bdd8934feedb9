"""How configuration files name the operator's secrets: environment variables `TIDEGATE_SECRET_*`.

A file written by a resource author may ask a connector for a secret, never for any variable of the
connector (its Kafka credentials, its API token): connectors read secrets only from variables that
start with SECRET_PREFIX, which the operator sets for exactly this.

    webhook.yaml            envFrom: [{name: token, secretRef: {name: slack, key: token}}]
                            -> TIDEGATE_SECRET_SLACK_TOKEN (secret_variable)
    command/config.yaml     valueFrom: {secretEnv: TIDEGATE_SECRET_DEMO_TOKEN} (the whole name)
"""

from __future__ import annotations

import re

SECRET_PREFIX = "TIDEGATE_SECRET_"


def secret_variable(name: str, key: str) -> str:
    """The variable of a Keptn secret reference: `TIDEGATE_SECRET_<NAME>_<KEY>`, upper case, other characters `_`."""
    return SECRET_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", f"{name}_{key}").upper()


def is_secret_variable(variable: str) -> bool:
    return variable.startswith(SECRET_PREFIX) and len(variable) > len(SECRET_PREFIX)
