"""Who is asking: API keys (programs) and access tokens (people), resolved to a team and scopes.

Both go in `Authorization: Bearer …`; keys also in `X-API-Key`. A key carries
the scopes it was given; a person gets the scopes of their role in the team the
token acts in (tables/access.py ROLE_SCOPES). Everything needed is in memory,
followed from the `access` topic; a credential not known yet (created a moment
ago through another process) waits once for the topic to catch up.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from api import tokens
from api.errors import ApiError
from api.gateway import Gateway, Principal
from tables.access import ROLE_SCOPES, key_hash

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNAUTHORIZED = "Missing credentials: send 'Authorization: Bearer <API key or access token>' or 'X-API-Key: <key>'."


def presented_credential(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key") or None


async def principal_for(request: web.Request) -> Principal | None:
    """The principal of the request's credentials (cached on the request); None without credentials.

    Raises 401 when credentials are present but not valid (unknown, revoked, expired).
    """
    if "principal" in request:
        return request["principal"]
    if "credential_error" in request:  # asked once already (the rate limiter asks first)
        raise request["credential_error"]
    credential = presented_credential(request)
    if credential is None:
        return None
    gateway: Gateway = request.app["gateway"]
    try:
        if tokens.looks_like_jwt(credential):
            principal = await person(gateway, tokens.decode(gateway.settings, credential, "access"))
        else:
            principal = await program(gateway, credential)
    except ApiError as exc:
        request["credential_error"] = exc
        raise
    request["principal"] = principal
    return principal


async def program(gateway: Gateway, secret: str) -> Principal:
    digest = key_hash(secret)
    record = gateway.api_keys.get(digest)
    if record is None and secret.startswith("psk_"):
        await gateway.sync_access()
        record = gateway.api_keys.get(digest)
    if record is None or record["revoked"] or not gateway.team_alive(record["org_id"]):
        raise ApiError(401, "unauthorized", "The API key is not valid (unknown or revoked).")
    if record["expires_at"] is not None and record["expires_at"] < time.time():
        raise ApiError(401, "key_expired", "The API key has expired: create a new one with POST /v1/keys.")
    gateway.key_used(record["org_id"], record["id"])
    return Principal(org_id=record["org_id"], key_id=record["id"], scopes=frozenset(record["scopes"]))


async def person(gateway: Gateway, claims: dict) -> Principal:
    user_id, org_id, sid = claims["sub"], claims.get("team"), claims["sid"]
    if sid in gateway.revoked_sessions or user_id in gateway.deleted_users:
        raise ApiError(401, "unauthorized", "This session has ended (signed out or revoked): sign in again.")
    if gateway.session_user(sid) != user_id:  # a token is worth only a session opened by signing in
        await gateway.sync_access()
        if gateway.session_user(sid) != user_id:
            raise ApiError(401, "unauthorized", "This session is not known (never opened, or ended): sign in again.")
    if org_id is None:  # a person in no team yet: may create or join one, nothing else
        return Principal(org_id="", scopes=frozenset(), user_id=user_id, session_id=sid, email=claims.get("eml"))
    role = await role_in(gateway, org_id, user_id)
    if sid in gateway.revoked_sessions:
        raise ApiError(401, "unauthorized", "This session has ended (signed out or revoked): sign in again.")
    if role is None:
        raise ApiError(401, "unauthorized", "You are no longer a member of the team this token acts in: "
                                            "refresh the token for another team, or sign in again.")
    return Principal(org_id=org_id, scopes=ROLE_SCOPES[role], user_id=user_id, session_id=sid, role=role,
                     email=claims.get("eml"))


async def role_in(gateway: Gateway, org_id: str, user_id: str) -> str | None:
    """The person's role in a live team, or None; waits once for the access topic when not known."""
    role = gateway.members.get(org_id, {}).get(user_id)
    if role is None:
        await gateway.sync_access()
        role = gateway.members.get(org_id, {}).get(user_id)
    return role if gateway.team_alive(org_id) else None


async def in_team(request: web.Request, principal: Principal, team_id: str) -> Principal:
    """The principal as it acts in `team_id` (a path's team): 404 when it is not in that team (invariant 6)."""
    if principal.is_person:
        role = await role_in(request.app["gateway"], team_id, principal.user_id)
        if role is not None:
            return Principal(org_id=team_id, scopes=ROLE_SCOPES[role], user_id=principal.user_id,
                             session_id=principal.session_id, role=role, email=principal.email)
    elif principal.org_id == team_id:
        return principal
    raise ApiError(404, "not_found", f"team {team_id} not found")


async def authenticate(request: web.Request, scope: str | None, *, people_only: bool = False,
                       team_in_path: bool = False) -> Principal:
    """The request's principal, which must carry `scope` (None: any); raises 401, 403 or 404 (invariant 6).

    people_only: API keys are refused (403 people_only). team_in_path: the
    principal acts in the team of the path's {id}, with the person's role there.
    """
    principal = await principal_for(request)
    if principal is None:
        raise ApiError(401, "unauthorized", UNAUTHORIZED)
    if people_only and not principal.is_person:
        raise ApiError(403, "people_only", "Only a person can do this: use an access token "
                                           "from POST /v1/auth, not an API key.")
    if team_in_path:
        principal = request["principal"] = await in_team(request, principal, request.match_info["id"])
    if scope is not None and not principal.can(scope):
        what = f"Your role ({principal.role})" if principal.is_person else "This API key"
        raise ApiError(403, "insufficient_scope", f"{what} lacks the '{scope}' scope.")
    return principal


def authorize(scope: str | None, *, people_only: bool = False, team_in_path: bool = False
              ) -> Callable[[Handler], Handler]:
    """A view that authenticates (see `authenticate`) before it runs; for views that no route declares."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(request: web.Request, *args, **kwargs) -> web.StreamResponse:
            await authenticate(request, scope, people_only=people_only, team_in_path=team_in_path)
            return await handler(request, *args, **kwargs)

        wrapper.scope = scope  # read by the access tests
        wrapper.people_only = people_only
        return wrapper

    return decorate


def principal_of(request: web.Request) -> Principal:
    return request["principal"]
