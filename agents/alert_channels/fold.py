"""alert channel deliveries → signed POSTs to alert channels, retried with backoff, each attempt recorded.

1. the topic: `ALERT_CHANNEL_DELIVERIES` ("notifications"), keyed by alert channel id:
   `deliver` (an event for one channel, with the exact body to sign; agents emit
   it, never a request handler), `attempted` (the outcome of one HTTP attempt,
   sent back by the attempt itself), `tick` (a timer's, each second, to every
   owned partition: retries are due), `purge` (the channel was deleted);
2. the state: `alert_channel_deliveries` (tables/alert_channels.py: each
   delivery with its attempts, and a due index), read-only `alert_channels`
   (url, secret, retry bounds: written by agents/alert_channels/commands.py), and
   a status page's webhook subscribers, read alike from read-only `status_pages`
   (target `spw:<page>:<subscriber>`, in the page's partition);
3. the transitions: a delivery is pending until an attempt answers 2xx
   (delivered) or `max_attempts` attempts failed (failed, dead-lettered); after
   each failure the next attempt is due after an exponential backoff;
4. the effects: HTTP POSTs, made outside the fold, after the state that
   scheduled them is durable, by at most CONCURRENCY tasks. A retry waits in
   the due index, not in a task, so it survives restarts and rebalances; an
   attempt cut short by a crash is made again (receivers dedupe by
   X-Pingstream-Delivery).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError

from engine import ownership, topics
from engine.dead_letters import DeadLetters
from engine.folding import decoded
from engine.outbound import guarded_session, outcome_of
from engine.partitioning import entity_key
from engine.sealing import unseal
from schemas.alert_channel import AlertChannelDelivery
from schemas.validation import field_errors
from tables import alert_channels as layout
from tables import status_pages
from tables.entity_keys import position

log = logging.getLogger(__name__)

TICK_EVERY = 1.0
DUE_PER_TICK = 200       # deliveries launched per partition per tick at most
CONCURRENCY = 64         # HTTP attempts in flight per worker


class AlertChannelFold:
    """Folds alert channel deliveries of owned partitions; launches the attempts they make due."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.data = engine.alert_channel_deliveries
        self.channels = engine.alert_channels
        self.state = engine.state
        self.dead_letters = dead_letters
        self.to_launch: list[tuple[int, bytes]] = []
        self.in_flight: dict[bytes, int] = {}          # delivery key -> attempt number under way
        self.http: aiohttp.ClientSession | None = None
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.counts = {"queued": 0, "attempts": 0, "delivered": 0, "failed": 0, "duplicates": 0}

    def health(self) -> dict:
        return {**self.counts, "in_flight": len(self.in_flight),
                "dead_letters": sum(self.dead_letters.counts.values())}

    # -- the fold ---------------------------------------------------------------

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        message = decoded(self.dead_letters, topics.ALERT_CHANNEL_DELIVERIES, partition, offset, value,
                          "an alert channel delivery", "kind")
        if message is None:
            return
        kind = message["kind"]
        if kind == "deliver":
            self.fold_deliver(partition, offset, message)
        elif kind == "attempted":
            self.fold_attempted(partition, offset, message)
        elif kind == "tick":
            due = self.data.scan(partition, *layout.due_until(float(message["at"])), limit=DUE_PER_TICK)
            self.to_launch.extend((partition, layout.delivery_of_due(key)) for key, _ in due)
        elif kind == "purge":
            self.purge(partition, message["channel_id"])
        else:
            self.dead_letters.send(topics.ALERT_CHANNEL_DELIVERIES, partition, offset, 0, value,
                                   f"unknown kind {kind!r}")

    def fold_deliver(self, partition: int, offset: int, message: dict) -> None:
        try:
            delivery_message = AlertChannelDelivery.model_validate(message)
        except ValidationError as exc:
            self.dead_letters.send(topics.ALERT_CHANNEL_DELIVERIES, partition, offset, 0, message,
                                   "invalid alert channel delivery", field_errors(exc))
            return
        channel_id = delivery_message.channel_id
        if self.target(partition, channel_id) is None:
            return  # the channel was deleted meanwhile: nobody to tell
        pos = position(offset, 0)
        runtime_key = layout.runtime_key(channel_id)
        runtime = self.data.get(partition, runtime_key) or {"pos": -1, "kept": 0}
        key = layout.delivery_key(channel_id, delivery_message.at, delivery_message.id)
        if runtime["pos"] >= pos or self.data.get(partition, key) is not None:
            self.counts["duplicates"] += 1  # redelivered, or re-emitted with the same id
            return
        now = time.time()
        delivery = {"id": delivery_message.id, "channel_id": channel_id, "event": delivery_message.event,
                    "created_at": delivery_message.at, "body": delivery_message.body, "status": "pending",
                    "attempts": [], "next_attempt_at": now}
        self.data.put(partition, layout.due_key(now, key), {})
        self.data.put(partition, key, delivery)
        runtime = {"pos": pos, "kept": runtime["kept"] + 1}
        if runtime["kept"] > layout.KEEP_DELIVERIES:
            oldest = self.data.scan(partition, *layout.deliveries_range(channel_id), limit=1)
            for old_key, old in oldest:
                self.forget(partition, old_key, old)
                runtime["kept"] -= 1
        self.data.put(partition, runtime_key, runtime)
        self.counts["queued"] += 1
        self.to_launch.append((partition, key))

    def fold_attempted(self, partition: int, offset: int, message: dict) -> None:
        key = bytes.fromhex(message["delivery_key"])
        self.in_flight.pop(key, None)
        delivery = self.data.get(partition, key)
        if delivery is None or delivery["status"] != "pending" or len(delivery["attempts"]) >= message["attempt"]:
            self.counts["duplicates"] += 1
            return
        channel = self.target(partition, delivery["channel_id"])
        due_before = delivery["next_attempt_at"]
        delivery = {**delivery, "attempts": list(delivery["attempts"])}
        attempt = {k: message.get(k) for k in ("attempt", "at", "status_code", "error", "duration_ms")}
        status = layout.record_attempt(delivery, attempt, channel)
        self.data.delete(partition, layout.due_key(due_before, key))
        if status == "pending":
            self.data.put(partition, layout.due_key(delivery["next_attempt_at"], key), {})
        elif status == "delivered":
            self.counts["delivered"] += 1
        else:
            self.counts["failed"] += 1
            self.dead_letters.send(
                topics.ALERT_CHANNEL_DELIVERIES, partition, offset, 0,
                {"delivery_id": delivery["id"], "channel_id": delivery["channel_id"], "event": delivery["event"],
                 "url": channel["spec"]["url"] if channel else None, "attempts": delivery["attempts"]},
                f"delivery of {delivery['event']} to alert channel {delivery['channel_id']} failed: "
                f"{delivery['reason']} (last: {attempt.get('status_code') or attempt.get('error')})")
        self.data.put(partition, key, delivery)

    def target(self, partition: int, channel_id: str) -> dict | None:
        """Whom a delivery goes to: an alert channel, or a status page's webhook subscriber (the page's
        partition holds it: tables/status_pages.py), read alike: id, spec (url, retry bounds), sealed secret."""
        webhook = status_pages.webhook_of(channel_id)
        if webhook is None:
            return self.channels.get(partition, entity_key(channel_id))
        subscriber = self.engine.status_pages.get(partition, status_pages.subscriber_key(*webhook))
        return None if subscriber is None else status_pages.webhook_channel(channel_id, subscriber)

    def forget(self, partition: int, key: bytes, delivery: dict) -> None:
        if delivery["status"] == "pending":
            self.data.delete(partition, layout.due_key(delivery["next_attempt_at"], key))
        self.data.delete(partition, key)

    def purge(self, partition: int, channel_id: str) -> None:
        for key, value in self.data.scan(partition, *layout.prefix(channel_id)):
            if key.startswith(channel_id.encode() + layout.SEP + b"d"):
                self.forget(partition, key, value)
            else:
                self.data.delete(partition, key)

    # -- the effects ------------------------------------------------------------

    def launch(self) -> None:
        """Start the attempts the last fold made due (its state is durable by now)."""
        launching, self.to_launch = self.to_launch, []
        owned_now = set() if ownership.paused(self.engine.app) else ownership.assigned(self.engine.app)
        for partition, key in launching:
            if key in self.in_flight or partition not in owned_now:
                continue
            delivery = self.data.get(partition, key)
            if delivery is None or delivery["status"] != "pending":
                continue
            attempt = len(delivery["attempts"]) + 1
            self.in_flight[key] = attempt
            asyncio.ensure_future(self.attempt(partition, key, delivery, attempt))

    def signing_secret(self, channel: dict) -> str | None:
        """The channel's secret, unsealed; None (and an operator's log line) if the key cannot open it."""
        try:
            return unseal(self.engine.settings.secrets_key, channel["secret"])
        except Exception:
            log.error("the signing secret of %s cannot be unsealed: was PINGSTREAM_SECRETS_KEY changed?", channel["id"])
            return None

    async def attempt(self, partition: int, key: bytes, delivery: dict, number: int) -> None:
        channel = self.target(partition, delivery["channel_id"])
        outcome: dict[str, Any] = {"status_code": None, "error": None}
        started = time.monotonic()
        async with self.slots:
            at = time.time()
            secret = None if channel is None else self.signing_secret(channel)
            if channel is None:
                outcome["error"] = "the alert channel was deleted"
            elif secret is None:
                outcome["error"] = "the signing secret cannot be read: rotate it"
            else:
                body = delivery["body"].encode()
                headers = layout.headers(secret, int(at), body, delivery["id"], delivery["event"])
                try:
                    if self.http is None:  # tenant-named URLs: internal addresses are refused at connect time
                        self.http = guarded_session(self.engine.settings.outbound_allow)
                    async with self.http.post(channel["spec"]["url"], data=body, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=channel["spec"]["timeout_seconds"]),
                                              allow_redirects=False) as response:
                        await response.read()
                        outcome["status_code"] = response.status
                except asyncio.TimeoutError:
                    outcome["error"] = f"timed out after {channel['spec']['timeout_seconds']} s"
                except aiohttp.ClientError as exc:  # a class, not the text: the log must not map internals
                    outcome["error"] = outcome_of(exc)
        self.counts["attempts"] += 1
        message = {"kind": "attempted", "delivery_key": key.hex(), "attempt": number, "at": at,
                   "duration_ms": round((time.monotonic() - started) * 1000, 1), **outcome}
        try:
            await self.engine.app.producer.send_and_wait(topics.ALERT_CHANNEL_DELIVERIES, entity_key(delivery["channel_id"]),
                                                         orjson.dumps(message), partition, None, None)
        except Exception:
            log.exception("recording attempt %d of %s failed; it will be made again", number, delivery["id"])
            self.in_flight.pop(key, None)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

