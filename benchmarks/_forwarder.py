"""A Faust agent that does nothing but forward: the reference `bench_sequencer` puts the sequencer beside.

    BENCH_SOURCE=<topic> BENCH_SINK=<topic> BENCH_FANOUT=5 faust -A benchmarks._forwarder:app worker

Built by `streams.app.create_app` with the worker's settings (same guarantees, acks, partitioner), it
sends `BENCH_FANOUT` copies of every record it consumes, as the sequencer sends its audit records,
task events and table changelog for every event. What separates the sequencer's rate from this one
is Tidegate's own work (decoding, deciding, encoding); what separates this one from the raw aiokafka
loop is Faust's.
"""

from __future__ import annotations

import os

from tidegate.streams.app import RAW, create_app
from tidegate.streams.settings import Settings

app = create_app(Settings(), "forwarder")
source, sink = (
    app.topic(os.environ[name], key_type=bytes, value_type=bytes, key_serializer=RAW, value_serializer=RAW)
    for name in ("BENCH_SOURCE", "BENCH_SINK")
)
FANOUT = int(os.environ.get("BENCH_FANOUT", "1"))


@app.agent(source, name="forwarder")
async def forwarder(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        message = event.message
        for _ in range(FANOUT):
            await sink.send(key=message.key, value=message.value)
