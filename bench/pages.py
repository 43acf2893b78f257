"""Pages under load: many concurrent pages, each with escalation steps and repeats, a worker SIGKILLed meanwhile.

    python -m bench.pages            # the issue's size: 1,000 pages, 3 steps 10 s apart, 30 s repeats, 2 SIGKILLs
    python -m bench.pages --pages 100 --kills 1 --run 40  # smaller

`--people` members of one team, each with a verified webhook channel on a real
local aiohttp receiver, are paged in turn (a channel keeps its newest 200
deliveries: one person paged by hundreds of pages at once would measure that
limit, not the timers); each page escalates three times (to its person) and
repeats until the bench cancels it. The only worker is SIGKILLed and
restarted from its data directory `--kills` times while timers are due, each
kill at least 10 s after the worker serves again. Then:

* lateness: receiver arrival time minus the message's due time (`data.due_at`),
  p50/p99/max, over all messages and over those due while a worker was serving;
* duplicates: message ids the receiver saw more than once (must be 0);
* missed steps: (page, step) messages the receiver never got (must be 0);
  repeats not sent: repeats the page's own rules, replayed without gaps, ask
  for but the receiver never got: a worker down for longer than an interval
  sends only the latest (by design), and a repeat due in the moment the bench
  cancels the page may lose the race to the cancel.
Prints one JSON line and exits non-zero unless duplicates and missed are 0.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import aiohttp

from tables.pages import fire, new_page, open_page
from tests.integration.accounts import invite, person
from tests.integration.cluster import wait_for
from tests.integration.conftest import running_cluster
from tests.integration.paging import pages_seen, webhook_channel
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


async def create_pages(base: str, token: str, bodies: list[dict], concurrency: int = 16) -> list[str]:
    ids: list[str] = []
    queue = list(bodies)
    headers = {"Authorization": f"Bearer {token}"}

    async def creator(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            async with session.post(f"{base}/v1/pages", json=body, headers=headers) as answer:
                assert answer.status == 201, await answer.text()
                ids.append((await answer.json())["page_id"])

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(creator(session) for _ in range(concurrency)))
    return ids


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def replayed(page: dict, user: dict, first_due: float, ended: float) -> set[str]:
    """Every message id the page's rules ask for from its creation to its end, with a tick every 50 ms."""
    spec = {"subject": page["subject"], "repeat_interval_s": page["repeat_interval_s"],
            "escalation": page["escalation"]}
    record = new_page(page["id"], "org", spec, first_due, None)
    ids = {m.message_id for m in open_page(record, [user])}
    at = first_due
    while at < ended - 0.002:
        ids |= {m.message_id for m in fire(record, at, lambda step: [user])}
        at += 0.05
    return ids


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--delay", type=int, default=10, help="seconds between escalation steps")
    parser.add_argument("--repeat", type=int, default=30, help="repeat interval (seconds)")
    parser.add_argument("--run", type=float, default=75.0, help="seconds the pages stay active")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--people", type=int, default=20, help="pages go round these people, each with a webhook")
    parser.add_argument("--root", help="keep the cluster's data and logs here (default: a temporary directory)")
    args = parser.parse_args()
    env = {"PINGSTREAM_PAGE_MIN_DELAY": "1", "PINGSTREAM_PAGE_MIN_REPEAT": "1", "PINGSTREAM_SIGNUP_PLAN": "self-hosted"}
    with Mailbox() as mailbox, HttpReceiver() as receiver, \
            tempfile.TemporaryDirectory(prefix="pingstream-pages-") as scratch, \
            running_cluster(Path(args.root or scratch), workers=1,
                            env={**mailbox.env, **receiver.env, **env}) as cluster:
        ada = person(cluster, mailbox, "ada")
        people = [ada] + [invite(cluster, mailbox, ada, ada.team_id, f"p{n}") for n in range(args.people - 1)]
        hooks = [webhook_channel(someone, receiver) for someone in people]
        bodies = [{"subject": "load", "target_user_id": people[n % len(people)].user_id,
                   "repeat_interval_s": args.repeat,
                   "escalation": [{"delay_seconds": args.delay, "target_user_id": people[n % len(people)].user_id}]
                   * args.steps} for n in range(args.pages)]
        started = time.time()
        page_ids = asyncio.run(create_pages(cluster.client(None).base, ada.access_token, bodies))
        created_in = time.time() - started
        down: list[tuple[float, float]] = []  # (killed at, serving again at)
        worker = next(p for p in cluster.processes if p.name == "worker-0")
        for n in range(args.kills):
            after = max(started + (n + 1) * args.run / (args.kills + 1), down[-1][1] + 10 if down else 0.0)
            time.sleep(max(0.0, after - time.time()))
            worker.stop(signal.SIGKILL)
            killed = time.time()
            worker = cluster.start_worker(f"worker-0-life-{n + 2}", port=worker.port)
            cluster.wait_serving(worker)
            down.append((killed, time.time()))
        time.sleep(max(0.0, started + args.run - time.time()))
        for page_id in page_ids:
            assert ada.client.delete(f"/v1/pages/{page_id}").status == 200
        quiet = {"count": -1, "since": time.monotonic()}

        def settled() -> bool:  # no new message for 3 s
            count = sum(len(receiver.seen(hook)) for hook in hooks)
            if count != quiet["count"]:
                quiet.update(count=count, since=time.monotonic())
            return time.monotonic() - quiet["since"] > 3.0

        wait_for("every message sent", settled, 300, 0.5)
        seen = [message for hook in hooks for message in pages_seen(receiver, hook)]
        arrivals = {}
        for request in [request for hook in hooks for request in receiver.seen(hook)]:
            message = json.loads(request.body)
            if "code" not in message:
                arrivals.setdefault(message["id"], request.at)
        received = Counter(m["id"] for m in seen)
        users = {someone.user_id: {"user_id": someone.user_id, "name": None, "email": someone.email}
                 for someone in people}
        due = {m["id"]: m["data"]["due_at"] for m in seen}
        firsts = {m["data"]["page_id"]: m["data"]["due_at"] for m in seen if m["data"]["label"] == "s0"}
        expected: set[str] = set()
        for page_id in page_ids:
            page = ada.client.get(f"/v1/pages/{page_id}").body["data"]
            first_due = firsts.get(page_id, epoch(page["created_at"]))
            expected |= replayed(page, users[page["target_user_id"]], first_due, epoch(page["ended_at"]))
        steps_expected = {i for i in expected if i.rsplit(":", 1)[-1].startswith("s")}
        missed_steps = sorted(steps_expected - set(received))
        skipped_repeats = len({i for i in expected - steps_expected} - set(received))
        lateness = [arrivals[i] - due[i] for i in arrivals]
        serving = [arrivals[i] - due[i] for i in arrivals
                   if not any(killed - 1.0 <= due[i] <= back + 1.0 for killed, back in down)]
        result = {
            "pages": args.pages, "people": args.people, "steps": args.steps, "delay_s": args.delay,
            "repeat_s": args.repeat,
            "run_s": args.run, "kills": args.kills, "pages_created_in_s": round(created_in, 2),
            "worker_down_s": [round(back - killed, 1) for killed, back in down],
            "messages_received": len(received), "messages_expected_without_gaps": len(expected),
            "duplicates": sum(c - 1 for c in received.values() if c > 1),
            "missed_steps": len(missed_steps), "repeats_not_sent": skipped_repeats,
            "unexpected": len(set(received) - expected),
            "not_received_by_label": dict(Counter(i.rsplit(":", 1)[-1] for i in expected - set(received))),
            "lateness_s_all": {"p50": percentile(lateness, 0.5), "p99": percentile(lateness, 0.99),
                               "max": percentile(lateness, 1.0)},
            "lateness_s_while_serving": {"n": len(serving), "p50": percentile(serving, 0.5),
                                         "p99": percentile(serving, 0.99), "max": percentile(serving, 1.0)},
        }
        print(json.dumps(result), flush=True)
        sys.exit(0 if result["duplicates"] == 0 and not missed_steps else 1)


if __name__ == "__main__":
    main()
