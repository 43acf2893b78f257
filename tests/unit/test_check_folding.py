"""The checks agent's folding: check-result messages in, monitor statistics, history and events out.

Raw message bytes go through CheckFolder.fold_message against in-memory tables;
what users would see is read back through tables/monitor_views.py and the
messages the folder emitted.
"""
from __future__ import annotations

import time
from itertools import count

import orjson
import pytest

from agents.monitors.fold import FUTURE_TOLERANCE, CheckFolder
from engine import topics
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from tables.monitor_data import CHUNK, KEEP_CHUNKS, DUE_INDEX, chunk_key, kind_range, position, prefix, runtime_key
from tables.monitor_views import performance, recent_checks, state_changes, uptime
from tables.uptime import DAY, HOUR, bucket_start
from tables.usage import checks_key
from tests.unit.memory_tables import memory_engine

PARTITIONS = 4
P = 1                                          # the partition these tests fold into
NOW = time.time()
H0 = bucket_start(NOW) - 6 * HOUR              # an hour well in the past, so never "in the future"


def monitor_ids(partition: int, how_many: int) -> list[str]:
    """Monitor ids whose home is `partition`."""
    found = []
    for n in count():
        candidate = f"mon_{n}"
        if partition_for(candidate, PARTITIONS) == partition:
            found.append(candidate)
            if len(found) == how_many:
                return found


MON, MON_B = monitor_ids(P, 2)
ELSEWHERE = next(mid for mid in (f"mon_x{n}" for n in count()) if partition_for(mid, PARTITIONS) != P)


class Worker:
    """A checks agent on one partition: folds messages at increasing offsets."""

    def __init__(self) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        self.dead_letters = DeadLetters(self.engine.state)
        self.folder = CheckFolder(self.engine, self.dead_letters)
        self.data = self.engine.monitor_data
        self.offsets = {partition: 0 for partition in range(PARTITIONS)}

    def add_monitor(self, monitor_id: str, org_id: str = "org_1", **spec) -> None:
        config = {
            "id": monitor_id, "org_id": org_id,
            "spec": {"grace_period": 0, "recovery_period": 0, "regions": [], **spec},
            "paused": False, "created_at": H0, "updated_at": H0, "pos": 0,
        }
        self.engine.monitors.put(partition_for(monitor_id, PARTITIONS), entity_key(monitor_id), config)

    def fold(self, message, partition: int = P) -> int:
        """Fold one message (an object, or raw bytes) at the partition's next offset; returns the offset."""
        raw = message if isinstance(message, bytes) else orjson.dumps(message)
        offset = self.offsets[partition]
        self.offsets[partition] += 1
        self.folder.fold_message(partition, offset, raw)
        return offset

    def redeliver(self, offset: int, message, partition: int = P) -> None:
        raw = message if isinstance(message, bytes) else orjson.dumps(message)
        self.folder.fold_message(partition, offset, raw)

    # what users see

    def total_checks(self, monitor_id: str = MON, period: str = "24h", now: float = NOW) -> int:
        return uptime(self.data, P, monitor_id, period, now=now)["total_checks"]

    def checks(self, monitor_id: str = MON, page: int = 1, per_page: int = 100) -> tuple[list[dict], int]:
        return recent_checks(self.data, P, monitor_id, page, per_page)

    def changes(self, monitor_id: str = MON, start: float = 0, end: float = NOW + DAY) -> list[dict]:
        return state_changes(self.data, P, monitor_id, start, end, 100)

    def events(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.MONITOR_EVENTS)]

    def letters(self) -> list[dict]:
        return [sent.body for sent in self.engine.state.on(topics.DEAD_LETTERS)]


def result(at: float, status: str = "up", monitor_id: str = MON, **extra) -> dict:
    return {"monitor_id": monitor_id, "checked_at": at, "status": status, "response_time_ms": 100.0, **extra}


@pytest.fixture
def worker() -> Worker:
    w = Worker()
    w.add_monitor(MON)
    w.add_monitor(MON_B)
    return w


def test_the_chosen_monitors_live_where_the_tests_fold():
    assert partition_for(MON, PARTITIONS) == partition_for(MON_B, PARTITIONS) == P
    assert partition_for(ELSEWHERE, PARTITIONS) != P


