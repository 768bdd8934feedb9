"""The Bridge: Tidegate's web UI, served by the gateway under `/bridge`.

Server-rendered pages (Jinja2) over the gateway's history store and configuration catalog, with a
small script for live updates (server-sent events) and conveniences; every action goes through the
gateway's API code, so the Bridge cannot send anything the API would refuse.

    install(app)                the gateway extension that serves the Bridge (`create_app(extensions=...)`)
    router                      its FastAPI router
    BridgeData                  every read the pages make (history store + catalog)
    build_timeline, heatmap, score_chart, read_evaluation, environment, remediation_run
                                the pure view models behind the pages
"""

from tidegate.bridge.data import BridgeData
from tidegate.bridge.evaluations import Evaluation, heatmap, read_evaluation, score_chart
from tidegate.bridge.overview import environment
from tidegate.bridge.remediations import remediation_run
from tidegate.bridge.routes import install, router
from tidegate.bridge.timeline import Timeline, build_timeline

__all__ = [
    "BridgeData",
    "Evaluation",
    "Timeline",
    "build_timeline",
    "environment",
    "heatmap",
    "install",
    "read_evaluation",
    "remediation_run",
    "router",
    "score_chart",
]
