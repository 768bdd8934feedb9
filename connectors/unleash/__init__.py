"""The unleash connector: `toggle-feature` actions through Unleash's admin API.

    UnleashConnector(settings, api)    UnleashSettings (TIDEGATE_UNLEASH_URL, _TOKEN, _PROJECT, _ENVIRONMENT)
    UnleashApi, UnleashHttp, UnleashError
"""

from tidegate.connectors.unleash.api import UnleashApi, UnleashError, UnleashHttp
from tidegate.connectors.unleash.connector import TOGGLE_FEATURE, UnleashConnector, UnleashSettings, toggles

__all__ = ["TOGGLE_FEATURE", "UnleashApi", "UnleashConnector", "UnleashError", "UnleashHttp", "UnleashSettings",
           "toggles"]