# -- message shapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("message, counted", [
    (result(H0 + 10), 1),
    ([result(H0 + 10), result(H0 + 20)], 2),
    ({"results": [result(H0 + 10), result(H0 + 20), result(H0 + 30)], "org_id": "org_1"}, 3),
    ({"results": [result(H0 + 10), result(H0 + 20)]}, 2),
], ids=["single-object", "json-array", "envelope-with-org", "envelope-without-org"])
def test_a_single_result_an_array_and_an_envelope_all_count(worker, message, counted):
    worker.fold(message)
    assert worker.total_checks() == counted
    assert worker.checks()[1] == counted
    assert worker.letters() == []


def test_a_recent_check_shows_what_the_probe_sent(worker):
    offset = worker.fold([
        result(H0 + 10, "down", region="eu-west", status_code=503, cause="HTTP 503", id="probe-1",
               probe="prober-7:4242"),
        result(H0 + 20, "up", region="us-east", status_code=200),
    ])
    checks, total = worker.checks()
    assert total == 2
    assert checks == [
        {"id": f"{P}-{offset}-1", "checked_at": checks[0]["checked_at"], "region": "us-east", "status": "up",
         "response_time_ms": 100.0, "status_code": 200, "cause": None, "probe": None, "reported_status": "up", "timings": None},
        {"id": "probe-1", "checked_at": checks[1]["checked_at"], "region": "eu-west", "status": "down",
         "response_time_ms": 100.0, "status_code": 503, "cause": "HTTP 503", "probe": "prober-7:4242",
         "reported_status": "down", "timings": None},
    ]
    assert checks[1]["checked_at"].endswith("Z")


def test_results_for_two_monitors_in_one_envelope_count_for_each(worker):
    worker.fold({"results": [result(H0 + 1), result(H0 + 2, monitor_id=MON_B), result(H0 + 3)]})
    assert (worker.total_checks(MON), worker.total_checks(MON_B)) == (2, 1)


# -- redelivery (invariant 4) ---------------------------------------------------------------------


def test_a_redelivered_message_changes_no_count_and_no_history(worker):
    message = result(H0 + 10, "down", cause="timeout")
    offset = worker.fold(message)
    before = (worker.total_checks(), worker.checks(), worker.changes(), list(worker.engine.state.emitted))

    worker.redeliver(offset, message)

    assert (worker.total_checks(), worker.checks(), worker.changes(), worker.engine.state.emitted) == before
    assert worker.total_checks() == 1
    assert worker.folder.duplicates == 1


def test_a_redelivered_envelope_of_three_results_counts_three(worker):
    envelope = {"results": [result(H0 + 10), result(H0 + 20, "down"), result(H0 + 30)], "org_id": "org_1"}
    offset = worker.fold(envelope)
    worker.redeliver(offset, envelope)
    assert worker.total_checks() == 3
    assert worker.checks()[1] == 3
    assert worker.folder.applied == 3
    assert worker.folder.duplicates == 3


def test_redelivering_a_whole_run_of_messages_after_later_ones_changes_nothing(worker):
    messages = [result(H0 + n * 60, "down" if n % 3 == 0 else "up") for n in range(8)]
    offsets = [worker.fold(message) for message in messages]
    expected = (worker.total_checks(), worker.checks(), worker.changes(), len(worker.events()))
    for offset, message in zip(offsets, messages):
        worker.redeliver(offset, message)
    assert (worker.total_checks(), worker.checks(), worker.changes(), len(worker.events())) == expected
    assert worker.total_checks() == 8


# -- state transitions become events --------------------------------------------------------------


def test_going_down_emits_monitor_down_once_and_recovering_emits_recovered(worker):
    worker.fold(result(H0 + 10, "up"))
    down_at = worker.fold(result(H0 + 20, "down", cause="connection refused"))
    worker.fold(result(H0 + 30, "down", cause="connection refused"))
    up_at = worker.fold(result(H0 + 40, "up"))

    sent = worker.engine.state.on(topics.MONITOR_EVENTS)
    assert [(s.key, s.partition) for s in sent] == [(entity_key(MON), P)] * 2
    down, recovered = [s.body for s in sent]
    assert down == {
        "id": f"{MON}:{position(down_at, 0)}", "event": "monitor.down", "monitor_id": MON, "org_id": "org_1",
        "at": H0 + 20, "previous_status": "up", "status": "down", "cause": "connection refused",
        "regions": {"default": "down"},
    }
    assert recovered["id"] == f"{MON}:{position(up_at, 0)}"
    assert (recovered["event"], recovered["previous_status"], recovered["status"]) == ("monitor.recovered", "down", "up")
    assert recovered["at"] == H0 + 40


