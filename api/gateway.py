"""How the stateless API reaches the engine: commands out, replies back, reads to owners.

Everything the API knows it reads from Kafka at start and keeps following:
which worker owns which partition (`workers`), API keys (`access`), which
monitors, heartbeats and webhooks exist (`directory`), and the replies to its
own commands (`command-replies`). Restart it anywhere; it holds no state of
its own (invariant 2).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from api.directory import Directory
from api.status_page_views import StatusPageViews
from engine import deployment as deployments
from engine.deployment import Ingest
from engine import following, topics
from engine.metrics import COMMAND_REPLY_SECONDS
from engine.partitioning import entity_key, partition_for
from engine.settings import INTERNAL_HEADER, Settings

log = logging.getLogger(__name__)

KEY_USE_FLUSH = 10.0          # seconds between reports of when keys were last used
SESSIONS_PRUNED_AT = 10_000   # live sessions held before the expired ones are dropped (then twice the rest)


class EngineUnavailable(Exception):
    """No worker answered for a partition within the request timeout (or a rescale is switching over)."""

    retry_after: int | None = None


class Rescaling(EngineUnavailable):
    """A rescale is moving the deployment: commands and owner reads wait until it is done; ingest does not."""

    retry_after = deployments.RETRY_AFTER

    def __init__(self, deployment: deployments.Deployment) -> None:
        super().__init__(f"the deployment is moving from {deployment.partitions} to {deployment.next_partitions} "
                         "partitions (pingstream rescale); check results, check-ins and webhook events are still "
                         "accepted, other requests are answered once it is done")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, for which team: a program with an API key, or a person with an access token."""
    org_id: str
    scopes: frozenset[str]
    key_id: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    role: str | None = None
    email: str | None = None

    def can(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_person(self) -> bool:
        return self.user_id is not None

    @property
    def rate_key(self) -> str:
        """What a rate limit counts against: the key, or the person in this team."""
        return f"key:{self.key_id}" if self.key_id else f"user:{self.user_id}:{self.org_id}"

    @property
    def actor(self) -> dict:
        return {"type": "api_key", "id": self.key_id} if self.key_id else {"type": "user", "id": self.user_id}


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.partitions = settings.partitions
        #: the deployment as the `deployment` topic says (engine/deployment.py); where ingest goes
        self.deployment = deployments.initial(settings)
        self._in_flight: Counter[int] = Counter()  # generation -> ingest sends not yet acknowledged by Kafka
        self._watch: deployments.Watch | None = None
        self._switching: asyncio.Task | None = None
        self.process = f"api:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.owners: dict[int, str] = {}          # partition -> owning worker's URL
        self.worker_partitions: dict[str, set[int]] = {}
        # what the `access` topic says (engine/access.py)
        self.api_keys: dict[str, dict] = {}       # sha256 of the secret -> key record
        self.teams: dict[str, dict] = {}          # team (organisation) id -> name, plan, deleted
        self.members: dict[str, dict[str, str]] = {}     # team -> {user: role}
        self.user_teams: dict[str, dict[str, str]] = {}  # user -> {team: role}
        self.revoked_sessions: dict[str, float] = {}     # session id -> until when its tokens could live
        #: session id -> (its user, until when its refresh token works): only these sessions' tokens count
        self.live_sessions: dict[str, tuple[str, float]] = {}
        self._prune_sessions_at = SESSIONS_PRUNED_AT
        self.deleted_users: set[str] = set()
        self.directory = Directory()
        self.status_pages = StatusPageViews()   # every page's live view (topic status-page-views)
        self.probes: dict[str, dict] = {}          # probe id -> what it last reported (probe/runner.py)
        #: name -> the catch-up running (shared by concurrent callers), when the last one started
        self._syncs: dict[str, asyncio.Task] = {}
        self._synced_at: dict[str, float] = {}
        self.keys_used: dict[str, dict[str, float]] = {}  # team -> {key id: last use}, not yet reported
        self._key_use_task: asyncio.Task | None = None
        self._replies: dict[str, asyncio.Future] = {}
        self._owner_changed = asyncio.Event()
        self._follow_task: asyncio.Task | None = None
        self.producer: AIOKafkaProducer | None = None
        self.registry: AIOKafkaConsumer | None = None
        self.http: aiohttp.ClientSession | None = None

    def is_internal(self, presented: str) -> bool:
        """Is `presented` this deployment's internal token? Constant time; an empty token never matches."""
        return self.settings.is_internal(presented)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        bootstrap = self.settings.bootstrap_servers
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=1, max_request_size=4 * 1024 * 1024,
        )
        await self.producer.start()
        await topics.ensure_registries(self.settings)
        self.deployment, _ = await deployments.read(self.settings)
        await self._open_registry(self.deployment)
        self._watch = deployments.Watch(self.settings, self.process, self._on_deployment, self._acknowledge)
        await self._watch.start()
        self._key_use_task = asyncio.create_task(self._report_key_use())
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout))

    async def _open_registry(self, deployment: deployments.Deployment) -> None:
        """Follow the registries of `deployment`'s generation: read them up to now, then keep following."""
        topics.use_generation(deployment.generation)
        self.partitions = deployment.partitions
        self.registry = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=20,
        )
        await self.registry.start()
        reply_tps = [TopicPartition(topics.COMMAND_REPLIES, p) for p in range(self.partitions)]
        registry_tps = [TopicPartition(topics.WORKERS, 0), TopicPartition(topics.ACCESS, 0),
                        TopicPartition(topics.PROBES, 0), *self.directory_tps,
                         *[TopicPartition(topics.STATUS_PAGE_VIEWS, p) for p in range(self.partitions)]]
        self.registry.assign(reply_tps + registry_tps)
        for tp in registry_tps:
            self.registry.seek(tp, 0)
        await self.registry.seek_to_end(*reply_tps)
        for tp in reply_tps:
            await self.registry.position(tp)  # resolve now: replies to come are read from here
        await self._catch_up(registry_tps)
        self._follow_task = asyncio.create_task(self._follow())

    # -- a rescale (engine/deployment.py) ---------------------------------------

    def _on_deployment(self, deployment: deployments.Deployment) -> None:
        """Ingest follows a move at once; the rest switches once the new generation is active."""
        self.deployment = deployment
        if deployment.state == deployments.ACTIVE and deployment.generation != topics.GENERATION:
            if self._switching is None or self._switching.done():
                self._switching = asyncio.create_task(self._switch(deployment))

    async def _switch(self, deployment: deployments.Deployment) -> None:
        """Follow the new generation's registries instead of the old one's (reads wait until then)."""
        old_registry, old_task = self.registry, self._follow_task
        # the directory and status pages are kept: the new generation's topics hold the same entries, re-keyed,
        # so ingest is checked against them all along; which worker owns which partition starts anew
        self.owners, self.worker_partitions = {}, {}
        if old_task is not None:
            old_task.cancel()
            await asyncio.gather(old_task, return_exceptions=True)
        while True:
            try:
                await self._open_registry(deployment)
                break
            except Exception:
                log.exception("following generation %d failed; retrying", deployment.generation)
                await asyncio.sleep(1.0)
        await old_registry.stop()
        log.warning("now serving generation %d with %d partitions", deployment.generation, deployment.partitions)

    @property
    def switching(self) -> bool:
        """A move is in progress, or this process still follows the old generation's registries."""
        return self.deployment.moving or self.deployment.generation != topics.GENERATION or (
            self._switching is not None and not self._switching.done())

    def _acknowledge(self) -> int | None:
        """The generation this process's ingest goes to, once nothing it sent elsewhere is on its way."""
        generation = self.deployment.ingest[0]
        if any(count for sent_to, count in self._in_flight.items() if sent_to != generation):
            return None
        return generation

    @contextlib.contextmanager
    def ingesting(self) -> Iterator[Ingest]:
        """Where to produce ingest now; held until Kafka has it, so a rescale knows when the old topics stop."""
        ingest = Ingest(*self.deployment.ingest)
        self._in_flight[ingest.generation] += 1
        try:
            yield ingest
        finally:
            self._in_flight[ingest.generation] -= 1

    def refuse_while_moving(self) -> None:
        if self.switching:
            raise Rescaling(self.deployment)

    @property
    def directory_tps(self) -> list[TopicPartition]:
        return [TopicPartition(topics.DIRECTORY, p) for p in range(self.partitions)]

    async def _end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return await following.end_offsets(self.settings, self.registry, tps)

    async def _catch_up(self, tps: list[TopicPartition]) -> None:
        """Read API keys, worker announcements and the directory up to now before serving anything."""
        ends = await self._end_offsets(tps)
        deadline = time.monotonic() + 30
        while not await self._reached(ends):
            if time.monotonic() > deadline:
                raise EngineUnavailable("could not read the access, workers and directory topics within 30 s")
            batch = await self.registry.getmany(*tps, timeout_ms=200)
            for records in batch.values():
                for record in records:
                    self._on_record(record)

    async def _reached(self, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await self.registry.position(tp) < end:
                return False
        return True

    async def _follow(self) -> None:
        async for batch in following.batches(self.registry, "replies and registries"):
            for records in batch.values():
                for record in records:
                    try:
                        self._on_record(record)
                    except Exception:
                        log.exception("ignoring an unreadable %s record", record.topic)

    async def stop(self) -> None:
        if self._watch is not None:
            await self._watch.stop()
        for task in (self._follow_task, self._key_use_task, self._switching):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._flush_key_use()
        for closer in (self.registry and self.registry.stop, self.producer and self.producer.stop,
                       self.http and self.http.close):
            if closer is not None:
                await closer()

    # -- what the registries say ---------------------------------------------

    def _on_record(self, record: Any) -> None:
        if record.topic == topics.DIRECTORY:
            self.directory.apply(record.key, record.value)
            return
        if record.topic == topics.STATUS_PAGE_VIEWS:
            self.status_pages.apply(record.key, record.value)
            return
        if record.topic == topics.PROBES:
            if record.value is None:
                self.probes.pop(record.key.decode(), None)
            else:
                self.probes[record.key.decode()] = orjson.loads(record.value)
            return
        if record.value is None:
            return
        value = orjson.loads(record.value)
        if record.topic == topics.COMMAND_REPLIES:
            future = self._replies.pop(value["request_id"], None)
            if future is not None and not future.done():
                future.set_result((value["status"], value["body"]))
        elif record.topic == topics.WORKERS:
            if value.get("generation", 0) == topics.GENERATION:  # a worker of another generation serves nothing here
                self._on_announcement(value)
        elif record.topic == topics.ACCESS:
            self.apply_access(value)

    def apply_access(self, value: dict) -> None:
        kind = value["kind"]
        if kind == "api_key":
            self.api_keys[value["hash"]] = value
        elif kind == "team":
            self.teams[value["id"]] = value
        elif kind == "member":
            org_id, user_id = value["org_id"], value["user_id"]
            if value["removed"]:
                self.members.get(org_id, {}).pop(user_id, None)
                self.user_teams.get(user_id, {}).pop(org_id, None)
            else:
                self.members.setdefault(org_id, {})[user_id] = value["role"]
                self.user_teams.setdefault(user_id, {})[org_id] = value["role"]
        elif kind == "session" and value.get("live"):
            self.live_sessions[value["id"]] = (value["user_id"], value["until"])
            if len(self.live_sessions) > self._prune_sessions_at:
                self._prune_live_sessions()
        elif kind == "session":
            self.live_sessions.pop(value["id"], None)
            if value["until"] > time.time():
                self.revoked_sessions[value["id"]] = value["until"]
            if len(self.revoked_sessions) > 10_000:
                now = time.time()
                self.revoked_sessions = {k: v for k, v in self.revoked_sessions.items() if v > now}
        elif kind == "user" and value.get("deleted"):
            self.deleted_users.add(value["id"])

    def session_user(self, sid: str) -> str | None:
        """The user of a live session: opened, not ended, and its last access token not yet expired."""
        live = self.live_sessions.get(sid)
        if live is None or live[1] + self.settings.access_token_ttl < time.time():
            return None
        return live[0]

    def _prune_live_sessions(self) -> None:
        """Sessions nobody refreshed until their end are forgotten, so the map holds live ones only."""
        now = time.time() - self.settings.access_token_ttl
        self.live_sessions = {sid: live for sid, live in self.live_sessions.items() if live[1] >= now}
        self._prune_sessions_at = max(SESSIONS_PRUNED_AT, 2 * len(self.live_sessions))

    async def sync_access(self, timeout: float = 3.0) -> None:
        """Read-your-writes for access: return once every access record published until now is applied.

        Called when a validly signed token or a well-formed key is not known yet
        (a key created, a member added a moment ago through another process).
        """
        await self._sync(topics.ACCESS, [TopicPartition(topics.ACCESS, 0)], timeout)

    async def sync_directory(self, since: float | None = None, timeout: float = 3.0) -> None:
        """Return once every directory entry published until now is applied.

        Called when ingest names an entity not known here yet (created a moment
        ago through another process), and after a command that removed one.
        `since` (time.monotonic()): a catch-up that started after it is enough.
        """
        if since is not None and self._synced_at.get(topics.DIRECTORY, -1.0) > since:
            return
        await self._sync(topics.DIRECTORY, self.directory_tps, timeout)

    async def _sync(self, name: str, tps: list[TopicPartition], timeout: float) -> None:
        """One catch-up with `tps` (ListOffsets, then wait for the follower), shared by concurrent callers."""
        task = self._syncs.get(name)
        if task is None or task.done():
            task = self._syncs[name] = asyncio.create_task(self._catch_up_with(name, tps))
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except (asyncio.TimeoutError, Exception):
            log.info("could not catch up with the %s topic within %.1f s", name, timeout)

    async def _catch_up_with(self, name: str, tps: list[TopicPartition]) -> None:
        started = time.monotonic()
        ends = await self._end_offsets(tps)
        while not await self._reached(ends):
            await asyncio.sleep(0.01)
        self._synced_at[name] = started

    def _on_announcement(self, announcement: dict) -> None:
        url = announcement["url"]
        owned = set(announcement["partitions"])
        for partition in self.worker_partitions.get(url, set()) - owned:
            if self.owners.get(partition) == url:
                del self.owners[partition]
        for partition in owned:
            self.owners[partition] = url
        self.worker_partitions[url] = owned
        self._owner_changed.set()

    def key_used(self, org_id: str, key_id: str) -> None:
        self.keys_used.setdefault(org_id, {})[key_id] = time.time()

    async def _report_key_use(self) -> None:
        while True:
            await asyncio.sleep(KEY_USE_FLUSH)
            try:
                await self._flush_key_use()
            except Exception:
                log.exception("reporting when API keys were last used failed; will retry")

    async def _flush_key_use(self) -> None:
        """One key.touch command per team: the team's partition records last_used_at (invariant 1)."""
        if self.switching:
            return  # a rescale is moving the deployment: reported once it is done
        used, self.keys_used = self.keys_used, {}
        if self.producer is not None:
            for org_id, keys in used.items():
                await self.send_command("key.touch", org_id, org_id, {"keys": keys})

    def team_alive(self, org_id: str) -> bool:
        team = self.teams.get(org_id)
        return team is not None and not team.get("deleted")

    # -- writes ---------------------------------------------------------------

    async def send_command(self, kind: str, org_id: str, entity_id: str, body: Any = None,
                           request_id: str | None = None) -> None:
        """Put a command on the entity's partition (acks=all); nobody waits for its answer."""
        self.refuse_while_moving()
        command = {"id": request_id or uuid.uuid4().hex, "kind": kind, "org_id": org_id, "entity_id": entity_id,
                   "body": body, "at": time.time()}
        await self.produce(topics.COMMANDS, orjson.dumps(command), key=entity_key(entity_id),
                           partition=partition_for(entity_id, self.partitions), what="the command")

    async def command(self, kind: str, org_id: str, entity_id: str, body: Any = None) -> tuple[int, Any]:
        """Send a command to the entity's partition and wait for the owning agent's answer."""
        request_id = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._replies[request_id] = future
        started = time.perf_counter()
        try:
            await self.send_command(kind, org_id, entity_id, body, request_id)
            reply = await asyncio.wait_for(future, self.settings.request_timeout)
            COMMAND_REPLY_SECONDS.labels(kind, "replied").observe(time.perf_counter() - started)
            return reply
        except asyncio.TimeoutError:
            COMMAND_REPLY_SECONDS.labels(kind, "timeout").observe(time.perf_counter() - started)
            raise EngineUnavailable(
                f"no worker applied the command within {self.settings.request_timeout:g} s; "
                "is a worker running? The command may still be applied."
            ) from None
        finally:
            self._replies.pop(request_id, None)

    async def access_command(self, kind: str, org_id: str, entity_id: str, body: Any = None) -> tuple[int, Any]:
        """A command that changes who may do what; once applied, this process follows its access records too.

        The agent publishes access records before it replies, so after the
        reply one catch-up of the `access` topic is enough: the next request
        here already sees the new key, the ended session, the new member.
        """
        status, reply = await self.command(kind, org_id, entity_id, body)
        if status < 400:
            await self.sync_access()
        return status, reply

    async def directory_command(self, kind: str, org_id: str, entity_id: str, body: Any = None) -> tuple[int, Any]:
        """A command that removes or disables an entity; once applied, ingest through this process knows it.

        The agent publishes the directory entry before it replies, so one
        catch-up after the reply is enough.
        """
        status, reply = await self.command(kind, org_id, entity_id, body)
        if status < 400:
            await self.sync_directory()
        return status, reply

    async def produce_results(self, ingest: Ingest, org_id: str, by_partition: dict[int, list[dict]]) -> None:
        """One envelope per partition of `ingest`; returns once Kafka acknowledged every one (acks=all)."""
        topic = ingest.topic(topics.CHECK_RESULTS)
        await asyncio.gather(*[self.produce(topic, orjson.dumps({"org_id": org_id, "results": results}),
                                            partition=partition, what="the check results")
                               for partition, results in by_partition.items()])

    async def produce(self, topic: str, value: bytes, *, partition: int, key: bytes | None = None,
                      what: str = "the request") -> None:
        """Returns once Kafka acknowledged the record (acks=all); a broker that fails is asked again.

        Never a false 202, and no half-stored batch either: when a batch spans
        partitions and one of them fails (a broker restarting, its storage gone
        for a moment), answering 503 would make the client send the stored
        part again, counted twice. So a failed record is sent again until the
        request timeout; only then does the client hear 503.
        """
        deadline = time.monotonic() + self.settings.request_timeout
        pause = 0.1
        while True:
            try:
                await (await self.producer.send(topic, value, key=key, partition=partition))
                return
            except KafkaError as exc:
                if time.monotonic() + pause > deadline:
                    raise EngineUnavailable(f"Kafka did not take {what} within {self.settings.request_timeout:g} s "
                                            f"({exc!r}); is the broker running?") from exc
                log.warning("Kafka did not take a record for %s[%d] (%r); sending it again", topic, partition, exc)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    # -- reads ----------------------------------------------------------------

    def partition_of(self, entity_id: str) -> int:
        return partition_for(entity_id, self.partitions)

    async def read(self, partition: int, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        """GET an owner view from the worker owning `partition`, following ownership changes."""
        status, body, _ = await self.read_from_owner(partition, path, params)
        return status, body

    async def read_from_owner(self, partition: int, path: str,
                              params: dict[str, Any] | None = None) -> tuple[int, Any, str]:
        """Like read(), also naming the worker that answered."""
        self.refuse_while_moving()
        deadline = time.monotonic() + self.settings.request_timeout
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        headers = {INTERNAL_HEADER: self.settings.internal_token}
        while True:
            url = self.owners.get(partition)
            if url is not None:
                try:
                    async with self.http.get(f"{url}/internal/partitions/{partition}{path}",
                                             params=query, headers=headers) as response:
                        body = await response.read()
                        if response.status != 421:  # 421: not (or no longer, or not yet) the owner
                            return response.status, orjson.loads(body), url
                except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
                    log.info("owner %s of partition %d did not answer: %r", url, partition, exc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineUnavailable(
                    f"no worker serves partition {partition} right now (starting, rebalancing or down)"
                )
            self._owner_changed.clear()
            try:
                await asyncio.wait_for(self._owner_changed.wait(), min(0.25, remaining))
            except asyncio.TimeoutError:
                pass
