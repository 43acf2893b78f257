"""/v1/account, /v1/auth, /v1/customer: sign-up, confirmation, sessions, recovery, the profile.

Passwords are hashed and verified here (argon2, api/passwords.py), never in a
worker; everything stored goes through the account's partition as commands
(agents/accounts/commands.py), keyed by the normalised email.
"""
from __future__ import annotations

import secrets
import time
import urllib.parse
import uuid
from collections import defaultdict, deque

from aiohttp import web

from api import tokens
from api.auth import principal_of, role_in
from api.errors import ApiError
from api.gateway import Gateway
from api.owner_reads import answer, gateway_of
from api.passwords import hash_password, verify_password
from api.routes import Auth, Body, Data, Routes
from engine.responses import json_response
from schemas.account import (Account, AccountPlan, Confirm, Confirmed, CustomerDelete, CustomerPatch, EmailBody,
                             Login, Me, Notice, PasswordChange, RecoveryConfirm, Refresh, SignUp, SignUpAccepted,
                             TokenPair)
from tables.accounts import account_view, code_hash
from tables.plans import plan_named

routes = Routes()
PERSON = Auth(None, people_only=True)
NO_TEAM = ""                     # accounts belong to no team: commands about them carry this org id
IP_LOGIN_FAILURES = 30           # failed log-ins from one IP within LOGIN_WINDOW (per API process)
IP_LOGIN_WINDOW = 15 * 60


class LoginFailures:
    """Failed log-ins per client IP in this API process: a guesser trying many accounts is slowed too."""

    def __init__(self) -> None:
        self.by_ip: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, ip: str, now: float) -> int | None:
        failures = self.by_ip.get(ip)
        if not failures:
            return None
        while failures and failures[0] < now - IP_LOGIN_WINDOW:
            failures.popleft()
        if len(failures) < IP_LOGIN_FAILURES:
            return None
        return int(failures[0] + IP_LOGIN_WINDOW - now) + 1

    def add(self, ip: str, now: float) -> None:
        if len(self.by_ip) > 100_000:
            self.by_ip.clear()
        self.by_ip[ip].append(now)


def too_many_attempts(seconds: int) -> ApiError:
    return ApiError(429, "too_many_login_attempts",
                    f"Too many failed log-ins. Retry after {seconds} seconds, or recover the password.",
                    headers={"Retry-After": str(seconds)})


async def stored_account(gateway: Gateway, email: str) -> dict | None:
    """The account record (with its password hash) from the worker owning it; None if there is none."""
    status, body = await gateway.read(gateway.partition_of(email), "/accounts/" + urllib.parse.quote(email, safe=""))
    return body if status == 200 else None


# -- sign-up and confirmation ---------------------------------------------------


@routes.post("/v1/account", auth=None, body=SignUp, answers={202: Data(SignUpAccepted)})
async def sign_up(request: web.Request, body: SignUp) -> web.Response:
    """Sign up: 202 alike for every address; the mail has a code, or says the address already has an account."""
    fields = {"name": body.name, "surname": body.surname, "password_hash": await hash_password(body.password)}
    return answer(*await gateway_of(request).command("account.create", NO_TEAM, body.email, fields))


@routes.patch("/v1/account", auth=None, body=Confirm, answers={200: Data(Confirmed)})
async def confirm(request: web.Request, body: Confirm) -> web.Response:
    """Activate the account with the mailed code; it gets a first team, where it is root."""
    gateway = gateway_of(request)
    return answer(*await gateway.access_command("account.confirm", NO_TEAM, body.email,
                                                {"code": body.confirmation_code}))


@routes.post("/v1/account/confirmation-code", auth=None, body=EmailBody, answers={202: Data(Notice)})
async def resend_code(request: web.Request, body: EmailBody) -> web.Response:
    """Send a new confirmation code (the previous one stops working)."""
    return answer(*await gateway_of(request).command("account.resend_code", NO_TEAM, body.email, {}))


@routes.get("/v1/account", auth=Auth("account:read"), answers={200: Data(AccountPlan)})
async def account(request: web.Request) -> web.Response:
    """The team (organisation) the credentials act in, its plan and the plan's limits."""
    principal = principal_of(request)
    team = gateway_of(request).teams[principal.org_id]
    plan = plan_named(team["plan"])
    return json_response({"data": {"organisation": {"id": team["id"], "name": team["name"]},
                                   "plan": plan.name, "limits": plan.to_dict()}})


