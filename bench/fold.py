"""`python -m bench.fold`: results/s of the checks fold alone (no Kafka), with
CPython's default GC threshold and with the one workers use (pingstream/cli.tune_gc), in one run.

Isolates the per-result Python work: validation, the state machine, the hour bucket
and recent checks, over 2,000 monitors in 3 regions, on in-memory tables.
"""
from __future__ import annotations

import gc
import time

import orjson

from agents.monitors.fold import CheckFolder
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from pingstream.cli import tune_gc
from tests.unit.memory_tables import memory_engine

MONITORS, ENVELOPES, PER_ENVELOPE = 2_000, 300, 500


def fold_rate() -> float:
    engine = memory_engine()
    monitors = [m for m in (f"mon_{i:06d}" for i in range(40 * MONITORS)) if partition_for(m, 4) == 0][:MONITORS]
    for mid in monitors:
        engine.monitors.put(0, entity_key(mid), {
            "id": mid, "org_id": "org", "paused": False, "created_at": 0, "updated_at": 0, "pos": 0,
            "spec": {"grace_period": 0, "recovery_period": 0, "regions": ["eu-west", "us-east", "ap-south"]}})
    folder = CheckFolder(engine, DeadLetters(engine.state))
    now, n, messages = time.time(), 0, []
    for _ in range(ENVELOPES):
        results = []
        for _ in range(PER_ENVELOPE):
            results.append({"id": f"r{n}", "monitor_id": monitors[n % MONITORS],
                            "region": ("eu-west", "us-east", "ap-south")[n % 3], "checked_at": now - 3000 + n * 0.001,
                            "status": "down" if n % 97 == 0 else "up", "response_time_ms": float(20 + n % 400),
                            "status_code": 200})
            n += 1
        messages.append(orjson.dumps({"results": results}))
    started = time.perf_counter()
    for offset, message in enumerate(messages):
        folder.fold_message(0, offset, message)
    return n / (time.perf_counter() - started)


def main() -> None:
    default = fold_rate()
    tune_gc()
    tuned = fold_rate()
    gc.set_threshold(700, 10, 10)
    print(f"folding, default GC threshold: {default:,.0f} results/s")
    print(f"folding, worker GC threshold:  {tuned:,.0f} results/s ({tuned / default:.2f}x)")


if __name__ == "__main__":
    main()
