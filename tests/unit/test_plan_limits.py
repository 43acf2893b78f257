"""Plan limits: the organisation's partition refuses a monitor or heartbeat past its plan, exactly once.

Commands go through CommandApplier.apply_message, with every feature's handlers, against in-memory tables; the
commands they forward (index updates, compensating deletes) are delivered to
their partitions in order, as the commands topic would, and what users would
see is read back from the replies, the index and the configurations.
"""
from __future__ import annotations

import time
import uuid
from itertools import count

import orjson

from agents import command_handlers
from engine import topics
from engine.commands import CommandApplier
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from schemas.heartbeat import HeartbeatSpec
from tables import org_index
from tables.usage import active_monitors
from tests.unit.memory_tables import MemoryTable, memory_engine

PARTITIONS = 4
NOW = time.time()
FREE_MONITORS = 10


class Cluster:
    """A commands agent for every partition, with the commands topic between them."""

    def __init__(self) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        self.engine.heartbeats = MemoryTable("heartbeats")
        self.engine.heartbeat_data = MemoryTable("heartbeat_data")
        self.applier = CommandApplier(self.engine, DeadLetters(self.engine.state), command_handlers())
        self.log: dict[int, list[bytes]] = {p: [] for p in range(PARTITIONS)}  # the commands topic
        self.read: dict[int, int] = {p: 0 for p in range(PARTITIONS)}         # next offset to apply
        self.routed = 0  # emitted messages already put on their topic
        self.clock = count()

    def team(self, org_id: str, plan: str | None) -> None:
        self.engine.teams.put(partition_for(org_id, PARTITIONS), entity_key(org_id),
                              {"id": org_id, "name": "t", "plan": plan, "deleted_at": None,
                               "members": {}, "invitations": {}, "keys": {}, "pos": 0})

    def send(self, kind: str, org_id: str, entity_id: str, body=None) -> str:
        request_id = uuid.uuid4().hex
        command = {"id": request_id, "kind": kind, "org_id": org_id, "entity_id": entity_id, "body": body,
                   "at": NOW + next(self.clock)}  # a second apart: lists are in creation order
        self.log[partition_for(entity_id, PARTITIONS)].append(orjson.dumps(command))
        self.run()
        return request_id

    def run(self) -> None:
        """Apply every command on the topic, including those the applied ones forward."""
        progress = True
        while progress:
            progress = False
            emitted = self.engine.state.emitted
            for sent in emitted[self.routed:]:
                if sent.topic == topics.COMMANDS:
                    self.log[sent.partition].append(sent.value)
            self.routed = len(emitted)
            for partition, messages in self.log.items():
                while self.read[partition] < len(messages):
                    offset = self.read[partition]
                    self.read[partition] += 1
                    self.applier.apply_message(partition, offset, messages[offset])
                    progress = True

    def redeliver(self, partition: int, offset: int) -> None:
        self.applier.apply_message(partition, offset, self.log[partition][offset])
        self.run()

    def reply(self, request_id: str) -> tuple[int, object]:
        answers = [sent.body for sent in self.engine.state.replies if sent.body["request_id"] == request_id]
        assert answers, f"no reply to {request_id}"
        return answers[-1]["status"], answers[-1]["body"]

    def create_monitor(self, org_id: str) -> tuple[str, int, object]:
        monitor_id = "mon_" + uuid.uuid4().hex[:20]
        status, body = self.reply(self.send("monitor.create", org_id, monitor_id, {"name": "m", "type": "http"}))
        return monitor_id, status, body

    def create_heartbeat(self, org_id: str, service_id: str | None = None) -> tuple[str, int, object]:
        heartbeat_id = str(uuid.uuid4())
        spec = HeartbeatSpec(name="job", interval=60, service_id=service_id).stored()
        status, body = self.reply(self.send("heartbeat.create", org_id, heartbeat_id, {"spec": spec}))
        return heartbeat_id, status, body

    def free_team_at_its_limit(self, org_id: str = "org_1") -> list[str]:
        """A free team holding as many monitors as its plan allows; their ids."""
        self.team(org_id, "free")
        created = [self.create_monitor(org_id) for _ in range(FREE_MONITORS)]
        assert [status for _, status, _ in created] == [201] * FREE_MONITORS
        return [monitor_id for monitor_id, _, _ in created]

    def listed(self, org_id: str, collection: str = "monitors") -> tuple[list[str], int]:
        return org_index.page(self.engine.org_index, partition_for(org_id, PARTITIONS), org_id, collection, 1, 1000)

    def monitor_exists(self, monitor_id: str) -> bool:
        return self.engine.monitors.get(partition_for(monitor_id, PARTITIONS), entity_key(monitor_id)) is not None

    def heartbeat_exists(self, heartbeat_id: str) -> bool:
        return self.engine.heartbeats.get(partition_for(heartbeat_id, PARTITIONS), entity_key(heartbeat_id)) is not None

    def active(self, org_id: str) -> int:
        return sum(active_monitors(self.engine.monitors, p, org_id) for p in range(PARTITIONS))


def test_a_free_team_gets_ten_monitors_and_the_eleventh_is_refused_and_undone():
    cluster = Cluster()
    created = cluster.free_team_at_its_limit()

    rejected, status, body = cluster.create_monitor("org_1")

    assert status == 403
    assert body == {"error": "plan_limit_reached",
                    "message": "Your free plan allows 10 monitors; delete some or upgrade the plan."}
    ids, total = cluster.listed("org_1")
    assert ids == created and total == FREE_MONITORS
    assert not cluster.monitor_exists(rejected)          # the compensating delete removed the configuration
    assert cluster.active("org_1") == FREE_MONITORS      # and took back its count
    purges = [sent.body for sent in cluster.engine.state.on(topics.CHECK_RESULTS) if sent.body["kind"] == "purge"]
    assert [purge["monitor_id"] for purge in purges] == [rejected]


