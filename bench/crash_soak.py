"""The crash-exactness scenario of tests/integration/crash_scenario.py at full size, as often as asked.

    python -m bench.crash_soak                     # 300,000 results through the API, 5 SIGKILLs of the worker
    python -m bench.crash_soak --runs 10 --load 2  # ten times, with two CPU-burning processes beside it

Prints one line per run (accepted, counted, lost, counted twice, how soon each
restarted worker folded again) and exits non-zero unless every run was exact.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.integration.cluster import cpu_burners
from tests.integration.crash_scenario import scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--results", type=int, default=300_000)
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--load", type=int, default=0, help="CPU-burning processes beside the scenario")
    args = parser.parse_args()
    exact = 0
    for run in range(1, args.runs + 1):
        with cpu_burners(args.load), tempfile.TemporaryDirectory(prefix="pingstream-soak-") as root:
            outcome = scenario(Path(root), results=args.results, monitors=args.monitors, kills=args.kills, seed=run)
        exact += outcome.exact
        print(f"run {run}: {'exact' if outcome.exact else 'NOT EXACT'}: {outcome.line()}", flush=True)
        if outcome.monitors_wrong:
            print(f"  monitors with wrong counts: {', '.join(outcome.monitors_wrong[:10])}", flush=True)
    print(f"{exact} of {args.runs} runs exact ({args.results:,} results, {args.kills} SIGKILLs each, "
          f"{args.load} CPU burners beside)")
    sys.exit(0 if exact == args.runs else 1)


if __name__ == "__main__":
    main()
