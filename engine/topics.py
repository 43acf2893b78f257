"""The topics pingstream reads and writes, and how they are created.

Keyed topics share one partition count, so Faust co-partitions them: partition
p of every keyed topic, and of every table changelog, lives on one worker.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from engine.settings import Settings

log = logging.getLogger(__name__)

CHECK_RESULTS = "check-results"      # key: monitor id; probe results, single or enveloped
COMMANDS = "commands"                # key: entity id; configuration writes from the API
MONITOR_EVENTS = "monitor-events"    # key: monitor id; monitor.down / monitor.recovered
COMMAND_REPLIES = "command-replies"  # key: request id; what a command did, for the API
DEAD_LETTERS = "dead-letters"        # key: source topic; input that could not be used, with why
WORKERS = "workers"                  # key: worker id; which worker owns which partitions
ACCESS = "access"                    # key: <kind>:<id>; teams, API keys, memberships, revoked sessions
MAIL = "mail"                        # key: recipient; mail to send (confirmation codes, recovery, invitations)
RATE_USAGE = "rate-usage"            # key: API process; requests each API process counted, per second
HEARTBEATS = "heartbeats"            # key: heartbeat id; check-ins, single or enveloped, and ticks
WEBHOOK_EVENTS = "webhook-events"    # key: webhook id; received requests, single or enveloped
INCIDENT_SIGNALS = "incident-signals"  # key: incident route; trigger/resolve from rules, create/update by hand
INCIDENT_EVENTS = "incident-events"  # key: incident id; incident.created / .updated / .resolved
#: key: alert channel id; deliveries to make, attempts made, ticks (the topic keeps its first name)
ALERT_CHANNEL_DELIVERIES = "notifications"
#: key: notification channel owner (user:<id> / team:<id>); messages, codes and tests to send, attempts, ticks
NOTIFICATION_DELIVERIES = "notification-deliveries"
ORG_CONFIG = "org-config"            # key: ruleset:<id> / alert:<channel id>; what every worker follows into memory
#: key: monitor:<id> / heartbeat:<id> / webhook:<id>, in the entity's partition; which exist, whose, how checked
DIRECTORY = "directory"
#: key: monitor id (observations, reminder controls) or registrable domain (naming, RDAP answers); ticks
CERTIFICATES = "certificates"
PROBES = "probes"                    # key: probe id; what each probe checks and how it keeps up (probe/runner.py)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    keyed: bool          # keyed topics get `partitions`; registries get 1
    compacted: bool = False
    #: records are deleted after this many ms (in segments of a tenth of it); None: the broker's default
    retention_ms: int | None = None

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact"} if self.compacted else {}
        if self.retention_ms is not None:
            configs.update({"retention.ms": str(self.retention_ms), "segment.ms": str(self.retention_ms // 10)})
        return configs


TOPICS = (
    TopicSpec(CHECK_RESULTS, keyed=True),
    TopicSpec(COMMANDS, keyed=True),
    TopicSpec(MONITOR_EVENTS, keyed=True),
    TopicSpec(COMMAND_REPLIES, keyed=True),
    TopicSpec(DEAD_LETTERS, keyed=True),
    TopicSpec(WORKERS, keyed=False, compacted=True),
    TopicSpec(ACCESS, keyed=False, compacted=True),
    TopicSpec(HEARTBEATS, keyed=True),
    TopicSpec(WEBHOOK_EVENTS, keyed=True),
    TopicSpec(INCIDENT_SIGNALS, keyed=True),
    TopicSpec(INCIDENT_EVENTS, keyed=True),
    TopicSpec(ALERT_CHANNEL_DELIVERIES, keyed=True),
    TopicSpec(NOTIFICATION_DELIVERIES, keyed=True),
    TopicSpec(ORG_CONFIG, keyed=False, compacted=True),
    TopicSpec(DIRECTORY, keyed=True, compacted=True),
    TopicSpec(PROBES, keyed=False, compacted=True),
    TopicSpec(MAIL, keyed=True),
    TopicSpec(CERTIFICATES, keyed=True),
    TopicSpec(RATE_USAGE, keyed=False, retention_ms=3_600_000),  # read from its end: an hour is plenty
)


async def ensure_topics(settings: Settings) -> None:
    """Create every topic that is missing; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                spec.name,
                num_partitions=settings.partitions if spec.keyed else 1,
                replication_factor=1,
                topic_configs=spec.configs(),
            )
            for spec in TOPICS
            if spec.name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()
