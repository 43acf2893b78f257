"""certificates → each monitor's certificate and domain, reminders fired → monitor-events.

Reads top to bottom as the stream goes:

1. the topic: `certificates`. Keyed by monitor id: observations from probes
   (one, or `{"observations": [...], "org_id"}`: probe/certificates.py), and
   control messages other actors send instead of writing this agent's state
   (invariant 1): `reminders` (a reminder changed: agents/certificates/commands.py),
   `purge` (the monitor is gone) and `domain_info` (what its domain's partition
   learnt). Keyed by registrable domain: `name` (a monitor names the domain or
   stops: agents/certificates/directory.py) and `rdap` (a lookup's answer: the
   lookup timer, agents/certificates/lookups.py). And `tick`s with the clock of
   the worker owning the partition, when a reminder threshold comes due;
2. the state: table `certificates` (keys in tables/certificates.py): per
   monitor, the certificate last seen, its last change, the domain's answer,
   which thresholds fired for which expiry and at which position; per domain,
   the monitors naming it and its RDAP answer; the due and lookup indexes;
3. the transitions: tables/certificates.py, pure;
4. the events on `monitor-events`: `monitor.certificate_changed`,
   `monitor.certificate_expiring`, `monitor.domain_expiring`,
   `monitor.domain_renewed`; `domain_info` to the monitors of a domain.

A domain record is written only in the domain's partition (one writer per key),
and looked up at most once a day whoever names it; each monitor keeps a copy
of its domain's answer in its own partition, where its reminders are judged.
Thresholds fired are recorded with the position that fired them and event ids
derive from the monitor, the expiry and the threshold, so a repeated tick, a
rebalance or a replay never tells a threshold twice.
"""
from __future__ import annotations

from typing import Any

import orjson

from engine import topics
from engine.dead_letters import DeadLetters
from engine.folding import EntityFold, Ingest
from engine.partitioning import entity_key, partition_for
from schemas.certificate import CertificateObservation
from tables import certificates as rules
from tables.entity_keys import position

TAKE = 200
WITHIN = 0.05     # the longest a tick or an answer waits in a batch before it is applied (seconds)
DUE_PER_TICK = 2000


class Expiry(dict):
    """A monitor's certificate and domain runtime: a dict as stored, remembering the position it last applied."""

    @property
    def pos(self) -> int:
        return self.get("pos", -1)


