"""How much linear-time regexes cost in ruleset evaluation, against Python's backtracking `re`, in one run.

The 20 webhook rulesets of `make bench` (an equal, a regex over every alert's
job label, an exists) judged against Alertmanager events, three ways: with
the RE2 matcher pingstream uses, with google-re2's public `search`, and with
Python's `re` (fast on friendly patterns, but one hostile pattern stalls the
worker for every tenant: the reason pingstream does not use it).

    python -m bench.conditions [--events 20000]
"""
from __future__ import annotations

import argparse
import re
import time
from unittest import mock

from bench.run import alertmanager_event
from tables import conditions
from tables.conditions import all_hold, compile_conditions

RULES = [[{"key": "commonLabels.severity", "operator": "equal", "values": ["critical"]},
          {"key": "alerts[*].labels.job", "operator": "matches", "values": [f"^http_check{n}?s$"]},
          {"key": "alerts[0].fingerprint", "operator": "exists"}] for n in range(20)]


def judge_all(events: list[dict], rulesets: list) -> tuple[float, int]:
    started, matched = time.perf_counter(), 0
    for event in events:
        for rules in rulesets:
            matched += all_hold(rules, event["json"])
    return time.perf_counter() - started, matched


def with_public_search(found: object, pattern: object) -> bool:
    if isinstance(found, (dict, list)) or not isinstance(pattern, str):
        return False
    return conditions.user_regex(pattern).search(str(found)[:conditions.MAX_SUBJECT]) is not None


def with_backtracking_re(found: object, pattern: object) -> bool:
    if isinstance(found, (dict, list)) or not isinstance(pattern, str):
        return False
    return re.search(pattern, str(found)[:conditions.MAX_SUBJECT]) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    now = time.time()
    events = [alertmanager_event("whk_bench", n, 2_000, now) for n in range(args.events)]
    rulesets = [compile_conditions(rules) for rules in RULES]
    ways = {"RE2, pingstream's matcher": None, "RE2, google-re2's search()": with_public_search,
            "Python re (backtracking)": with_backtracking_re}
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, replacement in ways.items():
            if replacement is None:
                seconds, matched = judge_all(events, rulesets)
            else:
                with mock.patch.object(conditions, "_matches", replacement):
                    seconds, matched = judge_all(events, rulesets)
            best[name] = min(best.get(name, seconds), seconds)
    baseline = best["Python re (backtracking)"]
    for name, seconds in best.items():
        print(f"{name:28} {args.events / seconds:10,.0f} events/s ({len(RULES)} rulesets each)  "
              f"{seconds / baseline:4.2f}x the time of Python re")


if __name__ == "__main__":
    main()
