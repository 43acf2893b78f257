"""Every knob of pingstream, read from the environment in one place.

Each field's default and meaning is listed in the README ("Settings"); a
process reads them once at start (`Settings.from_env()`).
"""
from __future__ import annotations

import hmac
import math
import os
import socket
from dataclasses import dataclass, fields
from pathlib import Path

from engine.outbound import allowed_networks

#: the header an owner read carries `internal_token` in
INTERNAL_HEADER = "X-Pingstream-Internal"


class SettingsError(ValueError):
    """A PINGSTREAM_* variable has a value we cannot use."""


SECRET_BITS = 256   # a secret is at least 32 random bytes
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def secret_problem(name: str, value: str) -> str | None:
    """Why `value` is not a strong secret (at least 32 random bytes, as hex or base64 text); None when it is.

    A string cannot prove its randomness; this refuses what is surely not
    random: empty, short, or made of a few characters repeated (`change-me`).
    """
    alphabet = 16 if all(c in "0123456789abcdefABCDEF" for c in value) else 64
    if not value or len(value) * math.log2(alphabet) < SECRET_BITS or len(set(value)) < 12:
        return (f"{name} must be at least 32 random bytes (64 hex or 43 base64 characters); "
                f"make one with: {MAKE_SECRET}")
    return None


def own_address(bootstrap_servers: str) -> str:
    """The address this host reaches the (first) broker from: the one other processes on its network can reach.

    A UDP socket's connect only picks the route; nothing is sent.
    """
    host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host or "127.0.0.1", int(port or 9092)))
        return probe.getsockname()[0]