def test_state_changes_are_kept_newest_first(worker):
    worker.fold(result(H0 + 10, "down", cause="timeout"))
    worker.fold(result(H0 + 20, "up"))
    changes = worker.changes()
    assert [c["event"] for c in changes] == ["monitor.recovered", "monitor.down"]
    assert [c["id"] for c in changes] == [e["id"] for e in reversed(worker.events())]
    assert changes[1]["cause"] == "timeout"
    assert changes[1]["at"].endswith("Z")


def test_a_transition_inside_an_envelope_is_identified_by_its_index(worker):
    offset = worker.fold({"results": [result(H0 + 1), result(H0 + 2), result(H0 + 3, "down")]})
    assert [e["id"] for e in worker.events()] == [f"{MON}:{position(offset, 2)}"]


def test_a_first_success_is_not_an_event(worker):
    worker.fold(result(H0 + 1, "up"))
    assert worker.events() == [] and worker.changes() == []


# -- unusable input goes to dead-letters, the rest still counts (invariant 5) ---------------------


UNKNOWN = "mon_never_created"


@pytest.mark.parametrize("messages, reason, errors", [
    ([b'{"monitor_id": "mon', result(H0 + 5)], "not JSON", {}),
    ([b"", result(H0 + 5)], "not JSON", {}),
    ([b'"just a string"', result(H0 + 5)], "a message must be a check result object", {}),
    ([[result(H0 + 5), {**result(H0 + 6), "status": "sideways"}]], "invalid check result",
     {"status": "Input should be 'up' or 'down'"}),
    ([[{**result(H0 + 6), "surprise": 1}, result(H0 + 5)]], "invalid check result",
     {"surprise": "Extra inputs are not permitted"}),
    ([[result(H0 + 5), result(H0 + 6, monitor_id=UNKNOWN)]], f"unknown monitor {UNKNOWN!r}", {}),
    ([{"results": [result(H0 + 6)], "org_id": "org_2"}, {"results": [result(H0 + 5)], "org_id": "org_1"}],
     f"unknown monitor {MON!r}", {}),
    ([[result(NOW + FUTURE_TOLERANCE + 3600), result(H0 + 5)]], "checked_at is in the future", {}),
], ids=["broken-json", "empty-message", "not-an-object", "invalid-status", "unknown-field", "unknown-monitor",
        "other-organisation", "future"])
def test_unusable_input_is_dead_lettered_and_the_good_results_still_count(worker, messages, reason, errors):
    for message in messages:
        worker.fold(message)

    [letter] = worker.letters()
    assert reason in letter["reason"]
    assert letter["errors"] == errors
    assert letter["topic"] == topics.CHECK_RESULTS
    assert letter["partition"] == P
    assert letter["id"] == f"{topics.CHECK_RESULTS}/{P}/{letter['offset']}/{letter['index']}"
    assert isinstance(letter["payload"], str)
    [sent] = worker.engine.state.on(topics.DEAD_LETTERS)
    assert (sent.key, sent.partition) == (topics.CHECK_RESULTS.encode(), P)
    assert worker.dead_letters.counts == {topics.CHECK_RESULTS: 1}
    assert worker.total_checks() == 1


def test_a_dead_letter_names_the_result_within_its_envelope(worker):
    offset = worker.fold([result(H0 + 1), result(H0 + 2), {"monitor_id": MON, "status": "up"}])
    [letter] = worker.letters()
    assert (letter["offset"], letter["index"]) == (offset, 2)
    assert letter["errors"] == {"checked_at": "Field required"}
    assert orjson.loads(letter["payload"]) == {"monitor_id": MON, "status": "up"}
    assert worker.total_checks() == 2


def test_a_huge_poison_message_is_kept_only_in_part(worker):
    worker.fold(b"x" * 50_000)
    [letter] = worker.letters()
    assert len(letter["payload"]) == 10_000


