"""POST /v1/checks: check results in, acknowledged once Kafka has them (acks=all)."""
from __future__ import annotations

import time
import uuid

from aiohttp import web

from api.auth import principal_of
from api.errors import ApiError
from engine.responses import json_response
from api.gateway import Gateway
from api.routes import Auth, Body, Data, Routes
from schemas.check_result import CheckBatchIn, ChecksAccepted, CheckResultIn, CheckResultsIn
from schemas.validation import parse

routes = Routes()


def results_of(body: object) -> tuple[CheckBatchIn, str]:
    """(the batch, the prefix of its fields in errors): one result, an array, or {"results": [...]}."""
    if isinstance(body, dict) and "results" in body:
        return parse(CheckBatchIn, body), "results."
    if isinstance(body, list):
        return parse(CheckBatchIn, {"results": body}), "results."
    return CheckBatchIn.model_construct(results=[parse(CheckResultIn, body)]), ""


@routes.post("/v1/checks", auth=Auth("checks:write"), body=Body(CheckResultIn, CheckResultsIn, CheckBatchIn,
                                                                 read=results_of),
             answers={202: Data(ChecksAccepted)})
async def post_checks(request: web.Request, body: tuple[CheckBatchIn, str]) -> web.Response:
    """One result, a JSON array of results, or {"results": [...]}, up to 1,000 at once."""
    batch, path = body
    records = batch.model_dump(exclude_none=True)["results"]  # one call for the batch, not one per result
    gateway: Gateway = request.app["gateway"]
    org_id = principal_of(request).org_id
    await _require_known_monitors(gateway, org_id, [record["monitor_id"] for record in records], path)
    now = time.time()
    by_partition: dict[int, list[dict]] = {}
    with gateway.ingesting() as ingest:  # a rescale may move ingest to new topics meanwhile: not this batch
        for record in records:
            if "id" not in record:
                record["id"] = uuid.uuid4().hex
            if "checked_at" not in record:
                record["checked_at"] = now
            by_partition.setdefault(ingest.partition_of(record["monitor_id"]), []).append(record)
        await gateway.produce_results(ingest, org_id, by_partition)
    return json_response({"data": {"accepted": len(records), "ids": [record["id"] for record in records]}}, 202)


async def _require_known_monitors(gateway: Gateway, org_id: str, monitor_ids: list[str], path: str) -> None:
    """Results for monitors the caller does not own are refused whole: nothing is stored.

    Asked of the directory this process follows (api/directory.py), never of a
    worker, so ingest goes on while partitions move; a monitor not known here
    may have been created a moment ago through another process: one catch-up.
    """
    asked = time.monotonic()
    unknown = gateway.directory.unknown_monitors(org_id, set(monitor_ids))
    if unknown:
        await gateway.sync_directory(since=asked)
        unknown = gateway.directory.unknown_monitors(org_id, unknown)
    if unknown:
        errors = {
            f"{path}{index}.monitor_id" if path else "monitor_id": f"no monitor {monitor_id!r} in your organisation"
            for index, monitor_id in enumerate(monitor_ids)
            if monitor_id in unknown
        }
        raise ApiError(422, "unknown_monitor",
                       "Some results name monitors that do not exist; nothing was stored. Create them first.", errors)