# -- sessions -------------------------------------------------------------------


async def team_for(gateway: Gateway, user_id: str, wanted: str | None, default: str | None) -> str | None:
    """The team a new access token acts in: the one asked for, else the default, else any."""
    if wanted is not None:
        if await role_in(gateway, wanted, user_id) is None:
            raise ApiError(403, "not_a_member", f"You are not a member of team {wanted}.")
        return wanted
    if default is not None and await role_in(gateway, default, user_id) is not None:
        return default
    alive = [org_id for org_id in gateway.user_teams.get(user_id, {}) if gateway.team_alive(org_id)]
    return min(alive) if alive else None


@routes.post("/v1/auth", auth=None, body=Login, answers={200: Data(TokenPair)}, errors=(401, 403))
async def log_in(request: web.Request, body: Login) -> web.Response:
    """Email and password → an access token (short-lived) and a refresh token."""
    gateway, ip, now = gateway_of(request), request.remote or "?", time.time()
    failures: LoginFailures = request.app["login_failures"]
    wait = failures.retry_after(ip, now)
    if wait is not None:
        raise too_many_attempts(wait)
    # the try is reserved in the account's partition before the hash is verified: a burst cannot outrun the lock
    status, attempt = await gateway.command("account.login_attempt", NO_TEAM, body.email, {})
    if status == 200 and attempt["locked_until"]:
        raise too_many_attempts(int(attempt["locked_until"] - now) + 1)
    record = await stored_account(gateway, body.email) if status == 200 else None
    if not await verify_password(record and record["password_hash"], body.password):
        failures.add(ip, now)
        if record is not None and attempt["locks_until"]:
            raise too_many_attempts(int(attempt["locks_until"] - now) + 1)
        raise ApiError(401, "invalid_credentials", "Wrong email or password.")
    status, reply = await gateway.command("session.create", NO_TEAM, body.email, {"sid": "ses_" + uuid.uuid4().hex})
    if status != 200:
        return answer(status, reply)
    user = reply["user"]
    team_id = await team_for(gateway, user["id"], body.team_id, reply["default_team"])
    return json_response({"data": tokens.token_pair(gateway.settings, user["id"], user["email"], reply["sid"],
                                                     reply["gen"], team_id)})


@routes.post("/v1/auth/refresh", auth=None, body=Refresh, answers={200: Data(TokenPair)}, errors=(401, 403))
async def refresh(request: web.Request, body: Refresh) -> web.Response:
    """A refresh token → a new pair (the old refresh token stops working); team_id switches teams."""
    gateway = gateway_of(request)
    claims = tokens.decode(gateway.settings, body.refresh_token, "refresh")
    status, reply = await gateway.command("session.refresh", NO_TEAM, claims["eml"],
                                          {"sid": claims["sid"], "gen": claims.get("gen")})
    if status != 200:
        return answer(status, reply)
    team_id = await team_for(gateway, claims["sub"], body.team_id, claims.get("team") or reply["default_team"])
    return json_response({"data": tokens.token_pair(gateway.settings, claims["sub"], claims["eml"], claims["sid"],
                                                     reply["gen"], team_id)})


@routes.delete("/v1/auth", auth=PERSON, answers={204: None})
async def log_out(request: web.Request) -> web.Response:
    """End this session: its access and refresh tokens stop working everywhere."""
    principal, gateway = principal_of(request), gateway_of(request)
    return answer(*await gateway.access_command("session.revoke", NO_TEAM, principal.email,
                                                {"sid": principal.session_id}))


@routes.get("/v1/auth/me", auth=Auth(None), answers={200: Data(Me)})
async def me(request: web.Request) -> web.Response:
    """Who the credentials are: the person (or key), the team they act in, the role and scopes there."""
    principal, gateway = principal_of(request), gateway_of(request)
    team = gateway.teams.get(principal.org_id)
    data: dict = {"team": team_view_of(team, principal.role), "role": principal.role,
                  "scopes": sorted(principal.scopes)}
    if principal.is_person:
        record = await stored_account(gateway, principal.email)
        data["user"] = account_view(record) if record else {"id": principal.user_id, "email": principal.email}
        data["teams"] = my_teams(gateway, principal.user_id)
    else:
        data["api_key"] = {"id": principal.key_id}
    return json_response({"data": data})


