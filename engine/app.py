"""The Faust application and a worker's runtime: settings, app, state store, tables.

What runs on it is declared by components (engine/component.py), listed by the
composition root (agents/__init__.py) and wired by engine/worker.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import faust

from engine import commit_holds, metrics, topics, uncommitted_seek
from engine.org_config import OrgConfig
from engine.settings import Settings
from tables import heartbeat_data, monitor_data, webhook_data
from tables.store import StateStore, TableStore


def raw_topic(app: faust.App, name: str, partitions: int | None) -> faust.TopicT:
    """A topic whose keys and values we (de)serialise ourselves, fast, with orjson."""
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


@dataclass(frozen=True)
class Engine:
    """A worker's runtime: settings, the Faust app, the state store and its tables. Built whole, never filled in."""

    settings: Settings
    app: faust.App
    state: StateStore
    #: every organisation's rulesets and alert-channel subscriptions, followed from `org-config`
    org_config: OrgConfig
    #: monitor id -> its configuration (agents/monitors/commands.py)
    monitors: TableStore
    #: per-monitor runtime, statistics buckets, recent checks, state changes (agents/monitors/fold.py)
    monitor_data: TableStore
    #: organisation -> ids of its resources, for cheap pagination (agents/org_index/commands.py)
    org_index: TableStore
    #: heartbeat id -> its configuration (agents/heartbeats/commands.py)
    heartbeats: TableStore
    #: per-heartbeat runtime, buckets, history, and each partition's deadline index (agents/heartbeats/fold.py)
    heartbeat_data: TableStore
    #: webhook id -> its configuration (commands); its recent events (agents/webhooks/fold.py)
    webhooks: TableStore
    webhook_data: TableStore
    #: organisation -> its rulesets (agents/rulesets/commands.py; every worker follows them through org_config)
    rulesets: TableStore
    #: incident routes, incidents and their timelines, by dedup key (agents/incidents/fold.py)
    incidents: TableStore
    #: alert channel id -> its configuration and secret (commands); its deliveries (agents/alert_channels/fold.py)
    alert_channels: TableStore
    alert_channel_deliveries: TableStore
    #: owner (user:<id> / team:<id>) -> its notification channels (agents/notification_channels/commands.py);
    #: their deliveries, dedup keys and due index (agents/notification_channels/fold.py)
    notification_channels: TableStore
    notification_deliveries: TableStore
    #: team (organisation) id -> its name, plan, members, invitations, API keys (agents/teams/commands.py)
    teams: TableStore
    #: normalised email -> the account, its codes and sessions (agents/accounts/commands.py)
    accounts: TableStore
    #: per-monitor certificate and domain runtime, domains by name, due and lookup indexes (agents/certificates)
    certificates: TableStore
    #: monitor id -> its SSL and domain reminders (agents/certificates/commands.py)
    certificate_reminders: TableStore
    #: organisation -> its on-call schedules, the team's and its members' own (agents/on_call/commands.py)
    on_call_schedules: TableStore
    #: organisation -> its paging groups and their members (agents/paging_groups/commands.py)
    paging_groups: TableStore
    #: status pages' configuration and name claims (commands); bindings and live models (agents/status_pages)
    status_pages: TableStore
    #: organisation -> its pages and their timers' due index (agents/pages/commands.py)
    pages: TableStore

    @property
    def partitions(self) -> int:
        return self.settings.partitions


def worker_dir(settings: Settings) -> Path:
    """Where this worker keeps its RocksDB state: one directory per generation of topics (engine/topics.py)."""
    home = settings.data_dir / f"worker-{settings.worker_port}"
    if topics.GENERATION == 0:
        return home
    (home / f"g{topics.GENERATION}").mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    return home / f"g{topics.GENERATION}"


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store="rocksdb://",
        datadir=str(worker_dir(settings)),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=settings.commit_interval,
        producer_acks=-1,
        producer_max_batch_size=settings.producer_batch_bytes,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=settings.standby_replicas,
        processing_guarantee="at_least_once",
        web_enabled=False,  # our aiohttp server (engine/owner_reads.py) serves owner reads and the API
        stream_wait_empty=False,
        logging_config=None,
    )
    uncommitted_seek.install()  # Faust defects on any broker: see the modules
    commit_holds.install()
    if settings.on_tansu:
        from engine import tansu_fetch_wait, tansu_offsets

        tansu_offsets.install(app)
        tansu_fetch_wait.install(app)
    return app


def build_engine(settings: Settings) -> Engine:
    """The runtime of one worker: its Faust app, state store and every table, whole."""
    app = create_app(settings)
    state = StateStore(app, settings.partitions, cache_entries=settings.cache_entries, on_flush=metrics.flushed)
    return Engine(
        settings=settings,
        app=app,
        state=state,
        org_config=OrgConfig(),
        monitors=state.table("monitors", help="monitor configuration by id"),
        monitor_data=state.table("monitor_data", encode=monitor_data.encode_value, decode=monitor_data.decode_value,
                                 help="monitor runtime, buckets, recent checks, history"),
        org_index=state.table("org_index", help="resource ids by organisation"),
        heartbeats=state.table("heartbeats", help="heartbeat configuration by id"),
        heartbeat_data=state.table("heartbeat_data", encode=heartbeat_data.encode_value,
                                   decode=heartbeat_data.decode_value,
                                   help="heartbeat runtime, buckets, history, deadline index"),
        webhooks=state.table("webhooks", help="inbound webhook configuration by id"),
        webhook_data=state.table("webhook_data", encode=webhook_data.encode_value, decode=webhook_data.decode_value,
                                 help="recent events of each inbound webhook"),
        rulesets=state.table("rulesets", help="rulesets by organisation"),
        incidents=state.table("incidents", help="incident routes, incidents and timelines"),
        alert_channels=state.table("alert_channels", help="alert channel configuration and signing secret"),
        # the table keeps its first name: its changelog topic holds the deliveries already made
        alert_channel_deliveries=state.table("deliveries", help="outbound deliveries, their attempts, the due index"),
        notification_channels=state.table("notification_channels",
                                          help="notification channels by owner, sealed secrets, codes as hashes"),
        notification_deliveries=state.table("notification_deliveries",
                                            help="notification deliveries, their attempts, dedup keys, due index"),
        teams=state.table("teams", help="teams: plan, members, invitations, API keys"),
        accounts=state.table("accounts", help="accounts by email: password hash, codes, sessions"),
        certificates=state.table("certificates", help="certificates and domains seen, reminders fired, indexes"),
        certificate_reminders=state.table("certificate_reminders", help="SSL and domain reminders by monitor"),
        on_call_schedules=state.table("on_call_schedules", help="on-call schedules by organisation"),
        paging_groups=state.table("paging_groups", help="paging groups by organisation"),
        status_pages=state.table("status_pages", help="status pages, name claims, bindings, live models"),
        pages=state.table("pages", help="pages by organisation, and the due index of their timers"),
    )
