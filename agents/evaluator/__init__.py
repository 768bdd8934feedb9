"""The evaluator agent: Keptn's lighthouse flow around the quality-gate engine (`tidegate.qualitygate`).

Core (pure, no I/O): `flow.decide(state, event, config, now)`; the Faust shell (`shell.py`) runs it.
"""
