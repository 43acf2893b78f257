"""/v1/rulesets: which events become incidents; commands to the organisation's partition, which lists them."""
from __future__ import annotations

import re
import uuid

from aiohttp import web

from api.auth import principal_of
from api.errors import ApiError
from api.owner_reads import Resource, answer, gateway_of, owner_read, read_owner
from api.params import Id
from api.routes import Auth, Body, Data, Routes
from engine.responses import json_response
from schemas.ruleset import Action, Ruleset, RulesetActions, RulesetActionsView, Rulesets, RulesetSpec
from schemas.validation import parse

routes = Routes()
RULESET_ID = re.compile(r"^rs_[0-9a-f]{20}$")
RULESET = Resource.matching("ruleset", "/rulesets", RULESET_ID.pattern)
RULESET_PATH = {"id": Id("ruleset", RULESET_ID)}
READS, WRITES = Auth("rulesets:read"), Auth("rulesets:write")


async def command(request: web.Request, kind: str, body: dict) -> tuple[int, object]:
    """Rulesets live in their organisation's partition: every command is addressed to it."""
    org_id = principal_of(request).org_id
    return await gateway_of(request).command(kind, org_id, org_id, body)


async def read_ruleset(request: web.Request, ruleset_id: str) -> dict:
    status, body, _ = await read_owner(request, principal_of(request).org_id, f"/rulesets/{ruleset_id}")
    if status != 200:
        raise ApiError(status, body.get("error", "not_found"), body.get("message", f"ruleset {ruleset_id} not found"))
    return body["data"]


@routes.get("/v1/rulesets", auth=READS, answers={200: Data(Rulesets)})
async def list_rulesets(request: web.Request) -> web.Response:
    """The organisation's rulesets: organisation-level ones, then each team's."""
    return await owner_read(request, principal_of(request).org_id, "/rulesets")


@routes.post("/v1/rulesets", auth=WRITES, body=RulesetSpec, answers={201: Data(Ruleset)}, errors=(409,))
async def create_ruleset(request: web.Request, body: RulesetSpec) -> web.Response:
    status, reply = await command(request, "ruleset.create",
                                  {"id": "rs_" + uuid.uuid4().hex[:20], "spec": body.model_dump(mode="json")})
    return answer(status, reply)


@routes.get("/v1/rulesets/{id}", auth=READS, path_params=RULESET_PATH, answers={200: Data(Ruleset)})
async def get_ruleset(request: web.Request) -> web.Response:
    return json_response({"data": await read_ruleset(request, RULESET.id_of(request))})


@routes.put("/v1/rulesets/{id}", auth=WRITES, path_params=RULESET_PATH, body=RulesetSpec, answers={200: Data(Ruleset)})
async def replace_ruleset(request: web.Request, body: RulesetSpec) -> web.Response:
    ruleset_id = RULESET.id_of(request)
    status, reply = await command(request, "ruleset.update", {"id": ruleset_id, "spec": body.model_dump(mode="json")})
    return answer(status, reply)


@routes.delete("/v1/rulesets/{id}", auth=WRITES, path_params=RULESET_PATH, answers={204: None})
async def delete_ruleset(request: web.Request) -> web.Response:
    status, body = await command(request, "ruleset.delete", {"id": RULESET.id_of(request)})
    return answer(status, body)


@routes.get("/v1/rulesets/{id}/actions", auth=READS, path_params=RULESET_PATH, answers={200: Data(RulesetActionsView)})
async def ruleset_actions(request: web.Request) -> web.Response:
    ruleset = await read_ruleset(request, RULESET.id_of(request))
    return json_response({"data": {"id": ruleset["id"], "actions": ruleset["actions"]}})


def actions_of(body: object) -> RulesetActions:
    return parse(RulesetActions, RulesetActions.from_body(body))


@routes.put("/v1/rulesets/{id}/actions", auth=WRITES, path_params=RULESET_PATH,
            body=Body(RulesetActions, list[Action], read=actions_of),
            answers={200: Data(RulesetActionsView)})
async def replace_ruleset_actions(request: web.Request, body: RulesetActions) -> web.Response:
    """{"actions": [...]} (or the bare list): what an incident this ruleset opens does."""
    ruleset_id = RULESET.id_of(request)
    actions = body.actions
    status, body = await command(request, "ruleset.actions", {"id": ruleset_id, "actions": actions})
    return answer(status, {"id": body["id"], "actions": body["actions"]} if status == 200 else body)
