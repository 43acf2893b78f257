"""RDAP lookups: an effect, made outside any fold by the worker owning the domain's partition.

Every LOOK_EVERY seconds the timer reads the lookup index (tables/certificates.py)
of the partitions this worker serves; each domain due is looked up once,
`GET <PINGSTREAM_RDAP_URL>/domain/<name>` through the operator's outbound
policy (engine/outbound.py: internal addresses refused unless
PINGSTREAM_OUTBOUND_ALLOW names them), and the answer is sent as an `rdap`
message to the domain's partition of `certificates`, where the fold stores it,
files the next lookup a day later and tells the monitors naming it. A lookup
still on its way is not started again; an answer lost in a crash is looked up
again once the worker serving the partition sees the entry still due.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from engine import ownership, topics
from engine.outbound import guarded_session, outcome_of
from engine.partitioning import entity_key, partition_for
from tables import certificates as rules

log = logging.getLogger(__name__)

LOOK_EVERY = 1.0        # seconds between looks at the lookup index
AT_ONCE = 4             # lookups in flight per worker at most
TIMEOUT = 15.0          # seconds one lookup may take
PENDING_FOR = 60.0      # seconds an answer sent is given to be applied before the domain is looked up again
MAX_BODY = 1024 * 1024  # bytes of an RDAP answer read at most


class RdapLookups:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.app = engine.app
        self.base = engine.settings.rdap_url.rstrip("/")
        self.allow = engine.settings.outbound_allow
        self.started: dict[str, float] = {}   # domain -> when its lookup started (monotonic)
        self.tasks: set[asyncio.Task] = set()
        self.session: aiohttp.ClientSession | None = None
        self.looked_up = 0
        self.failed = 0

    def health(self) -> dict:
        return {"looked_up": self.looked_up, "failed": self.failed, "in_flight": len(self.tasks)}

    async def tick(self) -> None:
        """Start a lookup of each domain due in a served partition, AT_ONCE at most."""
        now, clock = time.time(), time.monotonic()
        for domain, started in list(self.started.items()):
            if clock - started > PENDING_FOR + TIMEOUT:
                del self.started[domain]
        low, high = rules.lookup_range(int(now * 1000))
        for partition in ownership.serving(self.app):
            for key, _ in self.engine.certificates.scan(partition, low, high, limit=50):
                if len(self.tasks) >= AT_ONCE:
                    return
                _, domain = rules.parse_lookup_key(key)
                if domain in self.started:
                    continue
                self.started[domain] = clock
                task = asyncio.create_task(self.look_up(domain))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def look_up(self, domain: str) -> None:
        info = await self.rdap(domain)
        message = {"kind": "rdap", "domain": domain, "info": info, "at": info["looked_up_at"]}
        try:
            await self.app.producer.send_and_wait(topics.CERTIFICATES, entity_key(domain), orjson.dumps(message),
                                                  partition_for(domain, self.engine.partitions), None, None)
        except Exception:
            log.exception("sending the RDAP answer for %s failed; it will be looked up again", domain)
            self.started.pop(domain, None)

    async def rdap(self, domain: str) -> dict:
        """What RDAP says of `domain`, as tables/certificates.py parses it; `unavailable` with a reason otherwise."""
        now = time.time()
        if self.session is None:
            self.session = guarded_session(self.allow)
        url = f"{self.base}/domain/{domain}"
        try:
            async with self.session.get(url, headers={"Accept": "application/rdap+json, application/json"},
                                        timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as response:
                if response.status == 404:
                    self.looked_up += 1
                    return rules.unavailable(domain, f"no RDAP record for {domain}: its registry offers no RDAP "
                                                     "service, or the domain is not registered", now)
                if response.status >= 400:
                    self.failed += 1
                    return rules.unavailable(domain, f"the RDAP server answered {response.status}", now, failed=True)
                body = await response.content.read(MAX_BODY)
        except Exception as exc:  # a lookup that fails must not stop the timer; said in a fixed class of words
            self.failed += 1
            return rules.unavailable(domain, f"RDAP lookup failed: {outcome_of(exc)}", now, failed=True)
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.failed += 1
            return rules.unavailable(domain, "the RDAP answer is not JSON", now, failed=True)
        self.looked_up += 1
        return rules.parse_rdap(domain, document, now)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
