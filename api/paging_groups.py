"""/v1/groups: paging groups, named sets of the team's members a page can go to at once.

Groups live in the team's partition (agents/paging_groups), where the members
are: every change is a command there, every read that worker's answer.
"""
from __future__ import annotations

import re
import uuid

from aiohttp import web

from api import params
from api.auth import principal_of
from api.owner_reads import answer, gateway_of, owner_data
from api.params import Id
from api.routes import Auth, Data, Page, Routes
from engine.responses import json_response
from schemas.paging_group import Group, GroupPatch, GroupSpec

routes = Routes()
GROUP_ID = re.compile(r"^grp_[0-9a-f]{20}$")
GROUP = {"id": Id("group", GROUP_ID)}
READS, WRITES = Auth("groups:read"), Auth("groups:write")


async def command(request: web.Request, kind: str, body: dict) -> web.Response:
    org_id = principal_of(request).org_id
    return answer(*await gateway_of(request).command(kind, org_id, org_id, body))


@routes.post("/v1/groups", auth=WRITES, body=GroupSpec, answers={201: Data(Group)})
async def create_group(request: web.Request, body: GroupSpec) -> web.Response:
    """A group of the team's members, to page them together."""
    return await command(request, "group.create", {"id": "grp_" + uuid.uuid4().hex[:20], **body.model_dump()})


@routes.get("/v1/groups", auth=READS, query=params.pagination(), answers={200: Page(Group)})
async def list_groups(request: web.Request, page: int, per_page: int) -> web.Response:
    """The team's groups, oldest first."""
    groups = await owner_data(request, principal_of(request).org_id, "/groups")
    return json_response(params.paginated(groups[(page - 1) * per_page:page * per_page], page, per_page,
                                          len(groups)))


@routes.get("/v1/groups/{id}", auth=READS, path_params=GROUP, answers={200: Data(Group)})
async def get_group(request: web.Request) -> web.Response:
    group = await owner_data(request, principal_of(request).org_id, f"/groups/{request.match_info['id']}")
    return json_response({"data": group})


@routes.put("/v1/groups/{id}", auth=WRITES, path_params=GROUP, body=GroupSpec, answers={200: Data(Group)})
async def replace_group(request: web.Request, body: GroupSpec) -> web.Response:
    """The group anew: name, description, members."""
    return await command(request, "group.update", {"id": request.match_info["id"], **body.model_dump()})


@routes.patch("/v1/groups/{id}", auth=WRITES, path_params=GROUP, body=GroupPatch, answers={200: Data(Group)})
async def change_group(request: web.Request, body: GroupPatch) -> web.Response:
    """Change the fields given (e.g. only `members`)."""
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "description"}
    return await command(request, "group.update", {"id": request.match_info["id"], **changes})


@routes.delete("/v1/groups/{id}", auth=WRITES, path_params=GROUP, answers={204: None})
async def delete_group(request: web.Request) -> web.Response:
    return await command(request, "group.delete", {"id": request.match_info["id"]})