# -- results that belong to another partition -----------------------------------------------------


def test_a_result_for_a_monitor_of_another_partition_is_forwarded_there(worker):
    worker.add_monitor(ELSEWHERE)
    home = partition_for(ELSEWHERE, PARTITIONS)
    offset = worker.fold([result(H0 + 1), result(H0 + 2, "down", monitor_id=ELSEWHERE)])

    [sent] = worker.engine.state.on(topics.CHECK_RESULTS)
    assert (sent.key, sent.partition) == (entity_key(ELSEWHERE), home)
    [forwarded] = sent.body["results"]
    assert forwarded["id"] == f"{P}-{offset}-1"
    assert (forwarded["monitor_id"], forwarded["status"], forwarded["checked_at"]) == (ELSEWHERE, "down", H0 + 2)
    assert worker.checks(ELSEWHERE) == ([], 0)
    # MON's check counted here; its region is due to go stale
    indexed_ms = worker.data.get(P, runtime_key(MON)).indexed_ms
    assert worker.data.all_keys(P) == [DUE_INDEX.key(indexed_ms, MON), checks_key("org_1"), runtime_key(MON)]
    assert worker.total_checks(MON) == 1
    assert worker.events() == [] and worker.letters() == []

    # the home partition counts it, under the id given on forwarding
    worker.fold(sent.value, partition=home)
    checks, total = recent_checks(worker.data, home, ELSEWHERE, 1, 10)
    assert total == 1 and checks[0]["id"] == f"{P}-{offset}-1"


def test_a_forwarded_result_keeps_the_probes_own_id(worker):
    worker.fold(result(H0 + 1, monitor_id=ELSEWHERE, id="probe-42"))
    [sent] = worker.engine.state.on(topics.CHECK_RESULTS)
    assert sent.body["results"][0]["id"] == "probe-42"


def test_an_envelope_of_another_organisation_cannot_count_by_landing_on_the_wrong_partition(worker):
    worker.add_monitor(ELSEWHERE, org_id="org_1")
    home = partition_for(ELSEWHERE, PARTITIONS)
    worker.fold({"results": [result(H0 + 1, monitor_id=ELSEWHERE)], "org_id": "org_2"})
    for sent in worker.engine.state.on(topics.CHECK_RESULTS):
        worker.fold(sent.value, partition=sent.partition)
    assert recent_checks(worker.data, home, ELSEWHERE, 1, 10)[1] == 0
    assert worker.dead_letters.counts[topics.CHECK_RESULTS] == 1


# -- pause, resume, purge -------------------------------------------------------------------------


def control(kind: str, at: float, monitor_id: str = MON) -> dict:
    return {"kind": kind, "monitor_id": monitor_id, "at": at}


def test_results_while_paused_do_not_count(worker):
    worker.fold(result(H0 + 1, "up"))
    worker.fold(control("pause", H0 + 2))
    worker.fold(result(H0 + 3, "down"))
    worker.fold({"results": [result(H0 + 4, "down"), result(H0 + 5, "down")]})
    assert worker.data.get(P, runtime_key(MON)).state.status == "paused"
    assert worker.total_checks() == 1
    assert worker.events() == []

    worker.fold(control("resume", H0 + 6))
    worker.fold(result(H0 + 7, "down"))
    assert worker.total_checks() == 2
    assert [c["status"] for c in worker.checks()[0]] == ["down", "up"]
    assert [e["event"] for e in worker.events()] == ["monitor.down"]
    assert worker.events()[0]["previous_status"] == "unknown"  # resuming starts afresh


def test_pausing_one_monitor_leaves_the_others_counting(worker):
    worker.fold(control("pause", H0))
    worker.fold([result(H0 + 1), result(H0 + 1, monitor_id=MON_B)])
    assert (worker.total_checks(MON), worker.total_checks(MON_B)) == (0, 1)


def test_a_redelivered_pause_after_resume_does_not_pause_again(worker):
    pause_offset = worker.fold(control("pause", H0 + 1))
    worker.fold(control("resume", H0 + 2))
    worker.redeliver(pause_offset, control("pause", H0 + 1))
    worker.fold(result(H0 + 3))
    assert worker.total_checks() == 1


