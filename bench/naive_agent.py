"""Baseline: the textbook Faust agent, one event and one table write per check result.

Counts results per monitor in a RocksDB table; reports its progress to a file so
the benchmark can time it. Configured by NAIVE_* environment variables.
"""
from __future__ import annotations

import os
from pathlib import Path

import faust
import orjson

from engine.tansu_offsets import install

app = faust.App(
    os.environ["NAIVE_APP_ID"],
    broker=os.environ["NAIVE_BROKER"],
    datadir=os.environ["NAIVE_DATADIR"],
    store="rocksdb://",
    topic_partitions=4,
    broker_session_timeout=6,
    broker_heartbeat_interval=0.5,
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
)
install(app)
results = app.topic(os.environ["NAIVE_TOPIC"], key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
counts = app.Table("counts", default=int, partitions=4)
progress = Path(os.environ["NAIVE_PROGRESS"])
seen = 0


@app.agent(results)
async def count_results(stream):
    global seen
    async for value in stream:
        result = orjson.loads(value)
        counts[result["monitor_id"]] += 1
        seen += 1


@app.timer(0.2)
async def report() -> None:
    progress.write_text(str(seen))


if __name__ == "__main__":
    app.main()
