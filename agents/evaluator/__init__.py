"""The evaluator agent: Keptn's lighthouse flow around the quality-gate engine (`tidegate.qualitygate`).

Core (pure, no I/O): `flow.decide(state, event, config, now)`; `shell.py` bundles it as an
`agents.kernel.Agent` (`AGENT`, `hosted(ctx)`), which a host runs (the loop host by default).
"""