def test_purge_removes_every_key_of_the_monitor_and_nothing_else(worker):
    for n in range(CHUNK + 5):  # a sealed chunk, two hours, state changes
        worker.fold(result(H0 + n * 300, "down" if n % 4 == 0 else "up"))
    worker.fold(result(H0 + 1, monitor_id=MON_B))
    start, stop = prefix(MON)
    kinds = {key[len(MON) + 1:len(MON) + 2] for key in worker.data.keys(P, start, stop)}
    assert kinds == {b"s", b"b", b"c", b"h"}

    worker.fold(control("purge", H0 + DAY))

    assert worker.data.keys(P, start, stop) == []
    assert worker.checks() == ([], 0)
    assert worker.total_checks() == 0
    assert worker.changes() == []
    assert worker.total_checks(MON_B) == 1


# -- hourly buckets -------------------------------------------------------------------------------


def test_results_in_two_hours_both_count_and_make_two_points(worker):
    worker.fold(result(H0 + 10, "up"))
    worker.fold(result(H0 + HOUR + 10, "down"))
    stats = uptime(worker.data, P, MON, "24h", now=NOW)
    assert (stats["total_checks"], stats["up_checks"], stats["down_checks"]) == (2, 1, 1)
    assert stats["uptime_percentage"] == 50.0
    points = performance(worker.data, P, MON, H0, H0 + 2 * HOUR, HOUR)
    assert [(p["total_checks"], p["up_checks"]) for p in points] == [(1, 1), (1, 0)]
    assert len(worker.data.keys(P, *kind_range(MON, b"b"))) == 1  # the first hour is sealed


def test_a_late_result_for_a_sealed_hour_is_counted_once(worker):
    worker.fold(result(H0 + 10, "up"))
    worker.fold(result(H0 + HOUR + 10, "up"))
    late = result(H0 + 20, "down")
    late_offset = worker.fold(late)

    def hourly() -> list[int]:
        return [p["total_checks"] for p in performance(worker.data, P, MON, H0, H0 + 2 * HOUR, HOUR)]

    assert worker.total_checks() == 3
    assert hourly() == [2, 1]

    worker.redeliver(late_offset, late)
    assert worker.total_checks() == 3
    assert hourly() == [2, 1]

    worker.fold(result(H0 + 2 * HOUR + 10, "up"))  # and once more after another hour rolled over
    assert worker.total_checks() == 4
    assert hourly() == [2, 1]


def test_a_late_result_for_an_hour_without_results_gets_its_own_bucket(worker):
    worker.fold(result(H0 + 10))
    worker.fold(result(H0 + 3 * HOUR + 10))
    worker.fold(result(H0 + HOUR + 10, "down"))
    points = performance(worker.data, P, MON, H0, H0 + 4 * HOUR, HOUR)
    assert [(p["start"], p["total_checks"]) for p in points] == [
        (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(H0 + n * HOUR)), 1) for n in (0, 1, 3)
    ]


# -- recent checks --------------------------------------------------------------------------------


def fold_numbered(worker: Worker, how_many: int, first: int = 0) -> None:
    """Results r<first>..r<first+how_many-1>, one a second, in envelopes of up to 40."""
    numbers = list(range(first, first + how_many))
    for at in range(0, len(numbers), 40):
        worker.fold({"results": [result(H0 + n, id=f"r{n}") for n in numbers[at:at + 40]]})


@pytest.mark.parametrize("page, per_page, first, last", [
    (1, 10, 59, 50),
    (2, 10, 49, 40),   # the open chunk holds 10, so this page is the newest sealed chunk
    (1, 15, 59, 45),   # crosses from the open chunk into a sealed one
    (3, 20, 19, 0),    # crosses two sealed chunks to the very first result
    (1, 60, 59, 0),
])
def test_recent_checks_page_newest_first_across_chunks(worker, page, per_page, first, last):
    fold_numbered(worker, 2 * CHUNK + 10)
    checks, total = worker.checks(page=page, per_page=per_page)
    assert total == 2 * CHUNK + 10
    assert [c["id"] for c in checks] == [f"r{n}" for n in range(first, last - 1, -1)]


