"""POST /v1/checks: check results in, acknowledged once Kafka has them (acks=all)."""
from __future__ import annotations

import asyncio
import time
import uuid

from aiohttp import web

from api.auth import authorize, principal_of
from api.errors import ApiError, json_response
from api.gateway import Gateway
from schemas.check_result import CheckBatchIn, CheckResultIn
from schemas.validation import parse, parse_json

routes = web.RouteTableDef()


@routes.post("/v1/checks")
@authorize("checks:write")
async def post_checks(request: web.Request) -> web.Response:
    """One result, a JSON array of results, or {"results": [...]}, up to 1,000 at once."""
    body = parse_json(await request.read())
    if isinstance(body, dict) and "results" in body:
        results, path = parse(CheckBatchIn, body).results, "results."
    elif isinstance(body, list):
        results, path = parse(CheckBatchIn, {"results": body}).results, "results."
    else:
        results, path = [parse(CheckResultIn, body)], ""
    gateway: Gateway = request.app["gateway"]
    org_id = principal_of(request).org_id
    await _require_known_monitors(gateway, org_id, results, path)
    now = time.time()
    by_partition: dict[int, list[dict]] = {}
    ids = []
    for result in results:
        record = result.model_dump(exclude_none=True)
        record.setdefault("id", uuid.uuid4().hex)
        record.setdefault("checked_at", now)
        ids.append(record["id"])
        by_partition.setdefault(gateway.partition_of(result.monitor_id), []).append(record)
    await gateway.produce_results(org_id, by_partition)
    return json_response({"data": {"accepted": len(results), "ids": ids}}, 202)


async def _require_known_monitors(gateway: Gateway, org_id: str, results: list[CheckResultIn], path: str) -> None:
    """Results for monitors the caller does not own are refused whole: nothing is stored.

    Monitors seen to exist are remembered briefly, so a probe's steady stream costs
    no owner reads; the checks agent still drops results of a monitor deleted meanwhile.
    """
    now = time.monotonic()
    known = {mid for mid in {r.monitor_id for r in results} if gateway.known_monitors.get((org_id, mid), 0) > now}
    by_partition: dict[int, set[str]] = {}
    for result in results:
        if result.monitor_id not in known:
            by_partition.setdefault(gateway.partition_of(result.monitor_id), set()).add(result.monitor_id)
    answers = await asyncio.gather(*[
        gateway.read(partition, "/monitor-ids", {"org": org_id, "ids": ",".join(sorted(ids))})
        for partition, ids in by_partition.items()
    ])
    for _, body in answers:
        for monitor_id in body["data"]:
            known.add(monitor_id)
            gateway.remember_known_monitor(org_id, monitor_id)
    errors = {
        f"{path}{index}.monitor_id" if path else "monitor_id": f"no monitor {result.monitor_id!r} in your organisation"
        for index, result in enumerate(results)
        if result.monitor_id not in known
    }
    if errors:
        raise ApiError(422, "unknown_monitor",
                       "Some results name monitors that do not exist; nothing was stored. Create them first.", errors)
