"""The hosts that run any agent written against `agents.kernel`: `loop` (the shared consume-decide-produce
loop of `tidegate.streams.kafka.loop`, in a thread of the worker) and `faust` (Faust agents and a table
in the worker's app). Each exposes `register(ctx, hosted)`; `agents.worker.HOSTS` says which runs which.
"""
