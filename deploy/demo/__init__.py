"""`make demo`: the Sock Shop story on one machine, with real Kafka, Prometheus, Alertmanager and Locust.

    python -m deploy.demo [--non-interactive] [--keep-running]     # set up, play, summarise
    python -m deploy.demo down                                     # stop everything it started

Modules: `config` (ports, paths, story parameters), `stack` (Kafka, topics, Prometheus, Alertmanager,
Tidegate's processes; up and down), `story` (the acts), `narrate` and `facts` (pure: what to print,
what happened), `feed` (a keptnContext's live events), `cli` (the `tidegate` commands the story runs),
`supervisor` (background processes with pid files), `shoppers` (the locustfile of production's load).
"""