def test_a_page_past_the_end_is_empty_with_the_total(worker):
    fold_numbered(worker, 30)
    assert worker.checks(page=4, per_page=10) == ([], 30)


def test_a_monitor_without_results_has_no_recent_checks(worker):
    assert worker.checks() == ([], 0)


def test_only_the_newest_sealed_chunks_are_kept(worker):
    extra = 3
    fold_numbered(worker, (KEEP_CHUNKS + 2) * CHUNK + extra)
    kept = KEEP_CHUNKS * CHUNK + extra
    newest = (KEEP_CHUNKS + 2) * CHUNK + extra - 1

    first_page, total = worker.checks(per_page=10)
    assert total == kept
    assert first_page[0]["id"] == f"r{newest}"
    everything, _ = worker.checks(per_page=10_000)
    assert [c["id"] for c in everything] == [f"r{n}" for n in range(newest, newest - kept, -1)]
    chunks = worker.data.keys(P, *kind_range(MON, b"c"))
    assert chunks == [chunk_key(MON, n) for n in range(2, KEEP_CHUNKS + 2)]


# -- retention ------------------------------------------------------------------------------------


OLD = bucket_start(NOW - 100 * DAY)
RECENT = bucket_start(NOW - 2 * DAY)


def fold_old_then_recent(worker: Worker) -> None:
    """A chunk, two hour buckets and two state changes 100 days old, then the same 2 days old."""
    for base in (OLD, RECENT):
        worker.fold({"results": [result(base + n, "down" if n == 0 else "up") for n in range(CHUNK)]})
        worker.fold(result(base + HOUR + 1, "up"))
        worker.fold(result(base + 2 * HOUR + 1, "up"))  # seals base + HOUR


def sealed_hours(worker: Worker, monitor_id: str = MON) -> list[int]:
    return [int.from_bytes(key[-8:], "big") for key in worker.data.keys(P, *kind_range(monitor_id, b"b"))]


def test_a_tick_expires_data_older_than_retention_and_keeps_recent_data(worker):
    fold_old_then_recent(worker)
    assert sealed_hours(worker) == [OLD, OLD + HOUR, OLD + 2 * HOUR, RECENT, RECENT + HOUR]
    assert len(worker.changes()) == 4

    worker.fold({"kind": "tick", "at": NOW})

    assert sealed_hours(worker) == [RECENT, RECENT + HOUR]
    changes = worker.changes()
    assert [c["event"] for c in changes] == ["monitor.recovered", "monitor.down"]
    assert all(c["at"].startswith(time.strftime("%Y-%m-%d", time.gmtime(RECENT))) for c in changes)
    assert worker.data.keys(P, *kind_range(MON, b"c")) == [chunk_key(MON, 1)]
    assert worker.data.get(P, runtime_key(MON)) is not None
    stats = uptime(worker.data, P, MON, "7d", now=NOW)
    assert stats["total_checks"] == CHUNK + 2


def test_a_tick_keeps_everything_younger_than_retention(worker):
    fold_old_then_recent(worker)
    before = worker.data.all_keys(P)
    worker.fold({"kind": "tick", "at": OLD + 2 * DAY})
    assert worker.data.all_keys(P) == before


@pytest.mark.parametrize("hour_ends_before_cutoff, kept", [(0, False), (1, True)])
def test_an_hour_bucket_goes_once_its_whole_hour_is_past_retention(worker, hour_ends_before_cutoff, kept):
    worker.fold(result(OLD + 1))
    worker.fold(result(OLD + HOUR + 1))  # seals OLD
    retention = worker.engine.settings.retention_days * DAY
    worker.fold({"kind": "tick", "at": OLD + HOUR + retention - hour_ends_before_cutoff})
    assert sealed_hours(worker) == ([OLD] if kept else [])


def test_a_tick_also_expires_other_monitors_of_the_partition(worker):
    worker.fold({"results": [result(OLD + 1, monitor_id=MON_B), result(OLD + HOUR + 1, monitor_id=MON_B)]})
    worker.fold({"kind": "tick", "at": NOW})
    assert sealed_hours(worker, MON_B) == []


def test_after_retention_the_recent_checks_total_matches_the_rows_left(worker):
    fold_old_then_recent(worker)
    worker.fold({"kind": "tick", "at": NOW})
    rows, total = worker.checks(per_page=10_000)
    assert total == len(rows)


