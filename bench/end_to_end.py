"""`python -m bench.end_to_end`: `make bench`'s end-to-end step alone, with the worker's CPU per result.

One embedded broker, one worker, one API; 2,000 monitors; envelopes of 500 results produced straight
to `check-results`; timed from the first produce until the worker has applied the last. Prints the
rate and the worker's CPU time per result, which other load on the machine disturbs far less than
the rate. To compare two commits, run this file against a checkout of each, taking turns (it needs only
bench/run.py's helpers, which older commits have too):

    git worktree add --detach ../before <commit>
    (cd ../before && PYTHONPATH=. ../main/.venv/bin/python ../main/bench/end_to_end.py)
    PYTHONPATH=. .venv/bin/python bench/end_to_end.py
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.run import cpu_seconds, create_monitors, produce_envelopes, start_cluster, worker_health
from engine.broker import EmbeddedBroker
from tests.integration.cluster import wait_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=300_000)
    parser.add_argument("--monitors", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingstream-e2e-") as tmp:
        with EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker:
            cluster, worker, _, _, _, client = start_cluster(broker, Path(tmp), "bench-end-to-end")
            try:
                monitors = create_monitors(client, args.monitors)
                time.sleep(3)  # creation's own work done
                before = worker_health(cluster, worker)["results_applied"]
                cpu = cpu_seconds(worker.popen.pid)
                started = time.perf_counter()
                asyncio.run(produce_envelopes(broker.bootstrap, monitors, args.results, 500))
                wait_for("every result to be applied",
                         lambda: worker_health(cluster, worker)["results_applied"] - before >= args.results, 600,
                         interval=0.05)
                seconds = time.perf_counter() - started
                cpu = cpu_seconds(worker.popen.pid) - cpu
            finally:
                cluster.stop()
    print(f"end to end: {args.results / seconds:,.0f} results/s; worker CPU {cpu / args.results * 1e6:.2f} µs "
          f"per result ({args.results:,} results, {args.monitors:,} monitors)")


if __name__ == "__main__":
    main()
