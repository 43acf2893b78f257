"""notification-deliveries → each owner's channels told, in priority order, retried with backoff, each attempt logged.

1. the topic: `notification-deliveries`, keyed by owner (user:<id> / team:<id>):
   `send` (a message for the owner: every enabled, verified channel gets it;
   schemas/notification_channel.py NotificationRequest; emitted by agents, never
   by a request handler), `code` and `test` (for one channel: emitted by the
   channel commands), `claimed` (an attempt is about to be made), `attempted`
   (its outcome), `tick` (a timer's, when a partition has retries due), `purge`
   (a channel was deleted);
2. the state: `notification_deliveries` (tables/notification_channels.py: each
   delivery with its attempts, a dedup key per (message id, channel), a due
   index), read-only `notification_channels` (written by commands.py);
3. the transitions: a delivery is pending until an attempt is sent (delivered),
   certainly failed MAX_ATTEMPTS times or for good (failed), or may have been
   received without our knowing (unknown: a timeout, or a claim without outcome);
4. the effects: the sends (agents/notification_channels/transports.py), made
   outside the fold once the state that scheduled them is durable, each only
   after its claim came back through the fold as the first claim of that
   attempt (a compare-and-set through the log), by at most CONCURRENCY tasks.

The guarantee: one delivery per (message id, channel) — the dedup key is in the
same flush as the delivery, so a redelivered or re-emitted `send` adds nothing;
and at most one send per attempt number, none repeated whose outcome is unknown
— an attempt found claimed without an outcome after a SIGKILL or a rebalance is
recorded `unknown`, not made again; and a second claim of one attempt (a new
owner acting on a tick it refolded before the old owner's claim) loses, so its
sender sends nothing. A failure that certainly did not reach the
receiver (refused connection, an error status) is retried with backoff.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import orjson
from pydantic import ValidationError

from agents.notification_channels.transports import Transports, unknown
from engine import ownership, topics
from engine.dead_letters import DeadLetters
from engine.folding import decoded
from engine.partitioning import entity_key
from engine.sealing import unseal
from schemas.notification_channel import NotificationRequest
from schemas.validation import field_errors
from tables import notification_channels as layout

log = logging.getLogger(__name__)

DUE_PER_TICK = 200       # deliveries launched per partition per tick at most
EVICT_SCAN = 64          # oldest deliveries looked at for one that ended, when a channel's log is full
CONCURRENCY = 32         # sends in flight per worker
CLAIM_TIMEOUT = 30.0     # seconds an attempt waits for its claim to come back through the fold
WITHIN = 0.02            # a batch waits at most this long to fill: a claim comes back quickly (seconds)


class NotificationFold:
    """Folds notification deliveries of owned partitions; launches the attempts they make due."""

    def __init__(self, engine: Any, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.data = engine.notification_deliveries
        self.channels = engine.notification_channels
        self.state = engine.state
        self.dead_letters = dead_letters
        self.transports = Transports(engine.settings)
        self.to_launch: list[tuple[int, bytes]] = []
        self.in_flight: dict[bytes, int] = {}   # delivery key -> attempt number under way in this process
        self.ticks_applied: dict[int, float] = {}  # partition -> `at` of the last tick folded
        self.claims: dict[str, asyncio.Future] = {}  # claim token -> did it win? (this process's attempts)
        self.settled_claims: list[tuple[str, bool]] = []  # answered once the fold's state is durable
        self.slots = asyncio.Semaphore(CONCURRENCY)
        self.counts = {"messages": 0, "queued": 0, "attempts": 0, "delivered": 0, "failed": 0, "unknown": 0,
                       "duplicates": 0}

    def health(self) -> dict:
        return {**self.counts, "in_flight": len(self.in_flight),
                "dead_letters": sum(self.dead_letters.counts.values())}

    # -- the fold ---------------------------------------------------------------

    def fold_message(self, partition: int, offset: int, value: bytes | None, timestamp: float = 0.0) -> None:
        message = decoded(self.dead_letters, topics.NOTIFICATION_DELIVERIES, partition, offset, value,
                          "a notification delivery", "kind")
        if message is None:
            return
        kind = message["kind"]
        if kind == "send":
            self.fold_send(partition, offset, message)
        elif kind in ("code", "test"):
            channel = self.channel(partition, message["owner"], message["channel_id"])
            if channel is not None:
                self.add(partition, message, channel, kind)
        elif kind == "claimed":
            self.fold_claimed(partition, message)
        elif kind == "attempted":
            self.fold_attempted(partition, offset, message)
        elif kind == "tick":
            self.ticks_applied[partition] = float(message["at"])
            due = self.data.scan(partition, *layout.due_until(float(message["at"])), limit=DUE_PER_TICK)
            self.to_launch.extend((partition, layout.delivery_of_due(key)) for key, _ in due)
        elif kind == "purge":
            self.purge(partition, message["owner"], message["channel_id"])
        else:
            self.dead_letters.send(topics.NOTIFICATION_DELIVERIES, partition, offset, 0, value,
                                   f"unknown kind {kind!r}")

    def has_due(self, partition: int, now: float) -> bool:
        """Is an attempt due in the partition that is not under way here? (The timer asks; it writes nothing.)"""
        due = self.data.scan(partition, *layout.due_until(now), limit=DUE_PER_TICK)
        return any(layout.delivery_of_due(key) not in self.in_flight for key, _ in due)

    def channel(self, partition: int, owner: str, channel_id: str) -> dict | None:
        record = self.channels.get(partition, entity_key(owner))
        return None if record is None else record["channels"].get(channel_id)

    def fold_send(self, partition: int, offset: int, message: dict) -> None:
        try:
            request = NotificationRequest.model_validate(message)
        except ValidationError as exc:
            self.dead_letters.send(topics.NOTIFICATION_DELIVERIES, partition, offset, 0, message,
                                   "invalid notification request", field_errors(exc))
            return
        self.counts["messages"] += 1
        record = self.channels.get(partition, entity_key(request.owner))
        for channel in layout.deliverable(record):  # in priority order: launched in this order too
            self.add(partition, request.model_dump(mode="json"), channel, "message")

    def add(self, partition: int, message: dict, channel: dict, kind: str) -> None:
        owner, channel_id, message_id = message["owner"], channel["id"], message["id"]
        dedup = layout.dedup_key(owner, channel_id, message_id)
        if self.data.get(partition, dedup) is not None:
            self.counts["duplicates"] += 1  # redelivered, or the same message id again
            return
        now = time.time()
        key = layout.delivery_key(owner, channel_id, message["at"], message_id)
        delivery = {"id": message_id, "owner": owner, "channel_id": channel_id, "kind": kind,
                    "channel_name": channel["name"], "subject": message.get("subject") or "verification code",
                    "text": message.get("text", ""), "link": message.get("link"), "data": message.get("data"),
                    "code": message.get("code"),  # sealed (engine/sealing.py); never shown
                    "created_at": message["at"], "status": "pending", "attempts": [], "claimed": 0,
                    "next_attempt_at": now}
        self.data.put(partition, key, delivery)
        self.data.put(partition, dedup, {"key": key.hex()})
        self.data.put(partition, layout.due_key(now, key), {})
        kept = (self.data.get(partition, layout.kept_key(owner, channel_id)) or {"kept": 0})["kept"] + 1
        if kept > layout.KEEP_DELIVERIES:
            # the oldest ended deliveries make room; one still pending stays until it ends, whatever the
            # burst (forgetting it would drop a message the owner was promised)
            for old_key, old in self.data.scan(partition, *layout.deliveries_range(owner, channel_id),
                                               limit=EVICT_SCAN):
                if kept <= layout.KEEP_DELIVERIES:
                    break
                if old["status"] != "pending":
                    self.forget(partition, old_key, old)
                    kept -= 1
        self.data.put(partition, layout.kept_key(owner, channel_id), {"kept": kept})
        self.counts["queued"] += 1
        self.to_launch.append((partition, key))

    def fold_claimed(self, partition: int, message: dict) -> None:
        """The first claim of an attempt wins; any later one (a refold, another owner) loses."""
        key = bytes.fromhex(message["delivery_key"])
        delivery = self.data.get(partition, key)
        won = delivery is not None and delivery["status"] == "pending" and delivery["claimed"] < message["attempt"]
        if won:
            self.data.put(partition, key, {**delivery, "claimed": message["attempt"]})
        if message.get("token") in self.claims:
            self.settled_claims.append((message["token"], won))

    def fold_attempted(self, partition: int, offset: int, message: dict) -> None:
        key = bytes.fromhex(message["delivery_key"])
        self.in_flight.pop(key, None)
        delivery = self.data.get(partition, key)
        if delivery is None or delivery["status"] != "pending" or len(delivery["attempts"]) >= message["attempt"]:
            self.counts["duplicates"] += 1
            return
        due_before = delivery["next_attempt_at"]
        delivery = {**delivery, "attempts": list(delivery["attempts"]),
                    "claimed": max(delivery["claimed"], message["attempt"])}
        attempt = {k: message.get(k) for k in ("attempt", "at", "outcome", "status_code", "error", "detail",
                                               "duration_ms") if message.get(k) is not None or k == "error"}
        if message.get("final"):
            attempt["final"] = True
        status = layout.record_attempt(delivery, attempt)
        self.data.delete(partition, layout.due_key(due_before, key))
        if status == "pending":
            self.data.put(partition, layout.due_key(delivery["next_attempt_at"], key), {})
        else:
            self.counts[status] += 1
            if status == "failed":
                self.dead_letters.send(
                    topics.NOTIFICATION_DELIVERIES, partition, offset, 0,
                    {"delivery_id": delivery["id"], "owner": delivery["owner"], "channel_id": delivery["channel_id"],
                     "attempts": delivery["attempts"]},
                    f"notification {delivery['id']} to channel {delivery['channel_id']} failed: {delivery['reason']}")
        self.data.put(partition, key, delivery)

    def forget(self, partition: int, key: bytes, delivery: dict) -> None:
        if delivery["status"] == "pending":
            self.data.delete(partition, layout.due_key(delivery["next_attempt_at"], key))
        self.data.delete(partition, layout.dedup_key(delivery["owner"], delivery["channel_id"], delivery["id"]))
        self.data.delete(partition, key)

    def purge(self, partition: int, owner: str, channel_id: str) -> None:
        for key, delivery in self.data.scan(partition, *layout.deliveries_range(owner, channel_id)):
            self.forget(partition, key, delivery)
        for low, high in layout.channel_range(owner, channel_id):
            for key, _ in self.data.scan(partition, low, high):
                self.data.delete(partition, key)
        self.data.delete(partition, layout.kept_key(owner, channel_id))

    # -- the effects ------------------------------------------------------------

    def launch(self) -> None:
        """Start the attempts the last fold made due (its state is durable by now)."""
        settled, self.settled_claims = self.settled_claims, []
        for token, won in settled:
            claim = self.claims.pop(token, None)
            if claim is not None and not claim.done():
                claim.set_result(won)
        launching, self.to_launch = self.to_launch, []
        owned_now = set() if ownership.paused(self.engine.app) else ownership.assigned(self.engine.app)
        now = time.time()
        for partition, key in launching:
            if key in self.in_flight or partition not in owned_now:
                continue
            delivery = self.data.get(partition, key)
            if delivery is None or delivery["status"] != "pending":
                continue
            if delivery["next_attempt_at"] > now + 0.05:
                continue  # a tick folded before the last attempt's outcome saw it due: the backoff still runs
            attempt = len(delivery["attempts"]) + 1
            self.in_flight[key] = attempt
            if layout.in_doubt(delivery):  # claimed by a worker that did not live to record the outcome
                outcome = unknown("the worker sending it stopped before it knew the outcome")
                asyncio.ensure_future(self.record(partition, key, delivery, attempt, time.time(), 0.0, outcome))
            else:
                asyncio.ensure_future(self.attempt(partition, key, delivery, attempt))

    async def produce(self, partition: int, owner: str, message: dict) -> None:
        await self.engine.app.producer.send_and_wait(topics.NOTIFICATION_DELIVERIES, entity_key(owner),
                                                     orjson.dumps(message), partition, None, None)

    async def attempt(self, partition: int, key: bytes, delivery: dict, number: int) -> None:
        async with self.slots:
            if not await self.claim(partition, key, delivery, number):
                self.in_flight.pop(key, None)
                return
            started, at = time.monotonic(), time.time()
            channel = self.channel(partition, delivery["owner"], delivery["channel_id"])
            outcome = await self.send(channel, delivery)
            self.counts["attempts"] += 1
            await self.record(partition, key, delivery, number, at, time.monotonic() - started, outcome)

    async def claim(self, partition: int, key: bytes, delivery: dict, number: int) -> bool:
        """Claim attempt `number` on the topic and wait for the fold to say whether it was the first claim.

        The claim is in Kafka before anything is sent, so whoever owns the
        partition next sees it; an attempt not won sends nothing.
        """
        token = uuid.uuid4().hex
        self.claims[token] = claim = asyncio.get_running_loop().create_future()
        try:
            await self.produce(partition, delivery["owner"], {"kind": "claimed", "delivery_key": key.hex(),
                                                              "attempt": number, "token": token, "at": time.time()})
            return await asyncio.wait_for(claim, CLAIM_TIMEOUT) and ownership.serves(self.engine.app, partition)
        except asyncio.TimeoutError:
            return False  # not folded here (the partition moved?): its owner finds the claim without outcome
        except Exception:
            log.exception("claiming attempt %d of %s failed; it will be made later", number, delivery["id"])
            return False
        finally:
            self.claims.pop(token, None)

    async def send(self, channel: dict | None, delivery: dict) -> dict:
        if channel is None:
            return {"outcome": "failed", "error": "the channel was deleted", "final": True}
        if delivery["kind"] != "code" and not (channel["enabled"] and channel["verified"]):
            return {"outcome": "failed", "final": True,
                    "error": "the channel is " + ("disabled" if channel["verified"] else "not verified")}
        code = None
        if delivery["kind"] == "code":
            try:
                code = unseal(self.engine.settings.secrets_key, delivery["code"])
            except Exception:
                return {"outcome": "failed", "error": "the code cannot be unsealed: ask for a new one", "final": True}
        subject, text = layout.rendered(delivery, code)
        return await self.transports.send(channel, delivery, subject, text, code)

    async def record(self, partition: int, key: bytes, delivery: dict, number: int, at: float, took: float,
                     outcome: dict) -> None:
        message = {"kind": "attempted", "delivery_key": key.hex(), "attempt": number, "at": at,
                   "duration_ms": round(took * 1000, 1), **outcome}
        try:
            await self.produce(partition, delivery["owner"], message)
        except Exception:
            log.exception("recording attempt %d of %s failed; its outcome is unknown", number, delivery["id"])
            self.in_flight.pop(key, None)

    async def close(self) -> None:
        await self.transports.close()
