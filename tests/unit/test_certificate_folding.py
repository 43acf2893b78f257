"""The certificates agent's folding: observations, names, RDAP answers and ticks in; events out, each once.

Raw messages go through the folds against in-memory tables, as the worker
would apply them; what users see is read back through tables/certificates.py
views and the events emitted on monitor-events.
"""
from __future__ import annotations

from itertools import count

import orjson

from agents.certificates.commands import reminder_set, reminders_purge
from agents.certificates.directory import MonitorDomains
from agents.certificates.fold import CertificateFolder
from engine import directory, topics
from engine.commands import CommandApplier
from engine.dead_letters import DeadLetters
from engine.partitioning import entity_key, partition_for
from tables import certificates as rules
from tests.unit.memory_tables import MemoryTable, memory_engine

PARTITIONS = 4
DAY = rules.DAY
NOW = 1_800_000_000.0


def monitor_in(partition: int, prefix: str = "mon_") -> str:
    for n in count():
        if partition_for(f"{prefix}{n}", PARTITIONS) == partition:
            return f"{prefix}{n}"


M = monitor_in(1)
P = 1


def certificate(fingerprint: str, not_after: float) -> dict:
    return {"subject": "CN=shop.example.co.uk", "issuer": "CN=Test CA", "sans": ["shop.example.co.uk"],
            "not_before": NOW - 60 * DAY, "not_after": not_after, "fingerprint_sha256": fingerprint * 64,
            "serial": "1f"}


class Worker:
    """Every partition of one worker: messages emitted to `certificates` are folded in order, as Kafka would."""

    def __init__(self) -> None:
        self.engine = memory_engine(partitions=PARTITIONS)
        self.engine.certificates = MemoryTable("certificates")
        self.engine.certificate_reminders = MemoryTable("certificate_reminders")
        self.folder = CertificateFolder(self.engine, DeadLetters(self.engine.state))
        self.domains = MonitorDomains(self.engine, DeadLetters(self.engine.state))
        self.applier = CommandApplier(self.engine, DeadLetters(self.engine.state), {})
        self.offsets = {topic: {p: 0 for p in range(PARTITIONS)} for topic in ("certificates", "directory", "commands")}
        self.delivered = 0   # emitted messages already folded

    def offset(self, topic: str, partition: int) -> int:
        offset = self.offsets[topic][partition]
        self.offsets[topic][partition] += 1
        return offset

    def fold(self, message: dict, partition: int = P) -> int:
        offset = self.offset("certificates", partition)
        self.folder.fold_message(partition, offset, orjson.dumps(message), NOW)
        return offset

    def deliver(self) -> None:
        """Fold what the folds sent to `certificates` (names, answers, domain_info), until nothing is left."""
        while self.delivered < len(self.engine.state.emitted):
            sent = self.engine.state.emitted[self.delivered]
            self.delivered += 1
            if sent.topic == topics.CERTIFICATES:
                self.folder.fold_message(sent.partition, self.offset("certificates", sent.partition), sent.value, NOW)

    def create_monitor(self, monitor_id: str = M, url: str = "https://shop.example.co.uk/", org: str = "org_a") -> None:
        config = {"pos": 0, "id": monitor_id, "org_id": org, "spec": {"name": "Shop", "url": url}, "paused": False,
                  "updated_at": NOW}
        partition = partition_for(monitor_id, PARTITIONS)
        self.engine.monitors.put(partition, entity_key(monitor_id), config)
        self.domains.fold_keyed_message(partition, self.offset("directory", partition),
                                        directory.entry_key(directory.MONITOR, monitor_id),
                                        orjson.dumps(directory.monitor_entry(config)))
        self.deliver()

    def delete_monitor(self, monitor_id: str = M) -> None:
        partition = partition_for(monitor_id, PARTITIONS)
        self.engine.monitors.delete(partition, entity_key(monitor_id))
        self.domains.fold_keyed_message(partition, self.offset("directory", partition),
                                        directory.entry_key(directory.MONITOR, monitor_id), None)
        self.deliver()

    def remind(self, kind: str, days: list[int], at: float = NOW, monitor_id: str = M) -> None:
        command = {"id": f"req{len(self.engine.state.replies)}", "kind": "certificate.reminder.set", "org_id": "org_a",
                   "entity_id": monitor_id, "at": at, "body": {"kind": kind, "days_before": days, "create": False}}
        reminder_set(self.applier, P, self.offset("commands", P), command)
        self.deliver()

    def observe(self, cert: dict, at: float, org: str | None = "org_a", monitor_id: str = M) -> int:
        return self.fold({"observations": [{"monitor_id": monitor_id, "region": "eu", "observed_at": at,
                                            "certificate": cert, "verified": True}], "org_id": org})

    def tick(self, at: float, partition: int = P) -> None:
        self.fold({"kind": "tick", "at": at}, partition)
        self.deliver()

    def events(self, kind: str | None = None) -> list[dict]:
        found = [sent.body for sent in self.engine.state.on(topics.MONITOR_EVENTS)]
        return [event for event in found if kind is None or event["event"] == kind]

    def view(self, now: float) -> dict:
        runtime = self.engine.certificates.get(P, rules.monitor_key(M))
        return rules.certificate_view(M, runtime, None, now)