# -- maintenance windows and stale regions, through due ticks -----------------------------------------

WINDOW_START = H0 + HOUR                                   # a window from H0 + 1 h for 30 minutes
WINDOW = {"maintenance_cron_expression": f"0 {time.gmtime(WINDOW_START).tm_hour} * * *",
          "maintenance_duration": 1800}


def due(worker: Worker, at: float) -> int:
    return worker.fold({"kind": "due", "at": at})


def test_results_inside_a_window_are_kept_apart_and_change_no_state(worker):
    worker.add_monitor(MON, **WINDOW)
    worker.fold([result(H0 + 10, "up", region="eu"),
                 result(WINDOW_START, "down", region="eu", cause="refused"),           # start: inside
                 result(WINDOW_START + 1799, "down", region="eu", cause="refused"),
                 result(WINDOW_START + 1800, "up", region="eu")])                       # end: outside
    runtime = worker.data.get(P, runtime_key(MON))
    assert runtime.state.status == "up" and worker.changes() == [] and worker.events() == []
    checks, _ = worker.checks()
    assert [(c["status"], c["reported_status"]) for c in checks] == [
        ("up", "up"), ("maintenance", "down"), ("maintenance", "down"), ("up", "up")]
    stats = uptime(worker.data, P, MON, "24h", now=NOW, spec=WINDOW)
    assert (stats["total_checks"], stats["up_checks"], stats["maintenance_checks"]) == (2, 2, 2)
    assert stats["uptime_percentage"] == 100.0 and stats["maintenance_seconds"] == 1800


def test_windows_are_announced_by_due_ticks_once_each(worker):
    worker.add_monitor(MON, **WINDOW)
    worker.fold({"kind": "configure", "monitor_id": MON, "at": H0})
    runtime = worker.data.get(P, runtime_key(MON))
    assert runtime.indexed_ms == WINDOW_START * 1000            # due when the window opens
    due(worker, WINDOW_START - 1)
    assert worker.events() == []
    started = due(worker, WINDOW_START + 0.5)
    due(worker, WINDOW_START + 1)                                # nothing more is due: nothing more is told
    ended = due(worker, WINDOW_START + 1800.2)
    events = worker.events()
    assert [(e["event"], e["at"], e["status"]) for e in events] == [
        ("monitor.maintenance_started", WINDOW_START, "maintenance"),
        ("monitor.maintenance_ended", WINDOW_START + 1800, "unknown")]
    assert [e["id"] for e in events] == [f"{MON}:{position(started, 0)}", f"{MON}:{position(ended, 0)}"]
    assert events[0]["window"] == {"start": WINDOW_START, "end": WINDOW_START + 1800}
    assert [c["event"] for c in worker.changes()] == ["monitor.maintenance_ended", "monitor.maintenance_started"]
    assert worker.data.get(P, runtime_key(MON)).indexed_ms == (WINDOW_START + DAY) * 1000   # tomorrow's
    worker.redeliver(ended, {"kind": "due", "at": WINDOW_START + 1800.2})
    assert len(worker.events()) == 2


def test_the_monitor_shows_maintenance_while_a_window_is_open(worker):
    from tables.monitor_views import monitor_view
    worker.add_monitor(MON, **WINDOW)
    worker.fold({"kind": "configure", "monitor_id": MON, "at": WINDOW_START + 60})   # configured inside one
    config = worker.engine.monitors.get(P, entity_key(MON))
    view = monitor_view(config, worker.data.get(P, runtime_key(MON)), now=WINDOW_START + 120)
    assert view["status"] == "maintenance" and view["maintenance"]["ends_at"].endswith(":30:00.000Z")
    assert monitor_view(config, worker.data.get(P, runtime_key(MON)), now=WINDOW_START + 1800)["status"] == "unknown"
    assert [e["event"] for e in worker.events()] == ["monitor.maintenance_started"]


