"""/v1/monitors/{id}/ssl and /domain: what a monitor's certificate and domain say, and reminders before they expire.

Reads come from the worker owning the monitor (agents/certificates/reads.py);
reminder writes are commands to it (agents/certificates/commands.py). The
monitoring API's paths /v1/resource/{id}/ssl and /v1/resource/{id}/tld answer
the same.
"""
from __future__ import annotations

from aiohttp import web

from api.auth import principal_of
from api.monitors import MONITOR, MONITOR_PATH, READS, WRITES
from api.owner_reads import answer, gateway_of
from api.routes import Data, Routes
from schemas.certificate import DomainInfo, Reminder, ReminderSpec, SslInfo

routes = Routes()


@routes.get("/v1/monitors/{id}/ssl", auth=READS, path_params=MONITOR_PATH, answers={200: Data(SslInfo)})
async def monitor_ssl(request: web.Request) -> web.Response:
    """The certificate probes last saw (subject, issuer, SANs, serial, fingerprint, validity, days left, whether
    it verified and why not), its last change, and the SSL reminder."""
    return await MONITOR.read(request, "/ssl")


@routes.get("/v1/resource/{id}/ssl", auth=READS, path_params=MONITOR_PATH, answers={200: Data(SslInfo)})
async def resource_ssl(request: web.Request) -> web.Response:
    """The same as GET /v1/monitors/{id}/ssl."""
    return await MONITOR.read(request, "/ssl")


@routes.get("/v1/monitors/{id}/domain", auth=READS, path_params=MONITOR_PATH, answers={200: Data(DomainInfo)})
async def monitor_domain(request: web.Request) -> web.Response:
    """The monitor's registrable domain as RDAP tells it (registrar, created, expires, days left, name servers,
    status), looked up at most once a day; `source` "unavailable" with a reason where the registry has no RDAP."""
    return await MONITOR.read(request, "/domain")


@routes.get("/v1/resource/{id}/tld", auth=READS, path_params=MONITOR_PATH, answers={200: Data(DomainInfo)})
async def resource_domain(request: web.Request) -> web.Response:
    """The same as GET /v1/monitors/{id}/domain."""
    return await MONITOR.read(request, "/domain")


async def set_reminder(request: web.Request, kind: str, body: ReminderSpec, create: bool) -> web.Response:
    status, reply = await gateway_of(request).command(
        "certificate.reminder.set", principal_of(request).org_id, MONITOR.id_of(request),
        {"kind": kind, "days_before": body.days_before, "create": create})
    return answer(status, reply)


async def delete_reminder(request: web.Request, kind: str) -> web.Response:
    status, reply = await gateway_of(request).command(
        "certificate.reminder.delete", principal_of(request).org_id, MONITOR.id_of(request), {"kind": kind})
    return answer(status, reply)


def reminder_routes(kind: str, expiry: str) -> None:
    path = f"/v1/monitors/{{id}}/{kind}/reminder"

    @routes.post(path, auth=WRITES, path_params=MONITOR_PATH, body=ReminderSpec, answers={201: Data(Reminder)},
                 errors=(409,))
    async def create(request: web.Request, body: ReminderSpec) -> web.Response:
        return await set_reminder(request, kind, body, create=True)

    @routes.put(path, auth=WRITES, path_params=MONITOR_PATH, body=ReminderSpec, answers={200: Data(Reminder)})
    async def replace(request: web.Request, body: ReminderSpec) -> web.Response:
        return await set_reminder(request, kind, body, create=False)

    @routes.get(path, auth=READS, path_params=MONITOR_PATH, answers={200: Data(Reminder)})
    async def read(request: web.Request) -> web.Response:
        return await MONITOR.read(request, f"/reminders/{kind}")

    @routes.delete(path, auth=WRITES, path_params=MONITOR_PATH, answers={204: None})
    async def delete(request: web.Request) -> web.Response:
        return await delete_reminder(request, kind)

    for view, doc in ((create, f"Remind before the {expiry} expires: each of `days_before` fires once per "
                               f"{'certificate' if kind == 'ssl' else 'expiry date'} as an event on "
                               f"monitor-events; 409 if the monitor has one (PUT changes it)."),
                      (replace, f"Set the {kind} reminder, whether or not there is one."),
                      (read, f"The {kind} reminder."), (delete, f"Remove the {kind} reminder.")):
        view.__doc__ = doc
        view.__name__ = view.__qualname__ = f"{view.__name__}_{kind}_reminder"


reminder_routes("ssl", "certificate")
reminder_routes("domain", "domain")