class CertificateFolder(EntityFold):
    """Folds messages of owned partitions of `certificates` into table `certificates`."""

    ingest = Ingest(topics.CERTIFICATES, "observations", CertificateObservation, "monitor_id",
                    "certificate observation", "monitor", "/v1/monitors",
                    control_kinds=frozenset({"tick", "reminders", "purge", "name", "rdap", "domain_info"}))

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        super().__init__(engine.state, engine.settings.partitions, dead_letters)
        self.data = engine.certificates
        self.monitors = engine.monitors
        self.reminders = engine.certificate_reminders
        self.fired = 0
        self.ticks_applied: dict[int, float] = {}  # partition -> `at` of the last tick applied

    def health(self) -> dict:
        return {"observations_applied": self.applied, "observations_redelivered_and_skipped": self.duplicates,
                "reminders_fired": self.fired, "dead_letters": self.dead_letters.counts.get(topics.CERTIFICATES, 0)}

    # -- 1. the topic ---------------------------------------------------------

    def fold_control(self, partition: int, offset: int, message: dict) -> None:
        kind, pos = message["kind"], position(offset, 0)
        if kind == "tick":
            self.expire_due(partition, pos, float(message["at"]))
            self.ticks_applied[partition] = float(message["at"])
        elif kind == "name":
            self.name(partition, pos, message)
        elif kind == "rdap":
            self.answer(partition, pos, message)
        elif kind == "purge":
            self.purge(partition, str(message["monitor_id"]))
        else:  # reminders, domain_info: about one monitor of this partition
            monitor_id = str(message["monitor_id"])
            runtime = self.runtime(partition, monitor_id)
            if runtime is None or runtime.pos >= pos:
                return
            if kind == "domain_info":
                self.domain_answered(partition, monitor_id, runtime, message, pos)
            runtime["pos"] = pos
            self.evaluate(partition, monitor_id, runtime, float(message["at"]), pos)

    # -- 2. the state ---------------------------------------------------------

    def runtime(self, partition: int, monitor_id: str) -> Expiry | None:
        """The monitor's runtime, new if it has none yet; None if the monitor does not exist here."""
        config = self.monitors.get(partition, entity_key(monitor_id))
        if config is None:
            return None
        stored = self.data.get(partition, rules.monitor_key(monitor_id))
        return Expiry(stored if stored is not None else {"pos": -1, "org_id": config["org_id"]})

    def purge(self, partition: int, monitor_id: str) -> None:
        stored = self.data.get(partition, rules.monitor_key(monitor_id))
        if stored is None:
            return
        if stored.get("indexed_ms") is not None:
            self.data.delete(partition, rules.due_key(stored["indexed_ms"], monitor_id))
        self.data.delete(partition, rules.monitor_key(monitor_id))

    def reindex(self, partition: int, monitor_id: str, runtime: Expiry, due: float | None) -> None:
        """Keep the monitor's due-index entry at its next threshold (none when nothing is left to fire)."""
        due_ms = None if due is None else int(due * 1000)
        indexed = runtime.get("indexed_ms")
        if due_ms == indexed:
            return
        if indexed is not None:
            self.data.delete(partition, rules.due_key(indexed, monitor_id))
        if due_ms is not None:
            self.data.put(partition, rules.due_key(due_ms, monitor_id), 1)
        runtime["indexed_ms"] = due_ms

    # -- 3. the transitions: certificates -------------------------------------

    def forwarded(self, item: CertificateObservation, raw: Any, org_id: str | None, derived_id: str,
                  timestamp: float) -> dict:
        return {"observations": [item.model_dump()], "org_id": org_id}

    def known(self, partition: int, monitor_id: str, item: CertificateObservation, org_id: str | None,
              timestamp: float) -> tuple[dict, bytes, Expiry] | str:
        config = self.monitors.get(partition, entity_key(monitor_id))
        if config is None or (org_id is not None and config["org_id"] != org_id):
            return self.unknown(monitor_id)
        runtime = self.runtime(partition, monitor_id)
        return config, rules.monitor_key(monitor_id), runtime

    def apply(self, partition: int, offset: int, index: int, item: CertificateObservation, config: dict,
              key: bytes, runtime: Expiry, pos: int, timestamp: float) -> None:
        seen = item.certificate.model_dump()
        before = runtime.get("certificate")
        if before is not None and runtime.get("observed_at", 0) > item.observed_at:
            runtime["pos"] = pos  # an older observation (another region, a retry) does not undo a newer one
            self.data.put(partition, key, dict(runtime))
            return
        if before is not None and before.get("fingerprint_sha256") != seen.get("fingerprint_sha256"):
            change = {"at": item.observed_at, "previous": before.get("fingerprint_sha256"),
                      "fingerprint": seen.get("fingerprint_sha256"), "previous_not_after": before["not_after"],
                      "not_after": seen["not_after"], "renewed": seen["not_after"] > before["not_after"]}
            runtime["last_change"] = change
            self.announce(partition, config, "monitor.certificate_changed", f"{config['id']}:certificate_changed:{pos}",
                          item.observed_at, {
                              "previous_fingerprint_sha256": change["previous"],
                              "fingerprint_sha256": change["fingerprint"], "subject": seen["subject"],
                              "issuer": seen["issuer"], "previous_not_after": rules.iso_or_none(before["not_after"]),
                              "not_after": rules.iso_or_none(seen["not_after"]), "renewed": change["renewed"],
                              "days_left": rules.whole_days_left(seen["not_after"], item.observed_at)})
        runtime.update(pos=pos, org_id=config["org_id"], certificate=seen, verified=item.verified,
                       verify_error=item.verify_error, observed_at=item.observed_at, region=item.region)
        self.evaluate(partition, config["id"], runtime, item.observed_at, pos, config)
        self.applied += 1

    def expire_due(self, partition: int, pos: int, at: float) -> None:
        """A tick: every monitor whose next threshold is due by the tick's clock is judged, once."""
        low, high = rules.due_range(int(at * 1000))
        for entry, _ in self.data.scan(partition, low, high, limit=DUE_PER_TICK):
            self.data.delete(partition, entry)
            indexed_ms, monitor_id = rules.parse_due_key(entry)
            runtime = self.runtime(partition, monitor_id)
            if runtime is None or runtime.get("indexed_ms") != indexed_ms:
                continue  # purged, or filed again elsewhere, meanwhile
            runtime["indexed_ms"] = None
            runtime["pos"] = max(runtime.pos, pos)
            self.evaluate(partition, monitor_id, runtime, at, pos)

    def evaluate(self, partition: int, monitor_id: str, runtime: Expiry, now: float, pos: int,
                 config: dict | None = None) -> None:
        """Fire the thresholds crossed at `now` that have not fired for this expiry; file the next one; store."""
        config = config or self.monitors.get(partition, entity_key(monitor_id))
        reminders = self.reminders.get(partition, entity_key(monitor_id)) or {}
        due = []
        certificate, ssl = runtime.get("certificate"), reminders.get("ssl")
        if certificate is not None and ssl is not None and config is not None:
            fired = runtime.setdefault("cert_fired", {})
            expires = certificate["not_after"]
            crossed = rules.crossed(ssl["days_before"], expires, now, fired)
            if crossed:
                self.announce(partition, config, "monitor.certificate_expiring",
                              f"{monitor_id}:certificate_expiring:{rules.expiry_tag(expires)}:{crossed[0]}", now, {
                                  "threshold_days": crossed[0], "days_left": rules.whole_days_left(expires, now),
                                  "not_after": rules.iso_or_none(expires), "subject": certificate["subject"],
                                  "fingerprint_sha256": certificate.get("fingerprint_sha256")})
                rules.mark_fired(fired, expires, crossed, pos)
                self.fired += 1
            due.append(rules.next_due(ssl["days_before"], expires, fired))
        info, domain_reminder = self.current_domain_info(partition, monitor_id, runtime), reminders.get("domain")
        if info is not None and info.get("expires") and domain_reminder is not None and config is not None:
            fired = runtime.setdefault("domain_fired", {})
            expires = info["expires"]
            crossed = rules.crossed(domain_reminder["days_before"], expires, now, fired)
            if crossed:
                self.announce(partition, config, "monitor.domain_expiring",
                              f"{monitor_id}:domain_expiring:{info['domain']}:{rules.expiry_tag(expires)}:{crossed[0]}",
                              now, {"domain": info["domain"], "threshold_days": crossed[0],
                                    "days_left": rules.whole_days_left(expires, now),
                                    "expires": rules.iso_or_none(expires), "registrar": info.get("registrar")})
                rules.mark_fired(fired, expires, crossed, pos)
                self.fired += 1
            due.append(rules.next_due(domain_reminder["days_before"], expires, fired))
        due = [when for when in due if when is not None]
        self.reindex(partition, monitor_id, runtime, min(due) if due else None)
        self.data.put(partition, rules.monitor_key(monitor_id), dict(runtime))

    # -- 3. the transitions: domains ------------------------------------------

    def current_domain_info(self, partition: int, monitor_id: str, runtime: Expiry) -> dict | None:
        """The domain answer the monitor holds, if it is about the domain the monitor names now."""
        info = runtime.get("domain_info")
        naming = self.data.get(partition, rules.naming_key(monitor_id))
        if info is None or naming is None or naming.get("domain") != info.get("domain"):
            return None
        return info

    def name(self, partition: int, pos: int, message: dict) -> None:
        """In the domain's partition: a monitor names the domain (or no longer does)."""
        domain, monitor_id = str(message["domain"]), str(message["monitor_id"])
        key = rules.domain_key(domain)
        record = self.data.get(partition, key) or {"pos": -1, "domain": domain, "monitors": {}, "info": None,
                                                   "lookup_ms": None}
        if record["pos"] >= pos:
            return
        record["pos"] = pos
        if message.get("named"):
            record["monitors"][monitor_id] = str(message["org_id"])
            if record["info"] is not None:
                self.tell_monitor(monitor_id, record["info"], float(message["at"]))
            elif record["lookup_ms"] is None:
                self.file_lookup(partition, record, float(message["at"]))
        else:
            record["monitors"].pop(monitor_id, None)
            if not record["monitors"]:  # nobody names it: forgotten, and never looked up again
                if record["lookup_ms"] is not None:
                    self.data.delete(partition, rules.lookup_key(record["lookup_ms"], domain))
                self.data.delete(partition, key)
                return
        self.data.put(partition, key, record)

    def file_lookup(self, partition: int, record: dict, when: float) -> None:
        if record["lookup_ms"] is not None:
            self.data.delete(partition, rules.lookup_key(record["lookup_ms"], record["domain"]))
        record["lookup_ms"] = int(when * 1000)
        self.data.put(partition, rules.lookup_key(record["lookup_ms"], record["domain"]), 1)

    def answer(self, partition: int, pos: int, message: dict) -> None:
        """In the domain's partition: what RDAP said; every monitor naming the domain is told."""
        domain, info = str(message["domain"]), message["info"]
        key = rules.domain_key(domain)
        record = self.data.get(partition, key)
        if record is None or record["pos"] >= pos:
            return  # nobody names it any more, or applied before
        record["pos"] = pos
        record["info"] = info
        self.file_lookup(partition, record, rules.next_lookup(info))
        for monitor_id in record["monitors"]:
            self.tell_monitor(monitor_id, info, info["looked_up_at"])
        self.data.put(partition, key, record)

    def tell_monitor(self, monitor_id: str, info: dict, at: float) -> None:
        message = {"kind": "domain_info", "monitor_id": monitor_id, "domain": info["domain"], "info": info, "at": at}
        self.state.emit(topics.CERTIFICATES, entity_key(monitor_id), orjson.dumps(message),
                        partition_for(monitor_id, self.partitions))

    def domain_answered(self, partition: int, monitor_id: str, runtime: Expiry, message: dict, pos: int) -> None:
        """In the monitor's partition: its domain's answer; a later expiry than one already reminded of is a renewal."""
        info, before = message["info"], runtime.get("domain_info")
        naming = self.data.get(partition, rules.naming_key(monitor_id))
        if naming is None or naming.get("domain") != info.get("domain"):
            return  # the monitor names another domain by now
        old, new = (before or {}).get("expires"), info.get("expires")
        reminded = old is not None and rules.expiry_tag(old) in runtime.get("domain_fired", {})
        if before is not None and before.get("domain") == info["domain"] and reminded and new and new > old:
            config = self.monitors.get(partition, entity_key(monitor_id))
            if config is not None:
                self.announce(partition, config, "monitor.domain_renewed",
                              f"{monitor_id}:domain_renewed:{info['domain']}:{rules.expiry_tag(new)}",
                              float(message["at"]), {"domain": info["domain"], "previous_expires": rules.iso_or_none(old),
                                                     "expires": rules.iso_or_none(new)})
        runtime["domain_info"] = info

    # -- 4. the events --------------------------------------------------------

    def announce(self, partition: int, config: dict, kind: str, event_id: str, at: float, details: dict) -> None:
        event = {"id": event_id, "event": kind, "monitor_id": config["id"], "org_id": config["org_id"],
                 "name": config["spec"].get("name"), "at": at, **details}
        self.state.emit(topics.MONITOR_EVENTS, entity_key(config["id"]), orjson.dumps(event), partition)