@dataclass(frozen=True, slots=True)
class Settings:
    #: kafka://host:port[,host:port] of an existing cluster; empty = embedded Tansu
    broker: str = ""
    #: "tansu" turns on the workarounds for the embedded broker; empty = tansu when embedded
    broker_kind: str = ""
    #: Kafka consumer group (and changelog topic prefix) of this deployment
    app_id: str = "pingstream"
    #: where workers keep RocksDB state and `make up` keeps logs (and the embedded broker's data)
    data_dir: Path = Path(".pingstream")
    #: the embedded broker's storage: "durable" (DATA_DIR/broker, kept across restarts) or "memory"
    #: (gone when it stops); ignored when PINGSTREAM_BROKER names a broker
    embedded_storage: str = "durable"
    #: partitions of every keyed topic: the most workers that can share the load
    partitions: int = 4
    #: where the public API listens
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    #: where a worker serves owner reads (and the API, too)
    worker_host: str = "127.0.0.1"
    worker_port: int = 6066
    #: how other processes reach this worker; empty = http://worker_host:worker_port; {ip} (this host's
    #: address toward the broker), {hostname} and {port} are filled in, so replicas need no URL each
    worker_url: str = ""
    #: Kafka group session timeout and heartbeat (seconds): short, so rebalances are quick
    session_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    #: how often source offsets are committed (s); longer = less work, more redelivered after a crash
    commit_interval: float = 1.0
    #: the longest a batch of input waits before its state is flushed (seconds)
    flush_interval: float = 0.5
    #: bytes the producer batches per partition; a send waits while its partition's batch is full
    producer_batch_bytes: int = 524288
    #: how often a worker looks for monitors due (a region gone stale, a maintenance window starting or
    #: ending) in the partitions it owns (seconds)
    monitor_tick: float = 1.0
    #: how long statistics buckets and check history are kept (days)
    retention_days: int = 90
    #: how long the API waits for a worker to apply a command or answer a read (seconds)
    request_timeout: float = 15.0
    #: shared secret every /internal/ route requires; the same value in every process;
    #: at least 32 random bytes (workers and API processes refuse to start without it)
    internal_token: str = ""
    #: decoded table values a worker keeps in memory per table (hot keys skip RocksDB and decoding)
    cache_entries: int = 50_000
    #: changelog standby copies kept on other workers for fast failover
    standby_replicas: int = 1
    #: signs people's access and refresh tokens (JWT, HS256); every API process needs the same value;
    #: at least 32 random bytes, and not the internal token
    jwt_secret: str = ""
    #: seals secrets stored in tables and topics (alert channels' signing secrets), AES-256-GCM; the same
    #: value in every process; at least 32 random bytes, not another secret; losing it loses those secrets
    secrets_key: str = ""
    #: lifetime of an access token and of a refresh token (seconds)
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    #: requests a minute one IP may make to endpoints that need no credentials (sign-up, log-in, recovery)
    ip_rate_limit: int = 60
    #: the regions `pingstream up` starts a probe for (comma-separated); empty = none
    probe_regions: str = "default"
    #: the plan a team created by sign-up starts on
    signup_plan: str = "free"
    #: SMTP server mail goes out through; empty = mail is written to DATA_DIR/outbox instead
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    #: "starttls" (port 587), "tls" (implicit, port 465) or "none"
    smtp_security: str = "starttls"
    mail_from: str = "pingstream <no-reply@pingstream.local>"
    #: networks (comma-separated CIDR) that outbound requests to tenant-named URLs may reach although
    #: they are internal, e.g. "127.0.0.0/8,::1"; empty = only public addresses
    outbound_allow: str = ""
    #: where domains are looked up over RDAP: GET <rdap_url>/domain/<name>; the default is rdap.org, a
    #: redirector to each registry's RDAP server by IANA's bootstrap registry (RFC 9224)
    rdap_url: str = "https://rdap.org"
    #: when set, GET /metrics of every process needs it as a Bearer token (Prometheus: `authorization`);
    #: empty = open (the metrics name no tenant's data)
    metrics_token: str = ""
    #: where a probe serves GET /metrics; port 0 = nowhere (`pingstream up` gives each probe the next port)
    probe_host: str = "127.0.0.1"
    probe_port: int = 9464
    #: notification channels of type sms and voice: the base URL of an HTTP API speaking Twilio's REST shape
    #: (POST <sms_url>/Messages.json and /Calls.json, form-encoded To/From/Body or Twiml, basic auth), e.g.
    #: https://api.twilio.com/2010-04-01/Accounts/<Account SID>; empty = no sms or voice channels
    sms_url: str = ""
    #: the provider's credentials (Twilio: the Account SID and Auth Token) and the number messages come from
    sms_username: str = ""
    sms_password: str = ""
    sms_from: str = ""
    #: the host name status pages' custom domains point their CNAME at (GET /v1/status-pages/domains/{domain})
    status_page_cname: str = "pages.pingstream.local"
    #: the nameserver (host or host:port) that DNS lookups of the API ask; empty = the system's resolvers
    dns_nameserver: str = ""
    #: where people reach the API: the base of links in messages (a page's acknowledge link);
    #: empty = http://api_host:api_port
    public_url: str = ""
    #: the shortest escalation delay and repeat interval a page may ask for (seconds); lower only in tests
    page_min_delay: int = 60
    page_min_repeat: int = 30
    #: a PEM bundle of CAs probes trust beside the system's (e.g. an internal CA); empty = the system's only
    probe_ca_file: str = ""
    #: networks (comma-separated CIDR) of reverse proxies whose X-Forwarded-For/-Proto/-Host are believed;
    #: empty = nobody's: the client is the peer address
    trusted_proxies: str = ""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = "PINGSTREAM_" + f.name.upper()
            if name not in env or env[name] == "":
                continue
            raw = env[name]
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{name}={raw!r} is not a valid {kind.__name__}; unset it or give e.g. {f.default!r}"
                ) from None
        settings = cls(**values)
        if settings.broker and not settings.broker.startswith("kafka://"):
            raise SettingsError(
                f"PINGSTREAM_BROKER={settings.broker!r} must look like kafka://host:9092"
            )
        if settings.embedded_storage not in ("durable", "memory"):
            raise SettingsError("PINGSTREAM_EMBEDDED_STORAGE must be durable or memory")
        if settings.smtp_security not in ("starttls", "tls", "none"):
            raise SettingsError("PINGSTREAM_SMTP_SECURITY must be starttls, tls or none")
        for name, value in (("PINGSTREAM_OUTBOUND_ALLOW", settings.outbound_allow),
                            ("PINGSTREAM_TRUSTED_PROXIES", settings.trusted_proxies)):
            try:
                allowed_networks(value)
            except ValueError as exc:
                raise SettingsError(f"{name}: {exc}") from None
        if settings.partitions < 1:
            raise SettingsError("PINGSTREAM_PARTITIONS must be at least 1")
        return settings

    def is_internal(self, presented: str) -> bool:
        """Is `presented` this deployment's internal token? Constant time; an empty token never matches."""
        token = self.internal_token.encode()
        return bool(token) and hmac.compare_digest(presented.encode(), token)

    def require_secrets(self) -> None:
        """Workers and API processes refuse to start without strong, separate secrets."""
        named = (("PINGSTREAM_INTERNAL_TOKEN", self.internal_token), ("PINGSTREAM_JWT_SECRET", self.jwt_secret),
                 ("PINGSTREAM_SECRETS_KEY", self.secrets_key))
        for name, value in named:
            problem = secret_problem(name, value)
            if problem:
                raise SettingsError(problem)
        for n, (name, value) in enumerate(named):
            for other, other_value in named[n + 1:]:
                if value == other_value:
                    raise SettingsError(f"{other} must differ from {name}: one leaked secret must not open "
                                        "another door")

    @property
    def public_base_url(self) -> str:
        return (self.public_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def on_tansu(self) -> bool:
        return self.broker_kind == "tansu" or (not self.broker and self.broker_kind == "")

    @property
    def outbox(self) -> Path:
        """Where mail goes when no SMTP server is configured: one .eml file per message."""
        return self.data_dir / "outbox"

    @property
    def advertised_worker_url(self) -> str:
        if not self.worker_url:
            return f"http://{self.worker_host}:{self.worker_port}"
        url = self.worker_url.replace("{hostname}", socket.gethostname()).replace("{port}", str(self.worker_port))
        if "{ip}" in url:
            url = url.replace("{ip}", own_address(self.bootstrap_servers))
        return url

    @property
    def bootstrap_servers(self) -> str:
        """host:port[,host:port] for aiokafka clients."""
        return self.broker.removeprefix("kafka://")
