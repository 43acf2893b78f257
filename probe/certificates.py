"""Certificates a probe saw, sent to topic `certificates` so workers need not read every check result twice.

After a check that saw a certificate, `CertificateReports.saw` sends an
observation (key: the monitor id, in the monitor's partition; `org_id` beside
it) when the certificate, or whether it verified, differs from the last one
this probe sent for that monitor, or REFRESH_EVERY after that anyway, so a
restarted probe or a worker that lost the last one hears of it again. A send
Kafka did not take is forgotten: the next check sends again.
"""
from __future__ import annotations

import asyncio
from collections import Counter
import logging
import time
from typing import Any

import orjson

from engine.partitioning import entity_key
from probe.outcome import Outcome

log = logging.getLogger(__name__)

REFRESH_EVERY = 6 * 3600.0   # seconds: an unchanged certificate is sent again this often
REMEMBERED = 200_000          # monitors remembered at most (then forgotten all at once: each sends again)


def verification(spec: dict, outcome: Outcome) -> tuple[bool | None, str | None]:
    """(did the chain and host name verify, why not): not checked when the monitor skips TLS errors."""
    if spec.get("skip_ssl_error"):
        return None, None
    if outcome.cause and outcome.cause.startswith("TLS:"):
        return False, outcome.cause
    return True, None


def observation(monitor_id: str, region: str, spec: dict, outcome: Outcome, observed_at: float) -> dict[str, Any]:
    """A `certificates` observation (schemas/certificate.py CertificateObservation)."""
    verified, error = verification(spec, outcome)
    certificate = outcome.certificate
    return {"monitor_id": monitor_id, "region": region, "observed_at": observed_at,
            "certificate": {**certificate.as_dict(), "serial": certificate.serial},
            "verified": verified, "verify_error": error}


class CertificateReports:
    def __init__(self) -> None:
        self.sent: dict[str, tuple[tuple[str, bool | None], float]] = {}  # monitor -> (what, when: monotonic)
        self.sends: set[asyncio.Task] = set()
        self.sending: Counter[str] = Counter()  # topic -> sends on their way (a rescale waits for them)

    def saw(self, producer: Any, monitor_id: str, where: tuple[str, int], entry: dict, region: str,
            outcome: Outcome, observed_at: float) -> None:
        """Send what the check saw of the monitor's certificate to `where` (topic, partition), unless sent lately."""
        if outcome.certificate is None or producer is None:
            return
        message = observation(monitor_id, region, entry["spec"], outcome, observed_at)
        what = (outcome.certificate.fingerprint_sha256, message["verified"])
        last, now = self.sent.get(monitor_id), time.monotonic()
        if last is not None and last[0] == what and now - last[1] < REFRESH_EVERY:
            return
        if len(self.sent) >= REMEMBERED:
            self.sent.clear()
        self.sent[monitor_id] = (what, now)
        envelope = orjson.dumps({"observations": [message], "org_id": entry.get("org_id")})
        task = asyncio.create_task(self._send(producer, monitor_id, where, envelope))
        self.sends.add(task)
        task.add_done_callback(self.sends.discard)

    async def _send(self, producer: Any, monitor_id: str, where: tuple[str, int], envelope: bytes) -> None:
        topic, partition = where
        self.sending[topic] += 1
        try:
            await producer.send_and_wait(topic, envelope, key=entity_key(monitor_id), partition=partition)
        except Exception as exc:
            log.warning("Kafka did not take the certificate of %s (%r); the next check sends it again",
                        monitor_id, exc)
            self.sent.pop(monitor_id, None)
        finally:
            self.sending[topic] -= 1
