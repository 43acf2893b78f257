"""What every worker must read locally: each organisation's rulesets and alert channel subscriptions.

Rules are evaluated in the partition of the event they judge (a webhook's, a
monitor's), so any worker needs any organisation's rulesets at hand. They are
written once, by the commands agent in the organisation's partition (the
`rulesets` table: one writer, compare-and-set, replies), and published to the
compacted single-partition topic `org-config` (key `ruleset:<id>` /
`alert:<id>`, a tombstone on delete), which every worker follows into memory
here, as the API follows `access`.

Why not a Faust GlobalTable: on Tansu it only replicates live with
`recovery_buffer_size=1`, its writes bypass our batched store, and a worker
would restore the whole table before serving; this follower is one aiokafka
consumer, replays the topic in milliseconds, and agents simply wait for
`ready` before judging anything. Rule changes reach every worker within a fetch
(tens of ms); an event judged meanwhile meets the previous rules.
Alert channel subscriptions carry no secret: secrets stay in the channel's partition.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import mode
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from engine import following, topics
from engine.settings import Settings
from tables.conditions import Condition, compile_conditions

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Ruleset:
    """A ruleset as rule evaluation needs it: its stored record and its compiled conditions."""

    record: dict
    conditions: tuple[Condition, ...]

    @property
    def id(self) -> str:
        return self.record["id"]


def ruleset_key(ruleset_id: str) -> bytes:
    return f"ruleset:{ruleset_id}".encode()


def alert_channel_key(channel_id: str) -> bytes:
    return f"alert:{channel_id}".encode()


class Subscription(NamedTuple):
    webhook: bool                # it has a URL: events are POSTed there, signed
    notify: tuple[str, ...]      # "team", "on-call", "user:<id>": told on their notification channels


class OrgConfig:
    """The replica: organisation -> rulesets by type, and -> channel ids by event."""

    def __init__(self) -> None:
        self.rulesets: dict[str, dict[str, Ruleset]] = {}     # org -> id -> ruleset
        self.alert_channels: dict[str, dict[str, tuple[str, ...]]] = {}  # org -> alert channel id -> events
        self.subscriptions: dict[str, Subscription] = {}  # alert channel id -> whom it tells
        self._owners: dict[bytes, str] = {}                    # record key -> org, to apply tombstones
        self.ready = asyncio.Event()
        self.records_applied = 0
        self.caught_up_at: float | None = None

    def apply(self, key: bytes, value: bytes | None) -> None:
        org = self._owners.pop(key, None)
        if org is not None:
            self.rulesets.get(org, {}).pop(key.decode().partition(":")[2], None)
            self.alert_channels.get(org, {}).pop(key.decode().partition(":")[2], None)
            self.subscriptions.pop(key.decode().partition(":")[2], None)
        self.records_applied += 1
        if value is None:
            return
        record = orjson.loads(value)
        org = record["org_id"]
        self._owners[key] = org
        if record["kind"] == "ruleset":
            self.rulesets.setdefault(org, {})[record["id"]] = Ruleset(record, compile_conditions(record["conditions"]))
        elif record["kind"] == "alert":
            self.alert_channels.setdefault(org, {})[record["id"]] = tuple(record["events"])
            # records published before people could be named have a URL and nobody to notify
            self.subscriptions[record["id"]] = Subscription(record.get("webhook", True),
                                                            tuple(record.get("notify", ())))

    def rulesets_of(self, org_id: str, rule_type: str, webhook_id: str | None = None) -> list[Ruleset]:
        """The organisation's rulesets of one type, oldest first; webhook rulesets limited to this webhook."""
        found = [ruleset for ruleset in self.rulesets.get(org_id, {}).values()
                 if ruleset.record["rule_type"] == rule_type
                 and (ruleset.record.get("webhook_id") in (None, webhook_id))]
        found.sort(key=lambda ruleset: (ruleset.record["created_at"], ruleset.id))
        return found

    def channels_for(self, org_id: str, event: str) -> list[str]:
        """The alert channels subscribed to `event` that have a URL to POST it to."""
        return [channel for channel in self.subscribed_to(org_id, event) if self.subscription(channel).webhook]

    def people_for(self, org_id: str, event: str) -> list[tuple[str, tuple[str, ...]]]:
        """(alert channel id, whom it names) for each subscription to `event` that names people."""
        return [(channel, self.subscription(channel).notify) for channel in self.subscribed_to(org_id, event)
                if self.subscription(channel).notify]

    def subscribed_to(self, org_id: str, event: str) -> list[str]:
        return sorted(channel for channel, events in self.alert_channels.get(org_id, {}).items() if event in events)

    def subscription(self, channel_id: str) -> Subscription:
        return self.subscriptions.get(channel_id) or Subscription(True, ())

    def summary(self) -> dict[str, Any]:
        return {
            "ready": self.ready.is_set(),
            "rulesets": sum(len(rulesets) for rulesets in self.rulesets.values()),
            "alert_channels": sum(len(channels) for channels in self.alert_channels.values()),
            "records_applied": self.records_applied,
        }


def follow(settings: Settings, replica: OrgConfig) -> type[mode.Service]:
    """A service that replays `org-config` into `replica` at start, sets `ready`, and keeps following."""

    class OrgConfigFollower(mode.Service):
        async def on_start(self) -> None:
            self.consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_wait_ms=20,  # Tansu holds long polls: keep them short
            )
            await self.consumer.start()
            self.tp = TopicPartition(topics.ORG_CONFIG, 0)
            self.consumer.assign([self.tp])
            self.consumer.seek(self.tp, 0)
            self.add_future(self._run())

        async def _run(self) -> None:
            await self._catch_up()
            replica.ready.set()
            replica.caught_up_at = time.time()
            while not self.should_stop:
                try:
                    batch = await self.consumer.getmany(self.tp, timeout_ms=500)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("reading org-config failed; retrying")
                    await asyncio.sleep(0.5)
                    continue
                self._apply(batch)

        async def _catch_up(self) -> None:
            while True:
                try:
                    ends = await following.end_offsets(settings, self.consumer, [self.tp])
                    while await self.consumer.position(self.tp) < ends[self.tp]:
                        self._apply(await self.consumer.getmany(self.tp, timeout_ms=200))
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("replaying org-config failed; retrying")
                    await asyncio.sleep(0.5)

        def _apply(self, batch: dict) -> None:
            for records in batch.values():
                for record in records:
                    try:
                        replica.apply(record.key, record.value)
                    except Exception:
                        log.exception("ignoring an unreadable org-config record at %d", record.offset)

        async def on_stop(self) -> None:
            await self.consumer.stop()

    return OrgConfigFollower