def test_after_deleting_one_a_monitor_can_be_created_again():
    cluster = Cluster()
    created = cluster.free_team_at_its_limit()
    assert cluster.create_monitor("org_1")[1] == 403
    assert cluster.reply(cluster.send("monitor.delete", "org_1", created[0]))[0] == 204

    monitor_id, status, body = cluster.create_monitor("org_1")

    assert status == 201 and body["id"] == monitor_id
    assert cluster.listed("org_1") == (created[1:] + [monitor_id], FREE_MONITORS)
    assert cluster.create_monitor("org_1")[1] == 403


def test_a_redelivered_add_of_a_listed_monitor_is_answered_not_refused():
    cluster = Cluster()
    cluster.free_team_at_its_limit()
    home = partition_for("org_1", PARTITIONS)
    adds = [offset for offset, raw in enumerate(cluster.log[home]) if orjson.loads(raw)["kind"] == "index.add"]
    last_add = orjson.loads(cluster.log[home][adds[-1]])

    cluster.redeliver(home, adds[-1])   # at the limit now, but this one is already counted

    assert cluster.reply(last_add["id"])[0] == 201
    assert cluster.listed("org_1")[1] == FREE_MONITORS
    assert all(cluster.monitor_exists(monitor_id) for monitor_id in cluster.listed("org_1")[0])


def test_a_redelivered_refusal_refuses_again_and_undoes_nothing_more():
    cluster = Cluster()
    cluster.free_team_at_its_limit()
    rejected, status, _ = cluster.create_monitor("org_1")
    home = partition_for("org_1", PARTITIONS)
    refused_at = max(offset for offset, raw in enumerate(cluster.log[home])
                     if orjson.loads(raw)["kind"] == "index.add")

    cluster.redeliver(home, refused_at)

    assert status == 403 and cluster.reply(orjson.loads(cluster.log[home][refused_at])["id"])[0] == 403
    assert cluster.listed("org_1")[1] == FREE_MONITORS and not cluster.monitor_exists(rejected)
    assert cluster.active("org_1") == FREE_MONITORS


def test_plans_without_a_limit_and_teams_without_a_record_are_not_limited():
    cluster = Cluster()
    cluster.team("org_hosted", "self-hosted")
    for org_id in ("org_hosted", "org_unknown"):
        statuses = [cluster.create_monitor(org_id)[1] for _ in range(FREE_MONITORS + 3)]
        assert statuses == [201] * (FREE_MONITORS + 3)
        assert cluster.listed(org_id)[1] == FREE_MONITORS + 3


def test_another_teams_monitors_do_not_count():
    cluster = Cluster()
    cluster.team("org_1", "free")
    cluster.free_team_at_its_limit("org_2")
    assert cluster.create_monitor("org_1")[1] == 201


def test_the_limit_follows_the_plan_the_team_is_on_now():
    cluster = Cluster()
    cluster.free_team_at_its_limit()
    assert cluster.create_monitor("org_1")[1] == 403
    cluster.team("org_1", "starter")
    assert cluster.create_monitor("org_1")[1] == 201


def test_heartbeats_have_their_own_limit_and_a_refused_one_leaves_no_service_listing():
    cluster = Cluster()
    cluster.free_team_at_its_limit()
    created = [cluster.create_heartbeat("org_1", service_id="db") for _ in range(10)]
    assert [status for _, status, _ in created] == [201] * 10   # monitors and heartbeats count apart

    rejected, status, body = cluster.create_heartbeat("org_1", service_id="db")

    assert status == 403
    assert body["error"] == "plan_limit_reached"
    assert body["message"] == "Your free plan allows 10 heartbeats; delete some or upgrade the plan."
    assert not cluster.heartbeat_exists(rejected)
    assert cluster.listed("org_1", "heartbeats")[1] == 10
    assert cluster.listed("org_1", "heartbeats:db") == ([heartbeat_id for heartbeat_id, _, _ in created], 10)
    purges = [sent.body for sent in cluster.engine.state.on(topics.HEARTBEATS) if sent.body["kind"] == "purge"]
    assert [purge["heartbeat_id"] for purge in purges] == [rejected]


def test_per_service_lists_are_not_limited_on_their_own():
    cluster = Cluster()
    cluster.team("org_1", "free")
    for n in count():
        heartbeat_id, status, _ = cluster.create_heartbeat("org_1", service_id="db")
        if status != 201:
            break
    assert n == 10   # the eleventh is refused by the organisation's limit, not sooner


def test_active_monitors_follow_create_pause_resume_and_delete_and_ignore_redelivery():
    cluster = Cluster()
    first, second, third = (cluster.create_monitor("org_1")[0] for _ in range(3))
    assert cluster.active("org_1") == 3
    cluster.send("monitor.pause", "org_1", first)
    cluster.send("monitor.pause", "org_1", first)       # already paused: no change
    assert cluster.active("org_1") == 2
    cluster.send("monitor.delete", "org_1", first)      # a paused one was not counted as active
    cluster.send("monitor.delete", "org_1", second)
    assert cluster.active("org_1") == 1
    cluster.send("monitor.pause", "org_1", third)
    cluster.send("monitor.resume", "org_1", third)
    assert cluster.active("org_1") == 1

    for partition, messages in cluster.log.items():      # everything again, as after a crash
        for offset in range(len(messages)):
            cluster.applier.apply_message(partition, offset, messages[offset])
    cluster.run()

    assert cluster.active("org_1") == 1
    assert cluster.listed("org_1") == ([third], 1)