def team_view_of(team: dict | None, role: str | None) -> dict | None:
    if team is None:
        return None
    return {"id": team["id"], "name": team["name"], "plan": team["plan"], **({"role": role} if role else {})}


def my_teams(gateway: Gateway, user_id: str) -> list[dict]:
    return [team_view_of(gateway.teams[org_id], role)
            for org_id, role in sorted(gateway.user_teams.get(user_id, {}).items()) if gateway.team_alive(org_id)]


# -- passwords --------------------------------------------------------------------


@routes.post("/v1/account/recovery", auth=None, body=EmailBody, answers={202: Data(Notice)})
async def recovery_request(request: web.Request, body: EmailBody) -> web.Response:
    """Mail a code to set a new password (answered alike whether or not the account exists)."""
    return answer(*await gateway_of(request).command("account.recovery_request", NO_TEAM, body.email, {}))


@routes.patch("/v1/account/recovery", auth=None, body=RecoveryConfirm, answers={200: Data(Account)})
async def recovery_confirm(request: web.Request, body: RecoveryConfirm) -> web.Response:
    """The mailed code and a new password; every session of the account ends.

    The code is checked first (its account's partition counts wrong tries);
    only a right one gets the new password hashed, and then set with the grant.
    """
    gateway = gateway_of(request)
    grant = secrets.token_urlsafe(32)
    status, reply = await gateway.command("account.recovery_confirm", NO_TEAM, body.email,
                                          {"code": body.code, "grant_hash": code_hash(grant, "")})
    if status != 200:
        return answer(status, reply)
    fields = {"grant": grant, "password_hash": await hash_password(body.new_password)}
    return answer(*await gateway.access_command("account.recovery_set", NO_TEAM, body.email, fields))


@routes.put("/v1/account/password", auth=PERSON, body=PasswordChange, answers={200: Data(Account)})
async def change_password(request: web.Request, body: PasswordChange) -> web.Response:
    """The current and a new password; the other sessions of the account end."""
    principal, gateway = principal_of(request), gateway_of(request)
    record = await stored_account(gateway, principal.email)
    if not await verify_password(record and record["password_hash"], body.current_password):
        raise ApiError(403, "wrong_password", "The current password is wrong.")
    fields = {"password_hash": await hash_password(body.new_password), "keep_sid": principal.session_id}
    return answer(*await gateway.access_command("account.password_set", NO_TEAM, principal.email, fields))


# -- the profile ----------------------------------------------------------------------


@routes.get("/v1/customer", auth=PERSON, answers={200: Data(Account)}, errors=(404,))
async def customer(request: web.Request) -> web.Response:
    """The signed-in person's profile."""
    record = await stored_account(gateway_of(request), principal_of(request).email)
    if record is None:
        raise ApiError(404, "not_found", "the account no longer exists")
    return json_response({"data": account_view(record)})


@routes.patch("/v1/customer", auth=PERSON, body=CustomerPatch, answers={200: Data(Account)}, errors=(404,))
async def update_customer(request: web.Request, body: CustomerPatch) -> web.Response:
    """Change the name or surname."""
    return answer(*await gateway_of(request).command(
        "account.update", NO_TEAM, principal_of(request).email, body.model_dump(exclude_unset=True)))


@routes.delete("/v1/customer", auth=PERSON, body=Body(CustomerDelete, required=False),  # none: "reason" is missing
                answers={204: None})
async def delete_customer(request: web.Request, body: CustomerDelete) -> web.Response:
    """Delete the account, saying why: sessions end, it leaves its teams (a team left empty goes too)."""
    principal, gateway = principal_of(request), gateway_of(request)
    teams = sorted(gateway.user_teams.get(principal.user_id, {}))
    return answer(*await gateway.access_command("account.delete", NO_TEAM, principal.email,
                                                {"reason": body.reason, "teams": teams}))


def install(app: web.Application) -> None:
    app["login_failures"] = LoginFailures()
    app.add_routes(routes)

