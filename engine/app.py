"""The Faust application and everything a worker wires together: topics, tables, agents.

Agents and timers live in agents/; the state they keep in tables/. This module
builds them for one `Settings` and is the only place that knows all of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import faust

from engine import topics
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


@dataclass
class Engine:
    settings: Settings
    app: faust.App
    state: StateStore
    #: monitor id -> its configuration (written by agents.commands)
    monitors: TableStore
    #: per-monitor runtime, statistics buckets, recent checks, state changes (agents.checks)
    monitor_data: TableStore
    #: organisation -> ids of its resources, for cheap pagination (agents.commands)
    org_index: TableStore
    check_results: faust.TopicT
    commands: faust.TopicT
    check_folder: Any = None  # agents.checks.CheckFolder, for the worker's health view
    #: owner-read routes (aiohttp RouteTableDef) other agents add to the worker's server
    internal_routes: list = field(default_factory=list)
    #: heartbeat id -> its configuration (written by agents.heartbeat_commands)
    heartbeats: TableStore | None = None
    #: per-heartbeat runtime, buckets, history, and each partition's deadline index (agents.heartbeats)
    heartbeat_data: TableStore | None = None
    heartbeat_checkins: faust.TopicT | None = None
    heartbeat_folder: Any = None  # agents.heartbeats.HeartbeatFolder, for the worker's heartbeat health view
    #: webhook id -> its configuration (commands); its recent events (agents.webhooks)
    webhooks: TableStore | None = None
    webhook_data: TableStore | None = None
    #: organisation -> its rulesets (commands; every worker follows them through org_config)
    rulesets: TableStore | None = None
    #: incident routes, incidents and their timelines, by dedup key (agents.incidents)
    incidents: TableStore | None = None
    #: alert channel id -> its configuration and secret (commands); its deliveries (agents.notifications)
    alert_channels: TableStore | None = None
    deliveries: TableStore | None = None
    org_config: Any = None  # engine.org_config.OrgConfig: every organisation's rulesets and alert subscriptions
    #: webhook, incident and notification agents by name, each with .health(), for the health check
    incident_engine: dict = field(default_factory=dict)
    #: team (organisation) id -> its name, plan, members, invitations, API keys (agents.team_commands)
    teams: TableStore | None = None
    #: normalised email -> the account, its codes and sessions (agents.account_commands)
    accounts: TableStore | None = None

    @property
    def partitions(self) -> int:
        return self.settings.partitions


def create_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store="rocksdb://",
        datadir=str(settings.data_dir / f"worker-{settings.worker_port}"),
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
        web_enabled=False,  # our aiohttp server (engine.web) serves owner reads and the API
        stream_wait_empty=False,
        logging_config=None,
    )
    if settings.on_tansu:
        from engine import tansu_fetch_wait, tansu_offsets

        tansu_offsets.install(app)
        tansu_fetch_wait.install(app)
    return app


def build(settings: Settings) -> Engine:
    app = create_app(settings)
    state = StateStore(app, settings.partitions, cache_entries=settings.cache_entries)
    engine = Engine(
        settings=settings,
        app=app,
        state=state,
        monitors=state.table("monitors", help="monitor configuration by id"),
        monitor_data=state.table("monitor_data", encode=monitor_data.encode_value, decode=monitor_data.decode_value,
                                 help="monitor runtime, buckets, recent checks, history"),
        org_index=state.table("org_index", help="resource ids by organisation"),
        check_results=raw_topic(app, topics.CHECK_RESULTS, settings.partitions),
        commands=raw_topic(app, topics.COMMANDS, settings.partitions),
        heartbeats=state.table("heartbeats", help="heartbeat configuration by id"),
        heartbeat_data=state.table("heartbeat_data", encode=heartbeat_data.encode_value,
                                   decode=heartbeat_data.decode_value,
                                   help="heartbeat runtime, buckets, history, deadline index"),
        heartbeat_checkins=raw_topic(app, topics.HEARTBEATS, settings.partitions),
        webhooks=state.table("webhooks", help="inbound webhook configuration by id"),
        webhook_data=state.table("webhook_data", encode=webhook_data.encode_value, decode=webhook_data.decode_value,
                                 help="recent events of each inbound webhook"),
        rulesets=state.table("rulesets", help="rulesets by organisation"),
        incidents=state.table("incidents", help="incident routes, incidents and timelines"),
        alert_channels=state.table("alert_channels", help="alert channel configuration and signing secret"),
        deliveries=state.table("deliveries", help="outbound deliveries, their attempts, the due index"),
        teams=state.table("teams", help="teams: plan, members, invitations, API keys"),
        accounts=state.table("accounts", help="accounts by email: password hash, codes, sessions"),
    )
    from agents import checks, commands, housekeeping  # each registers its agent/timers on the app

    commands.register(engine)
    checks.register(engine)
    housekeeping.register(engine)
    from agents import heartbeat_commands, heartbeats  # noqa: F401  (heartbeat_commands adds handlers on import)

    heartbeats.register(engine)
    from agents import incidents, notifications, rulesets, webhooks
    from engine import org_config

    engine.org_config = org_config.register(engine)
    rulesets.register(engine)
    webhooks.register(engine)
    incidents.register(engine)
    notifications.register(engine)
    from agents import mail

    mail.register(engine)
    from engine import access_reads, web

    access_reads.register(engine)
    web.register(engine)
    return engine
