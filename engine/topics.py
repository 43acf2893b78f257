"""The topics pingstream reads and writes, and how they are created.

Keyed topics share one partition count, so Faust co-partitions them: partition
p of every keyed topic, and of every table changelog, lives on one worker.

A rescale (engine/rescale.py) moves a deployment to a new *generation* of keyed
topics with another partition count: generation 0 uses the names below,
generation g the names with `.g<g>` appended (`check-results.g2`). A worker or
probe runs one generation, set once at start (`use_generation`), and reads the
names from this module's attributes at the time of use (`topics.CHECK_RESULTS`),
never copied into a constant of its own. Topics with one partition (registries)
belong to no generation.
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
#: key: page id (configuration, a source's state or incident for a page) or source entity id (bindings)
STATUS_PAGES = "status-pages"
#: key: page id, in the page's partition; each page's rendered model, followed whole by every API process
STATUS_PAGE_VIEWS = "status-page-views"
PROBES = "probes"                    # key: probe id; what each probe checks and how it keeps up (probe/runner.py)
#: key: `deployment` (its generation, partition count and any move in progress, engine/deployment.py) or
#: `ack:<process>` (which generation each ingesting process produces to)
DEPLOYMENT = "deployment"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    keyed: bool          # keyed topics get `partitions`; registries get 1
    compacted: bool = False
    #: workers consume it (a fold of a component): a rescale waits until they have read it to its end
    folded: bool = False
    #: records are deleted after this many ms (in segments of a tenth of it); None: the broker's default
    retention_ms: int | None = None

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": "compact"} if self.compacted else {}
        if self.retention_ms is not None:
            configs.update({"retention.ms": str(self.retention_ms), "segment.ms": str(self.retention_ms // 10)})
        return configs


TOPICS = (
    TopicSpec(CHECK_RESULTS, keyed=True, folded=True),
    TopicSpec(COMMANDS, keyed=True, folded=True),
    TopicSpec(MONITOR_EVENTS, keyed=True, folded=True),
    TopicSpec(COMMAND_REPLIES, keyed=True),
    TopicSpec(DEAD_LETTERS, keyed=True),
    TopicSpec(WORKERS, keyed=False, compacted=True),
    TopicSpec(ACCESS, keyed=False, compacted=True),
    TopicSpec(HEARTBEATS, keyed=True, folded=True),
    TopicSpec(WEBHOOK_EVENTS, keyed=True, folded=True),
    TopicSpec(INCIDENT_SIGNALS, keyed=True, folded=True),
    TopicSpec(INCIDENT_EVENTS, keyed=True, folded=True),
    TopicSpec(ALERT_CHANNEL_DELIVERIES, keyed=True, folded=True),
    TopicSpec(NOTIFICATION_DELIVERIES, keyed=True, folded=True),
    TopicSpec(ORG_CONFIG, keyed=False, compacted=True),
    TopicSpec(DIRECTORY, keyed=True, compacted=True, folded=True),
    TopicSpec(PROBES, keyed=False, compacted=True),
    TopicSpec(MAIL, keyed=True, folded=True),
    TopicSpec(CERTIFICATES, keyed=True, folded=True),
    TopicSpec(STATUS_PAGES, keyed=True, folded=True),
    TopicSpec(STATUS_PAGE_VIEWS, keyed=True, compacted=True),
    TopicSpec(RATE_USAGE, keyed=False, retention_ms=3_600_000),  # read from its end: an hour is plenty
    TopicSpec(DEPLOYMENT, keyed=False, compacted=True),
)
#: the generation this process runs (`use_generation`); 0 until a rescale made another
GENERATION = 0
#: offsets of generation g are seen by folds as g * OFFSET_SPAN + offset, so the positions values remember
#: keep growing across a rescale (a value moved from generation g-1 never takes a new item for a redelivery)
OFFSET_SPAN = 1 << 40
#: positions are 64-bit unsigned: (offset << 20 | index), so generations stop at 15 (see engine/rescale.py)
MAX_GENERATION = 15
_BASE = {spec.name: spec for spec in TOPICS}
TOPIC_NAMES = frozenset(_BASE)


def named(name: str, generation: int) -> str:
    """A topic's name in `generation` (`name` may be its name in any generation)."""
    base = name.rsplit(".g", 1)[0] if ".g" in name else name
    spec = _BASE[base]
    return base if generation == 0 or not spec.keyed else f"{base}.g{generation}"


def use_generation(generation: int) -> None:
    """Name every keyed topic as `generation` does, in this whole process (a worker or probe, at start)."""
    global GENERATION
    module = globals()
    for attribute, value in list(module.items()):
        if attribute.isupper() and isinstance(value, str) and value.split(".g")[0] in _BASE:
            module[attribute] = named(value, generation)
    GENERATION = generation


def offset_base() -> int:
    """What folds add to a message's offset in this process's generation."""
    return GENERATION * OFFSET_SPAN


def changelog(app_id: str) -> str:
    """The state table's changelog topic of a worker group (Faust names it so)."""
    return f"{app_id}-state-changelog"


async def ensure_topics(settings: Settings, generation: int | None = None, partitions: int | None = None) -> None:
    """Create every topic of `generation` (this process's) that is missing; existing ones are left as they are.

    Keyed topics get `partitions` (default: the settings')."""
    generation = GENERATION if generation is None else generation
    partitions = settings.partitions if partitions is None else partitions
    await _create(settings, [
        NewTopic(
            named(spec.name, generation),
            num_partitions=partitions if spec.keyed else 1,
            replication_factor=1,
            topic_configs=spec.configs(),
        )
        for spec in TOPICS
    ])


async def _create(settings: Settings, wanted: list[NewTopic]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created them first
            log.info("created topics %s", [t.name for t in missing])
    finally:
        await admin.close()


async def ensure_registries(settings: Settings) -> None:
    """Create the topics of no generation (one partition each) that are missing, `deployment` among them."""
    await _create(settings, [NewTopic(spec.name, num_partitions=1, replication_factor=1,
                                      topic_configs=spec.configs()) for spec in TOPICS if not spec.keyed])
