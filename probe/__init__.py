"""The checks a probe runs: one check of one monitor, evaluated against its conditions. Knows no Kafka.

    async with ProbeSession() as session:
        outcome = await run_check(monitor_spec, session)
        result = outcome.as_result(monitor_id, region, checked_at)   # for check-results

`run_check` never raises for a target that is down, unknown or misbehaving:
that is a down Outcome whose `cause` says what happened.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from probe.checks.dns import check_dns
from probe.checks.http import check_http
from probe.checks.icmp import check_icmp
from probe.checks.mail import check_mail
from probe.checks.tcp import check_tcp
from probe.checks.udp import check_udp
from probe.outcome import Certificate, FailedCondition, Outcome, Timings, down
from probe.session import ProbeSession
from schemas.monitor import MonitorSpec
from schemas.validation import field_errors

__all__ = ["Certificate", "FailedCondition", "Outcome", "ProbeSession", "Timings", "run_check"]

CHECKS: dict[str, Callable[[MonitorSpec, ProbeSession], Awaitable[Outcome]]] = {
    "http": check_http, "tcp": check_tcp, "udp": check_udp, "icmp": check_icmp, "dns": check_dns,
    "smtp": check_mail, "pop": check_mail, "imap": check_mail,
}
SPEC_FIELDS = frozenset(MonitorSpec.model_fields)
logger = logging.getLogger(__name__)


async def run_check(spec: dict[str, Any], session: ProbeSession) -> Outcome:
    """Check the monitor `spec` (a MonitorSpec as JSON; fields it does not know are ignored) once."""
    try:
        monitor = MonitorSpec.model_validate({name: value for name, value in spec.items() if name in SPEC_FIELDS})
    except ValidationError as exc:
        problems = "; ".join(f"{field}: {reason}" for field, reason in field_errors(exc).items())
        return down(f"monitor configuration invalid: {problems}")
    try:
        return await CHECKS[monitor.type](monitor, session)
    except Exception as exc:  # a bug of ours must not stop the probe's other checks
        logger.exception("check of %s %s failed inside the probe", monitor.type, monitor.url or monitor.host)
        return down(f"probe error: {type(exc).__name__}: {exc}")