def test_a_silent_region_goes_stale_on_the_due_tick_with_its_probe(worker):
    worker.add_monitor(MON, interval_seconds=10, timeout_seconds=5, regions=["eu", "us"])   # stale after 35 s
    worker.fold([result(H0, "up", region="eu", probe="eu-1:10"), result(H0, "down", region="us", probe="us-1:20",
                                                                        cause="refused")])
    worker.fold([result(H0 + 20, "up", region="eu", probe="eu-1:10")])
    assert worker.data.get(P, runtime_key(MON)).indexed_ms == (H0 + 35) * 1000
    due(worker, H0 + 35)                                          # us goes stale; eu is due at H0 + 55
    tick = due(worker, H0 + 55.5)                                 # and now eu too
    events = worker.events()
    assert [(e["event"], e["region"], e["probe"], e["at"], e["status"]) for e in events] == [
        ("monitor.stale", "us", "us-1:20", H0 + 35, "up"), ("monitor.stale", "eu", "eu-1:10", H0 + 55, "unknown")]
    assert events[1]["id"] == f"{MON}:{position(tick, 0)}" and events[1]["last_seen_at"] == H0 + 20
    runtime = worker.data.get(P, runtime_key(MON))
    assert runtime.state.status == "unknown" and runtime.indexed_ms is None   # nothing left to wait for
    worker.redeliver(tick, {"kind": "due", "at": H0 + 55.5})
    assert len(worker.events()) == 2
    worker.fold([result(H0 + 60, "up", region="eu", probe="eu-2:11")])       # fresh again
    assert worker.data.get(P, runtime_key(MON)).state.status == "up"


def test_no_region_goes_stale_inside_a_window_but_after_it(worker):
    worker.add_monitor(MON, interval_seconds=60, timeout_seconds=30, **WINDOW)   # stale after 210 s
    worker.fold([result(WINDOW_START - 100, "up", region="eu", probe="eu-1")])
    due(worker, WINDOW_START)                                      # the window opens first
    due(worker, WINDOW_START + 1000)                               # eu silent, but inside the window
    assert [e["event"] for e in worker.events()] == ["monitor.maintenance_started"]
    due(worker, WINDOW_START + 1800)
    assert [e["event"] for e in worker.events()] == [
        "monitor.maintenance_started", "monitor.maintenance_ended", "monitor.stale"]


def test_a_purged_monitor_leaves_no_due_entry(worker):
    worker.add_monitor(MON, **WINDOW)
    worker.fold({"kind": "configure", "monitor_id": MON, "at": H0})
    worker.fold({"kind": "purge", "monitor_id": MON, "at": H0})
    assert worker.data.all_keys(P) == []
    due(worker, NOW)
    assert worker.events() == []


def test_a_region_is_alive_when_its_results_arrive_whatever_they_report_on(worker):
    worker.add_monitor(MON, interval_seconds=10, timeout_seconds=5)             # stale after 35 s
    arrived = H0 + 3600
    worker.folder.fold_message(P, 0, orjson.dumps(result(H0, region="eu", probe="eu-1")), arrived)  # buffered
    worker.offsets[P] = 1
    region = worker.data.get(P, runtime_key(MON)).state.regions["eu"]
    assert region.last_seen_at == arrived and region.last_checked_at == H0
    due(worker, arrived + 34)
    assert worker.events() == []
    due(worker, arrived + 35)
    assert [(e["event"], e["at"]) for e in worker.events()] == [("monitor.stale", arrived + 35)]


def test_a_probes_phase_timings_are_kept_with_the_check_and_averaged_in_performance(worker):
    timings = {"dns_ms": 2.0, "connect_ms": 4.0, "tls_ms": 10.0, "ttfb_ms": 30.0, "total_ms": 50.0}
    worker.fold([result(H0 + 10, "up", timings=timings, probe="p:1"),
                 result(H0 + 20, "up", timings={**timings, "dns_ms": 4.0, "tls_ms": None}, probe="p:1"),
                 result(H0 + 30, "up")])  # posted without timings
    checks, _ = worker.checks()
    second = {"dns_ms": 4.0, "connect_ms": 4.0, "ttfb_ms": 30.0, "total_ms": 50.0}  # no TLS phase: left out
    assert [check["timings"] for check in checks] == [None, second, timings]
    points = performance(worker.data, P, MON, H0, H0 + 3600, 3600)
    assert points[0]["avg_phase_ms"] == {"connect": 4.0, "dns": 3.0, "tls": 10.0, "total": 50.0, "ttfb": 30.0}
