"""What an organisation uses, counted where it happens, and what its plan allows.

Each partition counts for the organisations whose monitors it owns; the API adds
the partitions up (GET /v1/account/usage). Per organisation and partition, one
record per counter, each with one writer (invariant 1):

    monitors table       ff 'active' 00 <org>   {"active": n, "pos": offset}        agents.monitors.commands
    monitor_data table   00 'u' <org>           {"pos": offset, "hours": [[hour, n], ...]}   agents.monitors.fold

No monitor id starts with either byte, and scans of monitor configurations stop
before ff. How many monitors and heartbeats an organisation has is its index
count (tables/org_index.py), in the organisation's partition.

Exact under redelivery as the per-monitor state is: a counter remembers the
source offset it last counted, so a redelivered message adds nothing again, and
it is written with TableStore.place before the records it counts, so any prefix
of a flush that holds a counted change holds its count too.
"""
from __future__ import annotations

from tables.plans import plan_named
from tables import org_index
from tables.store import TableStore
from tables.uptime import HOUR, bucket_start

KEPT_HOURS = 25   # the current hour and the 24 before it: always at least a full day


# -- plan limits -------------------------------------------------------------------


def limit_refusal(team: dict | None, collection: str, count: int) -> dict | None:
    """The error body when a team holding `count` of `collection` may not add one more; None when it may.

    A team without a record (none after bootstrap and sign-up create one) is not limited.
    """
    if team is None:
        return None
    plan = plan_named(team.get("plan"))
    limit = plan.limit_of(collection)
    if limit is None or count < limit:
        return None
    return {"error": "plan_limit_reached",
            "message": f"Your {plan.name} plan allows {limit} {collection}; delete some or upgrade the plan."}


# -- active monitors (agents.monitors.commands) -------------------------------------


def active_key(org_id: str) -> bytes:
    return b"\xffactive\x00" + org_id.encode()


def count_active(monitors: TableStore, partition: int, offset: int, org_id: str, delta: int) -> None:
    """Before the configuration change at `offset` is written: it makes `delta` more monitors active."""
    key = active_key(org_id)
    record = monitors.get(partition, key)
    if record is not None and record["pos"] >= offset:
        return  # counted before a crash or rebalance redelivered the command
    monitors.place(partition, key, {"active": (0 if record is None else record["active"]) + delta, "pos": offset})


def active_monitors(monitors: TableStore, partition: int, org_id: str) -> int:
    record = monitors.get(partition, active_key(org_id))
    return 0 if record is None else record["active"]


# -- checks per hour (agents.monitors.fold) ----------------------------------------


def checks_key(org_id: str) -> bytes:
    return b"\x00u" + org_id.encode()


CHECKS_RANGE = (b"\x00u", b"\x00v")   # every organisation's check counter in a partition


def checks_counter(data: TableStore, partition: int, org_id: str, offset: int) -> dict | None:
    """The counter message `offset` adds the organisation's checks to, or None if it already did.

    Call it before the first monitor runtime of the organisation changes: the
    counter is placed ahead of them. The caller changes it while it folds the
    message (a flush freezes whole messages, so no half-counted one is sent).
    """
    key = checks_key(org_id)
    record = data.get(partition, key)
    if record is not None and record["pos"] >= offset:
        return None
    counter = {"pos": -1, "hours": []} if record is None else record
    data.place(partition, key, counter)
    return counter


def add_checks(counter: dict, offset: int, now: float, how_many: int) -> None:
    """Count `how_many` checks of message `offset`, folded at `now`; hours past KEPT_HOURS go."""
    hour = bucket_start(now)
    hours = [pair for pair in counter["hours"] if pair[0] > hour - KEPT_HOURS * HOUR]
    if hours and hours[-1][0] == hour:
        hours[-1] = [hour, hours[-1][1] + how_many]
    else:
        hours.append([hour, how_many])
    counter["hours"] = hours
    counter["pos"] = offset


def checks_in_last_day(data: TableStore, partition: int, org_id: str, now: float) -> int:
    """Checks folded since the start of the hour 24 hours ago (between 24 and 25 hours)."""
    record = data.get(partition, checks_key(org_id))
    if record is None:
        return 0
    since = bucket_start(now) - (KEPT_HOURS - 1) * HOUR
    return sum(n for hour, n in record["hours"] if hour >= since)


def expired_checks_counters(data: TableStore, partition: int, now: float) -> list[bytes]:
    """Counters of organisations that folded no check in KEPT_HOURS: nothing left to report."""
    since = bucket_start(now) - (KEPT_HOURS - 1) * HOUR
    return [key for key, record in data.scan(partition, *CHECKS_RANGE)
            if not record["hours"] or record["hours"][-1][0] < since]


# -- one partition's share (the owner read behind GET /v1/account/usage) -----------


def partition_usage(monitors: TableStore, monitor_data: TableStore, index: TableStore, partition: int,
                    org_id: str, now: float) -> dict:
    return {
        "monitors": org_index.count(index, partition, org_id, "monitors"),
        "heartbeats": org_index.count(index, partition, org_id, "heartbeats"),
        "monitors_active": active_monitors(monitors, partition, org_id),
        "checks_last_24h": checks_in_last_day(monitor_data, partition, org_id, now),
    }
