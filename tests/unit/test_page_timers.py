"""The page commands and their timer over in-memory tables: a tick fires what is due once, a tick applied again
asks for the same message ids, every active page keeps exactly one due entry, an acknowledged page none."""
from __future__ import annotations

import orjson

from agents.pages.commands import CLOCK, page_acknowledge, page_create
from engine import topics
from engine.commands import CommandApplier
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from tables.pages import DUE
from tests.unit.memory_tables import MemoryTable, memory_engine

ORG, ADA, BO = "org_1", "usr_ada", "usr_bo"
T0 = 1_800_000_000.0


def engine_with_team():
    engine = memory_engine(jwt_secret="j" * 40)
    engine.partitions = engine.settings.partitions
    engine.pages, engine.on_call_schedules, engine.paging_groups = (MemoryTable(n) for n in (
        "pages", "on_call_schedules", "paging_groups"))
    partition = partition_for(ORG, engine.partitions)
    engine.teams.put(partition, entity_key(ORG), {"members": {ADA: {"name": "Ada", "email": "ada@example.com"},
                                                              BO: {"name": "Bo", "email": "bo@example.com"}}})
    return engine, partition, CommandApplier(engine, DeadLetters(engine.state), {})


def sent_ids(engine) -> list[str]:
    return [orjson.loads(sent.value)["id"] for sent in engine.state.on(topics.NOTIFICATION_DELIVERIES)]


def due_entries(engine, partition) -> list[tuple[int, str]]:
    return [DUE.parse(key) for key, _ in engine.pages.scan(partition, *DUE.until(2**62))]


def tick(applier, partition, offset, at) -> None:
    CLOCK.tick(applier, partition, offset, {"kind": "page.tick", "id": f"t{at}", "at": at})


def test_a_tick_fires_once_what_is_due_and_the_acknowledgement_stops_the_timers() -> None:
    engine, partition, applier = engine_with_team()
    page_create(applier, partition, 10, {"id": "r1", "kind": "page.create", "org_id": ORG, "entity_id": ORG,
                                         "at": T0, "body": {"id": "pg_1", "created_by": ADA, "spec": {
                                             "subject": "down", "target_user_id": BO, "repeat_interval_s": 60,
                                             "escalation": [{"delay_seconds": 90, "target_user_id": ADA}]}}})
    assert sent_ids(engine) == [f"page:pg_1:{BO}:s0"]
    assert orjson.loads(engine.state.replies[-1].value)["status"] == 201
    assert due_entries(engine, partition) == [(int((T0 + 60) * 1000), f"{ORG}/pg_1")]

    tick(applier, partition, 11, T0 + 59.0)
    assert len(sent_ids(engine)) == 1                                   # nothing due yet
    tick(applier, partition, 12, T0 + 60.2)
    tick(applier, partition, 13, T0 + 60.4)                             # a second tick: nothing new
    assert sent_ids(engine)[1:] == [f"page:pg_1:{BO}:r1"]
    assert due_entries(engine, partition) == [(int((T0 + 90) * 1000), f"{ORG}/pg_1")]
    tick(applier, partition, 14, T0 + 90.1)
    assert sent_ids(engine)[2:] == [f"page:pg_1:{ADA}:s1"]
    assert len(due_entries(engine, partition)) == 1

    page_acknowledge(applier, partition, 15, {"id": "r2", "kind": "page.acknowledge", "org_id": ORG,
                                              "entity_id": ORG, "at": T0 + 100,
                                              "body": {"id": "pg_1", "user_id": BO, "method": "link"}})
    assert due_entries(engine, partition) == []
    tick(applier, partition, 16, T0 + 1000)
    assert len(sent_ids(engine)) == 3
