"""Faust worker for the restart test: counts pings per key in a RocksDB table.

Each new count is also sent to ``<app id>-counts`` so the test can watch
progress. Configured through environment variables set by the test.
"""

from __future__ import annotations

import os

import faust

from engine.tansu_offsets import install

APP_ID = os.environ["RESTART_APP_ID"]

app = faust.App(
    APP_ID,
    broker=os.environ["RESTART_APP_BROKER"],
    datadir=os.environ["RESTART_APP_DATADIR"],
    store="rocksdb://",
    processing_guarantee="at_least_once",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    key_serializer="json",
    value_serializer="json",
    topic_partitions=4,
    # Batch changelog writes, as under real load, so Tansu's end-offset defect shows.
    producer_linger=0.05,
)

pings = app.topic(f"{APP_ID}-pings", key_type=str, value_type=str, partitions=4)
counts_out = app.topic(f"{APP_ID}-counts", key_type=str, value_type=int, partitions=4)
counts = app.Table("counts", default=int, partitions=4)


@app.agent(pings)
async def count_pings(stream: faust.StreamT[str]) -> None:
    async for key, _ping in stream.items():
        counts[key] += 1
        await counts_out.send(key=key, value=counts[key])


if os.environ.get("RESTART_APP_TANSU_FIX") == "1":
    install(app)