def test_an_observation_of_an_unknown_monitor_or_another_team_goes_to_dead_letters() -> None:
    worker = Worker()
    worker.observe(certificate("a", NOW + 20 * DAY), NOW)
    worker.create_monitor()
    worker.observe(certificate("a", NOW + 20 * DAY), NOW, org="org_b")
    dead = [sent.body for sent in worker.engine.state.on(topics.DEAD_LETTERS)]
    assert [d["reason"].split(" ")[0] for d in dead] == ["unknown", "unknown"]
    assert worker.view(NOW)["certificate"] is None


def test_a_new_certificate_is_a_change_told_once() -> None:
    worker = Worker()
    worker.create_monitor()
    worker.observe(certificate("a", NOW + 20 * DAY), NOW)
    assert worker.events() == []                       # the first one seen is no change
    offset = worker.observe(certificate("b", NOW + 90 * DAY), NOW + 60)
    worker.folder.fold_message(P, offset, orjson.dumps({"observations": [{   # redelivered: nothing more
        "monitor_id": M, "observed_at": NOW + 60, "certificate": certificate("b", NOW + 90 * DAY)}],
        "org_id": "org_a"}), NOW)
    changed = worker.events("monitor.certificate_changed")
    assert len(changed) == 1 and changed[0]["renewed"] is True
    assert changed[0]["previous_fingerprint_sha256"] == "a" * 64 and changed[0]["fingerprint_sha256"] == "b" * 64
    view = worker.view(NOW + 60)
    assert view["certificate"]["days_left"] == 89 and view["certificate"]["serial"] == "1f"
    assert view["last_change"]["renewed"] is True


def test_each_threshold_fires_once_per_certificate_and_a_renewal_arms_them_again() -> None:
    worker = Worker()
    worker.create_monitor()
    expires = NOW + 20 * DAY
    worker.observe(certificate("a", expires), NOW)
    worker.remind("ssl", [30, 14, 7, 1])
    expiring = worker.events("monitor.certificate_expiring")
    assert [(e["threshold_days"], e["days_left"]) for e in expiring] == [(30, 20)]
    worker.observe(certificate("a", expires), NOW + 3600)   # the same certificate again: nothing
    worker.tick(NOW + 5 * DAY)                              # 15 days left: nothing due
    worker.tick(expires - 14 * DAY)                         # 14 days left
    worker.tick(expires - 14 * DAY)                         # a repeated tick fires nothing
    worker.tick(expires - 5 * DAY)                          # 7 is crossed
    ids = [e["id"] for e in worker.events("monitor.certificate_expiring")]
    assert [e["threshold_days"] for e in worker.events("monitor.certificate_expiring")] == [30, 14, 7]
    assert len(set(ids)) == 3
    worker.observe(certificate("b", expires + 90 * DAY), expires - 4 * DAY)  # renewed: 94 days left
    worker.tick(expires + 60 * DAY)                                          # 30 days left of the new one
    assert [e["threshold_days"] for e in worker.events("monitor.certificate_expiring")] == [30, 14, 7, 30]


