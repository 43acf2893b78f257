"""/v1/rulesets: which events become incidents; commands to the organisation's partition, which lists them."""
from __future__ import annotations

import uuid

from aiohttp import web

from api.auth import authorize, principal_of
from api.errors import ApiError
from api.openapi import request_body
from engine.responses import json_response
from api.owner_reads import Resource, answer, body_of, gateway_of, owner_read, read_owner
from schemas.ruleset import RulesetActions, RulesetSpec
from schemas.validation import parse

routes = web.RouteTableDef()
RULESET = Resource.matching("ruleset", "/rulesets", r"^rs_[0-9a-f]{20}$")


async def command(request: web.Request, kind: str, body: dict) -> tuple[int, object]:
    """Rulesets live in their organisation's partition: every command is addressed to it."""
    org_id = principal_of(request).org_id
    return await gateway_of(request).command(kind, org_id, org_id, body)


async def read_ruleset(request: web.Request, ruleset_id: str) -> dict:
    status, body, _ = await read_owner(request, principal_of(request).org_id, f"/rulesets/{ruleset_id}")
    if status != 200:
        raise ApiError(status, body.get("error", "not_found"), body.get("message", f"ruleset {ruleset_id} not found"))
    return body["data"]


@routes.get("/v1/rulesets")
@authorize("rulesets:read")
async def list_rulesets(request: web.Request) -> web.Response:
    """The organisation's rulesets: organisation-level ones, then each team's."""
    return await owner_read(request, principal_of(request).org_id, "/rulesets")


@routes.post("/v1/rulesets")
@request_body(RulesetSpec)
@authorize("rulesets:write")
async def create_ruleset(request: web.Request) -> web.Response:
    spec = parse(RulesetSpec, await body_of(request))
    status, body = await command(request, "ruleset.create",
                                 {"id": "rs_" + uuid.uuid4().hex[:20], "spec": spec.model_dump(mode="json")})
    return answer(status, body)


@routes.get("/v1/rulesets/{id}")
@authorize("rulesets:read")
async def get_ruleset(request: web.Request) -> web.Response:
    return json_response({"data": await read_ruleset(request, RULESET.id_of(request))})


@routes.put("/v1/rulesets/{id}")
@request_body(RulesetSpec)
@authorize("rulesets:write")
async def replace_ruleset(request: web.Request) -> web.Response:
    ruleset_id = RULESET.id_of(request)
    spec = parse(RulesetSpec, await body_of(request))
    status, body = await command(request, "ruleset.update", {"id": ruleset_id, "spec": spec.model_dump(mode="json")})
    return answer(status, body)


@routes.delete("/v1/rulesets/{id}")
@authorize("rulesets:write")
async def delete_ruleset(request: web.Request) -> web.Response:
    status, body = await command(request, "ruleset.delete", {"id": RULESET.id_of(request)})
    return answer(status, body)


@routes.get("/v1/rulesets/{id}/actions")
@authorize("rulesets:read")
async def ruleset_actions(request: web.Request) -> web.Response:
    ruleset = await read_ruleset(request, RULESET.id_of(request))
    return json_response({"data": {"id": ruleset["id"], "actions": ruleset["actions"]}})


@routes.put("/v1/rulesets/{id}/actions")
@request_body(RulesetActions)
@authorize("rulesets:write")
async def replace_ruleset_actions(request: web.Request) -> web.Response:
    """{"actions": [...]} (or the bare list): what an incident this ruleset opens does."""
    ruleset_id = RULESET.id_of(request)
    actions = parse(RulesetActions, RulesetActions.from_body(await body_of(request))).actions
    status, body = await command(request, "ruleset.actions", {"id": ruleset_id, "actions": actions})
    return answer(status, {"id": body["id"], "actions": body["actions"]} if status == 200 else body)
