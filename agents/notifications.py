"""notifications → signed deliveries to alert channels, retried with backoff, each attempt recorded.

1. the topic: `notifications`, keyed by alert channel id:
   `deliver` (an event for one channel, with the exact body to sign; agents emit
   it, never a request handler), `attempted` (the outcome of one HTTP attempt,
   sent back by the attempt itself), `tick` (a timer's, each second, to every
   owned partition: retries are due), `purge` (the channel was deleted);
2. the state: `deliveries` (tables/deliveries.py: each delivery with its
   attempts, and a due index), read-only `alert_channels` (url, secret, retry
   bounds: written by the alert.* commands below);
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
import mode
import orjson
from aiohttp import web
from pydantic import ValidationError

from agents.commands import CommandApplier, handles
from agents.housekeeping import owned
from agents.folding import fold_batches
from api.errors import error_response, json_response
from engine import topics
from engine.app import Engine, raw_topic
from engine.dead_letters import DeadLetters
from engine.org_config import alert_key
from engine.outbound import guarded_session, outcome_of
from engine.sealing import unseal
from engine.partitioning import entity_key, partition_for
from engine.web import BASE, owned_partition
from schemas.alert_channel import ALERT_EVENTS, Notification
from schemas.validation import field_errors
from tables import deliveries as layout
from tables.monitor_data import position
from tables.monitor_views import iso

log = logging.getLogger(__name__)

TICK_EVERY = 1.0
DUE_PER_TICK = 200       # deliveries launched per partition per tick at most
CONCURRENCY = 64         # HTTP attempts in flight per worker


def announce(engine: Engine, org_id: str, event: str, at: float, data: dict, source_id: str) -> int:
    """Queue `event` for every channel of the organisation subscribed to it; returns how many."""
    if event not in ALERT_EVENTS:
        return 0
    channels = engine.org_config.channels_for(org_id, event)
    if not channels:
        return 0
    body = orjson.dumps({"event": event, "timestamp": iso(at), "data": data}).decode()
    for channel_id in channels:
        notification = {"kind": "deliver", "id": f"{source_id}:{channel_id}", "channel_id": channel_id,
                        "org_id": org_id, "event": event, "at": at, "body": body}
        engine.state.emit(topics.NOTIFICATIONS, entity_key(channel_id), orjson.dumps(notification),
                          partition_for(channel_id, engine.partitions))
    return len(channels)


class Notifier:
    """Folds notifications of owned partitions into deliveries; launches the attempts they make due."""

    def __init__(self, engine: Engine, dead_letters: DeadLetters) -> None:
        self.engine = engine
        self.data = engine.deliveries
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

    def fold_message(self, partition: int, offset: int, value: bytes | None) -> None:
        try:
            message = orjson.loads(value or b"")
            kind = message["kind"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.dead_letters.send(topics.NOTIFICATIONS, partition, offset, 0, value, f"not a notification: {exc!r}")
            return
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
            self.dead_letters.send(topics.NOTIFICATIONS, partition, offset, 0, value, f"unknown kind {kind!r}")

    def fold_deliver(self, partition: int, offset: int, message: dict) -> None:
        try:
            notification = Notification.model_validate(message)
        except ValidationError as exc:
            self.dead_letters.send(topics.NOTIFICATIONS, partition, offset, 0, message, "invalid notification",
                                   field_errors(exc))
            return
        channel_id = notification.channel_id
        if self.channels.get(partition, entity_key(channel_id)) is None:
            return  # the channel was deleted meanwhile: nobody to tell
        pos = position(offset, 0)
        runtime_key = layout.runtime_key(channel_id)
        runtime = self.data.get(partition, runtime_key) or {"pos": -1, "kept": 0}
        key = layout.delivery_key(channel_id, notification.at, notification.id)
        if runtime["pos"] >= pos or self.data.get(partition, key) is not None:
            self.counts["duplicates"] += 1  # redelivered, or re-emitted with the same id
            return
        now = time.time()
        delivery = {"id": notification.id, "channel_id": channel_id, "event": notification.event,
                    "created_at": notification.at, "body": notification.body, "status": "pending",
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
        channel = self.channels.get(partition, entity_key(delivery["channel_id"]))
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
                topics.NOTIFICATIONS, partition, offset, 0,
                {"delivery_id": delivery["id"], "channel_id": delivery["channel_id"], "event": delivery["event"],
                 "url": channel["spec"]["url"] if channel else None, "attempts": delivery["attempts"]},
                f"delivery of {delivery['event']} to alert channel {delivery['channel_id']} failed: "
                f"{delivery['reason']} (last: {attempt.get('status_code') or attempt.get('error')})")
        self.data.put(partition, key, delivery)

    def forget(self, partition: int, key: bytes, delivery: dict) -> None:
        if delivery["status"] == "pending":
            self.data.delete(partition, layout.due_key(delivery["next_attempt_at"], key))
        self.data.delete(partition, key)

    def purge(self, partition: int, channel_id: str) -> None:
        for key, value in self.data.scan(partition, *layout.channel_prefix(channel_id)):
            if key.startswith(channel_id.encode() + layout.SEP + b"d"):
                self.forget(partition, key, value)
            else:
                self.data.delete(partition, key)

    # -- the effects ------------------------------------------------------------

    def launch(self) -> None:
        """Start the attempts the last fold made due (its state is durable by now)."""
        launching, self.to_launch = self.to_launch, []
        owned_now = self.state.owned_partitions()
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
        channel = self.channels.get(partition, entity_key(delivery["channel_id"]))
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
            await self.engine.app.producer.send_and_wait(
                topics.NOTIFICATIONS, entity_key(delivery["channel_id"]), orjson.dumps(message), partition, None, None)
        except Exception:
            log.exception("recording attempt %d of %s failed; it will be made again", number, delivery["id"])
            self.in_flight.pop(key, None)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()


# -- alert channel commands (applied by the commands agent, entity id = channel id) --------

def _publish(applier: CommandApplier, config: dict | None, channel_id: str) -> None:
    value = None if config is None else orjson.dumps(
        {"kind": "alert", "id": channel_id, "org_id": config["org_id"], "events": config["spec"]["events"]})
    applier.state.emit(topics.ORG_CONFIG, alert_key(channel_id), value, 0)


def _owned_channel(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    config = applier.engine.alert_channels.get(partition, entity_key(command["entity_id"]))
    if config is None or config["org_id"] != command["org_id"]:
        applier.reply(command["id"], 404, {"error": "not_found", "message": f"alert {command['entity_id']} not found"})
        return None
    return config


@handles("alert.create")
def alert_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    key = entity_key(command["entity_id"])
    existing = applier.engine.alert_channels.get(partition, key)
    if existing is not None:
        if existing["pos"] == offset:
            applier.forward_to_index(command, "index.add", existing, 201, layout.channel_view(existing),
                                     collection="alerts")
        else:
            applier.reply(command["id"], 409, {"error": "conflict", "message": "an alert with this id exists"})
        return
    # the secret arrives sealed (engine/sealing.py) and stays so; the API adds the clear one to its answer
    config = {"pos": offset, "id": command["entity_id"], "org_id": command["org_id"], "spec": command["body"]["spec"],
              "secret": command["body"]["secret"], "secret_prefix": command["body"].get("secret_prefix"),
              "secret_rotated_at": None, "created_at": command["at"], "updated_at": command["at"]}
    applier.engine.alert_channels.put(partition, key, config)
    _publish(applier, config, config["id"])
    applier.forward_to_index(command, "index.add", config, 201, layout.channel_view(config), collection="alerts")


@handles("alert.rotate")
def alert_rotate(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = _owned_channel(applier, partition, command)
    if config is None:
        return
    if config["pos"] < offset:
        config = {**config, "secret": command["body"]["secret"], "secret_prefix": command["body"].get("secret_prefix"),
                  "secret_rotated_at": command["at"], "updated_at": command["at"], "pos": offset}
        applier.engine.alert_channels.put(partition, entity_key(config["id"]), config)
    applier.reply(command["id"], 200, layout.channel_view(config))


@handles("alert.delete")
def alert_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    config = _owned_channel(applier, partition, command)
    if config is None:
        return
    applier.engine.alert_channels.delete(partition, entity_key(config["id"]))
    _publish(applier, None, config["id"])
    applier.state.emit(topics.NOTIFICATIONS, entity_key(config["id"]),
                       orjson.dumps({"kind": "purge", "channel_id": config["id"]}), partition)
    applier.forward_to_index(command, "index.remove", config, 204, None, collection="alerts")


# -- owner reads ---------------------------------------------------------------

reads = web.RouteTableDef()


def _channel(request: web.Request, partition: int, channel_id: str | None = None) -> dict | None:
    engine: Engine = request.app["engine"]
    config = engine.alert_channels.get(partition, entity_key(channel_id or request.match_info["id"]))
    return config if config is not None and config["org_id"] == request.query.get("org") else None


@reads.get(BASE + "/alerts")
async def channel_views(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    configs = [_channel(request, partition, channel_id)
               for channel_id in filter(None, request.query.get("ids", "").split(","))]
    return json_response({"data": [layout.channel_view(config) for config in configs if config is not None]})


@reads.get(BASE + "/alerts/{id}")
async def channel(request: web.Request) -> web.Response:
    config = _channel(request, owned_partition(request))
    if config is None:
        return error_response(404, "not_found", f"alert {request.match_info['id']} not found")
    return json_response({"data": layout.channel_view(config)})


@reads.get(BASE + "/alerts/{id}/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    partition = owned_partition(request)
    config = _channel(request, partition)
    if config is None:
        return error_response(404, "not_found", f"alert {request.match_info['id']} not found")
    engine: Engine = request.app["engine"]
    page, per_page = int(request.query["page"]), int(request.query["per_page"])
    skip = (page - 1) * per_page
    found = engine.deliveries.scan(partition, *layout.deliveries_range(config["id"]), reverse=True,
                                   limit=skip + per_page)
    runtime = engine.deliveries.get(partition, layout.runtime_key(config["id"])) or {"kept": 0}
    total = runtime["kept"]
    return json_response({"data": [layout.delivery_view(d) for _, d in found[skip:]],
                          "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}})


def register(engine: Engine) -> Notifier:
    dead_letters = DeadLetters(engine.state)
    notifier = Notifier(engine, dead_letters)
    engine.internal_routes.append(reads)
    app = engine.app

    @app.agent(raw_topic(app, topics.NOTIFICATIONS, engine.partitions), name="notifications")
    async def notifications(stream):
        await fold_batches(engine, stream, notifier, topics.NOTIFICATIONS, after=notifier.launch)

    @app.timer(TICK_EVERY)
    async def delivery_tick() -> None:
        tick = orjson.dumps({"kind": "tick", "at": time.time()})
        for partition in owned(engine):
            await app.producer.send(topics.NOTIFICATIONS, None, tick, partition, None, None)

    class DeliveryClient(mode.Service):
        async def on_stop(self) -> None:
            await notifier.close()

    app.service(DeliveryClient)
    engine.incident_engine["notifications"] = notifier
    return notifier