def test_a_reminder_set_late_tells_the_nearest_threshold_only() -> None:
    worker = Worker()
    worker.create_monitor()
    worker.observe(certificate("a", NOW - DAY / 2), NOW)      # expired half a day ago
    worker.remind("ssl", [30, 14, 7, 1])
    assert [(e["threshold_days"], e["days_left"]) for e in worker.events("monitor.certificate_expiring")] == [(1, -1)]
    worker.remind("ssl", [30, 14, 7, 1], at=NOW + 60)         # set again: fired stays fired
    assert len(worker.events("monitor.certificate_expiring")) == 1


def test_a_domain_is_looked_up_once_for_every_monitor_naming_it_and_reminds_each() -> None:
    worker = Worker()
    other = monitor_in(3, "mon_x")
    worker.create_monitor()
    worker.create_monitor(other, url="https://www.example.co.uk/", org="org_b")
    home = partition_for("example.co.uk", PARTITIONS)
    record = worker.engine.certificates.get(home, rules.domain_key("example.co.uk"))
    assert record["monitors"] == {M: "org_a", other: "org_b"}
    due = worker.engine.certificates.scan(home, *rules.lookup_range(int(NOW * 1000) + 10_000_000))
    assert len(due) == 1                                        # one lookup for both
    expires = NOW + 10 * DAY
    info = rules.parse_rdap("example.co.uk", {"objectClassName": "domain", "events": [
        {"eventAction": "expiration", "eventDate": "2027-01-25T08:00:00Z"}]}, NOW)
    info["expires"] = expires
    worker.remind("domain", [30, 7])
    worker.fold({"kind": "rdap", "domain": "example.co.uk", "info": info, "at": NOW}, home)
    worker.deliver()
    told = worker.events("monitor.domain_expiring")
    assert [(e["monitor_id"], e["threshold_days"], e["days_left"]) for e in told] == [(M, 30, 10)]  # other has none
    runtime = worker.engine.certificates.get(partition_for(other, PARTITIONS), rules.monitor_key(other))
    assert runtime["domain_info"]["expires"] == expires
    assert worker.engine.certificates.scan(home, *rules.lookup_range(int((NOW + DAY) * 1000) - 1)) == []
    worker.tick(expires - 7 * DAY)
    assert [e["threshold_days"] for e in worker.events("monitor.domain_expiring")] == [30, 7]
    renewed = {**info, "expires": expires + 365 * DAY, "looked_up_at": NOW + DAY}
    worker.fold({"kind": "rdap", "domain": "example.co.uk", "info": renewed, "at": NOW + DAY}, home)
    worker.deliver()
    assert [e["monitor_id"] for e in worker.events("monitor.domain_renewed")] == [M]


def test_a_monitor_deleted_stops_naming_its_domain_and_loses_its_state() -> None:
    worker = Worker()
    worker.create_monitor()
    worker.observe(certificate("a", NOW + 20 * DAY), NOW)
    worker.remind("ssl", [7])
    worker.delete_monitor()
    home = partition_for("example.co.uk", PARTITIONS)
    assert worker.engine.certificates.get(home, rules.domain_key("example.co.uk")) is None
    assert worker.engine.certificates.get(P, rules.monitor_key(M)) is None
    assert worker.engine.certificates.get(P, rules.naming_key(M)) is None
    assert worker.engine.certificates.scan(P, *rules.due_range(2**62)) == []
    purge = [sent.body for sent in worker.engine.state.on(topics.COMMANDS)]
    assert [(c["kind"], c["entity_id"], sent_to) for c, sent_to in zip(purge, [
        sent.partition for sent in worker.engine.state.on(topics.COMMANDS)])] == [("certificate.reminders.purge", M, P)]
    reminders_purge(worker.applier, P, 99, purge[0])
    assert worker.engine.certificate_reminders.get(P, entity_key(M)) is None
