"""Every endpoint of the API, taken from its router, against every kind of wrong credentials.

The table is the app's own routes, so a new endpoint is checked by being added:
  (a) no credentials: 401 unauthorized;
  (b) credentials of the team that lack the route's scope: 403 insufficient_scope
      (a key, and a person whose role lacks it); an API key on a people-only route: 403 people_only;
  (c) valid credentials of another team: 404 for this team's resources named in the path, and
      on collections only their own data, never this team's;
  (d) an expired or a revoked key, a signed-out or an expired access token: 401.
Routes that need no credentials are listed by hand (UNPROTECTED): adding one is a conscious act.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import pytest
from aiohttp import web

from api import heartbeats
from api.app import create_app
from api.gateway import Gateway
from tables.access import ALL_SCOPES, ROLE_SCOPES
from engine.settings import Settings
from tests.integration.accounts import Person, code_in, log_in, person, sign_up
from tests.integration.cluster import Client, Cluster, Response, wait_for
from tests.mailbox import Mailbox

#: answer without credentials for one use and need them for another: the view that needs them
GUARDED_INSIDE = {"GET /v1/heartbeats/{id}/events": heartbeats.heartbeat_history}  # ?result= checks in

UNPROTECTED = {
    "GET /v1/health-check", "GET /v1/openapi.json",
    # sign-up, sign-in and recovery: the people who call them have no credentials yet
    "POST /v1/account", "PATCH /v1/account", "POST /v1/account/confirmation-code",
    "POST /v1/auth", "POST /v1/auth/refresh", "POST /v1/account/recovery", "PATCH /v1/account/recovery",
    # ingest URLs: the id (or token) is the secret
    "POST /v1/heartbeats/{id}/events", "GET /v1/heartbeats/{id}/events", "POST /v1/webhooks/{id}/events",
    "* /{id}", "* /{id}/{action}", "* /ping/{id}", "* /ping/{id}/{action}", "* /api/push/{token}",
    # Prometheus scrapes: no tenant's data; PINGSTREAM_METRICS_TOKEN closes it (tests/integration/test_metrics.py)
    "GET /metrics",
    # public status pages, by subdomain or by Host: for anyone to read; a private one asks its password (or IP)
    "GET /s/{subdomain}", "GET /s/{subdomain}/", "GET /",
    "GET /s/{subdomain}/api/v2/{document}", "GET /api/v2/{document}",
    "GET /s/{subdomain}/history.atom", "GET /history.atom",
    # a private page's password form: the password is the credential
    "POST /s/{subdomain}/login", "POST /login",
    # visitors subscribe themselves: only a pending subscriber, who must confirm from the mailbox
    "POST /s/{subdomain}/subscribe", "POST /subscribe",
    # the links in a subscriber's mail: the subscriber's token in the link is the secret
    "GET /s/{subdomain}/subscriptions/{subscription}/verify", "GET /subscriptions/{subscription}/verify",
    "GET /s/{subdomain}/subscriptions/{subscription}/unsubscribe", "GET /subscriptions/{subscription}/unsubscribe",
    "POST /s/{subdomain}/subscriptions/{subscription}/unsubscribe",   # one click from the mail client (RFC 8058)
    "POST /subscriptions/{subscription}/unsubscribe",
    # a page's one-click acknowledge link: the signed token is the credential
    "GET /v1/pages/ack/{token}",
}

#: what a path parameter names, by the path up to and including it
RESOURCE_AT = {
    "/v1/monitors/{id}": "monitor", "/v1/resource/{id}": "monitor", "/v1/heartbeats/{id}": "heartbeat", "/v1/webhooks/{id}": "webhook",
    "/v1/rulesets/{id}": "ruleset", "/v1/incidents/{id}": "incident", "/v1/alerts/{id}": "alert",
    "/v1/keys/{id}": "key", "/v1/team/{id}": "team",
    "/v1/team/{id}/invitation/{invitation}": "invitation", "/v1/team/{id}/member/{member}": "member",
    "/v1/team/{id}/schedules/{schedule}": "schedule", "/v1/account/schedules/{id}": "schedule",
    "/v1/groups/{id}": "group", "/v1/pages/{id}": "page",
    "/v1/account/notification-channels/{channel}": "personal channel",
    "/v1/team/{id}/notification-channels/{channel}": "team channel",
    "/v1/status-pages/{id}": "status page", "/v1/status-pages/{id}/components/{component_id}": "component",
    "/v1/status-pages/{id}/subscriptions/{subscription_id}": "subscription",
    "/v1/status-pages/{id}/maintenances/{maintenance_id}": "maintenance",
    "/v1/status-pages/domains/{domain}": "domain",
}

#: kinds a path names that are nobody's to hide: any team may ask about any domain name (and learns no one else's
#: page of it), so such a route is checked like a collection
ANYONES = {"domain"}

#: valid bodies, so that a request about another team's resource is refused for whose it is, not for its input
BODIES: dict[str, object] = {
    "PATCH /v1/monitors/{id}": {"name": "renamed by a stranger"},
    "PUT /v1/heartbeats/{id}": {"name": "renamed by a stranger", "interval": 60},
    "POST /v1/monitors/{id}/ssl/reminder": {"days_before": [7]},
    "PUT /v1/monitors/{id}/ssl/reminder": {"days_before": [7]},
    "POST /v1/monitors/{id}/domain/reminder": {"days_before": [7]},
    "PUT /v1/monitors/{id}/domain/reminder": {"days_before": [7]},
    "PUT /v1/rulesets/{id}": {"rule_type": "state-change", "name": "renamed by a stranger"},
    "PUT /v1/rulesets/{id}/actions": ["trigger-statuspage-update"],
    "PATCH /v1/incidents/{id}": {"status": "resolved"},
    "PUT /v1/team/{id}": {"name": "renamed by a stranger"},
    "POST /v1/team/{id}/invitation": {"email": "stranger@example.com", "role": "root"},
    "PATCH /v1/team/{id}/member/{member}": {"role": "root"},
    "POST /v1/team/{id}/invitation/{invitation}/accept": {"code": "00000000"},
    "POST /v1/team/{id}/schedules": {"name": "a stranger's rota"},
    "PUT /v1/team/{id}/schedules/{schedule}": {"name": "renamed by a stranger"},
    "PUT /v1/account/schedules/{id}": {"name": "renamed by a stranger"},
    "PUT /v1/groups/{id}": {"name": "renamed by a stranger"},
    "PATCH /v1/groups/{id}": {"name": "renamed by a stranger"},
    "POST /v1/team/{id}/notification-channels": {"type": "webhook", "name": "a stranger's",
                                                 "url": "http://127.0.0.1:9/hook"},
    "PATCH /v1/account/notification-channels/{channel}": {"name": "renamed by a stranger"},
    "PATCH /v1/team/{id}/notification-channels/{channel}": {"name": "renamed by a stranger"},
    "POST /v1/account/notification-channels/{channel}/verify": {"code": "000000"},
    "POST /v1/team/{id}/notification-channels/{channel}/verify": {"code": "000000"},
    "PUT /v1/status-pages/{id}": {"name": "renamed by a stranger"},
    "POST /v1/status-pages/{id}/subscriptions": {"email": "stranger@example.com"},
    "POST /v1/status-pages/{id}/maintenances": {"name": "a stranger's", "starts_at": "2030-01-01T00:00:00Z",
                                                "ends_at": "2030-01-01T01:00:00Z"},
}

#: collection requests that name this team's resources, as another team might send them: (query, body)
NAMING: dict[str, Callable[[dict[str, str]], tuple[str, object]]] = {
    "DELETE /v1/monitors": lambda ids: (f"?id={ids['monitor']}", None),
    "DELETE /v1/heartbeats": lambda ids: (f"?id={ids['heartbeat']}", None),
    "POST /v1/checks": lambda ids: ("", {"monitor_id": ids["monitor"], "status": "down"}),
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str                 # the route's template: /v1/monitors/{id}
    scope: str | None         # None: any valid credentials
    people_only: bool

    def __str__(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def names_resources(self) -> bool:
        return bool(kinds_in(self.path) - ANYONES)

    def body(self) -> object:
        return BODIES.get(str(self), {}) if self.method in ("POST", "PUT", "PATCH") else None


def routes_of(app: web.Application) -> tuple[list[Endpoint], set[str]]:
    """(the protected endpoints, the names of the unprotected ones); HEAD twins of GET routes left out."""
    gets = {(route.resource.canonical, route.handler) for route in app.router.routes() if route.method == "GET"}
    protected, unprotected = [], set()
    for route in app.router.routes():
        if route.method == "HEAD" and (route.resource.canonical, route.handler) in gets:
            continue
        name = f"{route.method} {route.resource.canonical}"
        handler = GUARDED_INSIDE.get(name, route.handler)
        if not hasattr(route.handler, "scope"):
            unprotected.add(name)
        if hasattr(handler, "scope"):
            protected.append(Endpoint(route.method, route.resource.canonical, handler.scope, handler.people_only))
    return protected, unprotected


# the route table does not depend on settings: an app that never starts is enough
PROTECTED, UNPROTECTED_FOUND = routes_of(create_app(Gateway(Settings()), manage_gateway=False))
SCOPED = [e for e in PROTECTED if e.scope is not None or e.people_only]


PARAMETER = re.compile(r"\{\w+\}")


def kind_at(path: str, match: re.Match) -> str:
    prefix = path[:match.end()]
    assert prefix in RESOURCE_AT, f"no resource kind for {prefix}: add it to RESOURCE_AT"
    return RESOURCE_AT[prefix]


def kinds_in(path: str) -> set[str]:
    return {kind_at(path, match) for match in PARAMETER.finditer(path)}


def concrete(path: str, ids: dict[str, str]) -> str:
    """The template with each parameter replaced by the id of the resource it names."""
    return PARAMETER.sub(lambda match: ids[kind_at(path, match)], path)


def assert_error(response: Response, status: int, code: str, endpoint: Endpoint) -> None:
    assert (response.status, (response.body or {}).get("error")) == (status, code), (str(endpoint), response.body)


# -- the teams -----------------------------------------------------------------------------------------


@dataclass
class Team:
    id: str
    admin: Client                        # a key with every scope
    ids: dict[str, str] = field(default_factory=dict)   # kind -> id of one resource of that kind (and "subdomain")
    member: Person | None = None         # whose the personal channel is

    def new_key(self, scopes, expires_at: float | None = None) -> tuple[str, Client]:
        created = self.admin.post("/v1/keys", {"name": "access table", "scopes": sorted(scopes),
                                               "expires_at": expires_at})
        assert created.status == 201, created.body
        return created.body["data"]["id"], Client(self.admin.base, created.body["data"]["secret"])

    def view(self, kind: str) -> object:
        """What this team's admin sees of its resource of `kind` (to tell that a stranger changed nothing)."""
        listed = {"key": "/v1/keys", "team": "/v1/teams", "invitation": f"/v1/team/{self.id}/invitations",
                  "member": f"/v1/team/{self.id}/members"}
        page = f"/v1/status-pages/{self.ids.get('status page')}"
        listed.update({"component": f"{page}/components", "subscription": f"{page}/subscriptions",
                       "maintenance": f"/s/{self.ids.get('subdomain')}/api/v2/scheduled-maintenances.json"})
        if kind in listed:
            response = self.admin.get(listed[kind] + "?per_page=100")
            found = response.body.get("data", response.body.get("scheduled_maintenances")) or []
            return response.status, [v for v in found if v["id"] == self.ids[kind]]
        item = next(path for path, named in RESOURCE_AT.items() if named == kind)  # e.g. /v1/monitors/{id}
        viewer = self.member.client if kind == "personal channel" else self.admin
        response = viewer.get(concrete(item, self.ids))
        return response.status, response.body

    def views(self, kinds: set[str]) -> dict[str, object]:
        return {kind: self.view(kind) for kind in sorted(kinds)}


def created(response: Response) -> str:
    assert response.status == 201, response.body
    return response.body["data"]["id"]


def join(cluster: Cluster, mailbox: Mailbox, team: Team, name: str, role: str) -> Person:
    """A new person, invited to the team by its admin key, who accepts and signs in to it."""
    email, _ = sign_up(cluster, mailbox, name)
    invitation = created(team.admin.post(f"/v1/team/{team.id}/invitation", {"email": email, "role": role}))
    code = code_in(mailbox.wait_for_mail(email), "invitation")
    accepted = log_in(cluster, email).client.post(f"/v1/team/{team.id}/invitation/{invitation}/accept",
                                                  {"code": code})
    assert accepted.status == 200, accepted.body
    return log_in(cluster, email, team_id=team.id)


@pytest.fixture(scope="module")
def team_a(cluster: Cluster, smtp_server: Mailbox) -> Team:
    """The team whose resources everyone else tries to reach: one of each kind, and two members."""
    org_id, secret = cluster.new_org(name="team A")
    team = Team(org_id, cluster.client(secret))
    admin = team.admin
    team.member = join(cluster, smtp_server, team, "max", "manager")
    subdomain, tag = f"team-a-{time.time_ns() % 10**12}", uuid.uuid4().hex[:8]
    page = admin.post("/v1/status-pages", {"name": "Team A", "subdomain": subdomain, "domain": f"status-{tag}.a.test",
                                           "subscription_enabled": True, "components": [{"name": "API"}]})
    assert page.status == 201, page.body
    page_id = page.body["data"]["id"]
    subscribed = wait_for("the page to take subscriptions", lambda: (s := admin.post(
        f"/v1/status-pages/{page_id}/subscriptions", {"email": f"reader.{tag}@example.com"})).status == 202 and s, 10)
    channel = {"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook"}
    team.ids = {
        "team": org_id,
        "monitor": created(admin.post("/v1/monitors", {"name": "Homepage", "url": "https://example.com"})),
        "heartbeat": created(admin.post("/v1/heartbeats", {"name": "backup", "interval": 60})),
        "webhook": created(admin.post("/v1/webhooks", {"name": "alertmanager"})),
        "ruleset": created(admin.post("/v1/rulesets", {"rule_type": "webhook", "name": "all"})),
        "incident": created(admin.post("/v1/incidents", {"name": "Checkout slow"})),
        "alert": created(admin.post("/v1/alerts", {"name": "pager", "url": "http://127.0.0.1:9/hook",
                                                   "events": ["monitor.down"]})),
        "key": team.new_key(["monitors:read"])[0],
        "invitation": created(admin.post(f"/v1/team/{org_id}/invitation", {"email": "later@example.com"})),
        "member": team.member.user_id,
        "schedule": created(admin.post(f"/v1/team/{org_id}/schedules", {"name": "rota"})),
        "group": created(admin.post("/v1/groups", {"name": "database"})),
        "personal channel": created(team.member.client.post("/v1/account/notification-channels", channel)),
        "team channel": created(admin.post(f"/v1/team/{org_id}/notification-channels", channel)),
        "status page": page_id, "subdomain": subdomain, "domain": page.body["data"]["domain"],
        "component": page.body["data"]["components"][0]["id"],
        "subscription": subscribed.body["data"]["id"],
        "maintenance": created(admin.post(f"/v1/status-pages/{page_id}/maintenances", {
            "name": "upgrade", "starts_at": "2030-01-01T00:00:00Z", "ends_at": "2030-01-01T01:00:00Z"})),
    }
    paged = admin.post("/v1/external/pages", {"subject": "db down", "target_user_id": team.ids["member"]})
    assert paged.status == 201, paged.body
    team.ids["page"] = paged.body["page_id"]
    wait_for("the maintenance on the public page", lambda: team.view("maintenance")[1], 10)
    unseen = {kind: seen for kind, seen in team.views(set(RESOURCE_AT.values()) - ANYONES).items()
              if seen[0] != 200 or not seen[1]}
    assert not unseen, f"the admin (or member) must see each resource, or (c) compares nothing: {unseen}"
    return team


@pytest.fixture(scope="module")
def user_of_a(cluster: Cluster, smtp_server: Mailbox, team_a: Team) -> Person:
    """A member of team A with the least role (tables/access.py ROLE_SCOPES["user"])."""
    return join(cluster, smtp_server, team_a, "uma", "user")


@pytest.fixture(scope="module")
def team_b(cluster: Cluster) -> Team:
    org_id, secret = cluster.new_org(name="team B")
    return Team(org_id, cluster.client(secret), {"team": org_id})


@pytest.fixture(scope="module")
def person_b(cluster: Cluster, smtp_server: Mailbox) -> Person:
    """Someone in no team of A's: the stranger on people-only routes (with their own team)."""
    return person(cluster, smtp_server, "bob")


@pytest.fixture(scope="module")
def key_without(team_a: Team) -> Callable[[str], Client]:
    """A key of team A with every scope but one."""
    keys: dict[str, Client] = {}

    def without(scope: str) -> Client:
        if scope not in keys:
            keys[scope] = team_a.new_key(set(ALL_SCOPES) - {scope})[1]
        return keys[scope]
    return without


@pytest.fixture(scope="module")
def dead_credentials(cluster: Cluster, smtp_server: Mailbox, team_a: Team, user_of_a: Person) -> dict[str, tuple[Client, str]]:
    """Credentials of team A that no longer work, with the error each gets: name -> (client, error)."""
    _, expired_key = team_a.new_key(ALL_SCOPES, expires_at=time.time() + 2)
    revoked_id, revoked_key = team_a.new_key(ALL_SCOPES)
    assert team_a.admin.delete(f"/v1/keys/{revoked_id}").status == 204
    signed_out = log_in(cluster, user_of_a.email, team_id=team_a.id).client
    assert signed_out.delete("/v1/auth").status == 204
    claims = jwt.decode(user_of_a.access_token, options={"verify_signature": False})
    now = int(time.time())
    expired_token = jwt.encode({**claims, "iat": now - 1000, "exp": now - 100}, cluster.settings().jwt_secret,
                               algorithm="HS256")
    wait_for("the key to expire", lambda: expired_key.get("/v1/auth/me").status == 401, 10)
    return {"expired key": (expired_key, "key_expired"), "revoked key": (revoked_key, "unauthorized"),
            "signed-out token": (signed_out, "unauthorized"),
            "expired token": (Client(team_a.admin.base, expired_token), "token_expired")}


# -- the table itself ------------------------------------------------------------------------------------


def test_every_route_is_in_the_table_or_knowingly_open() -> None:
    assert len(PROTECTED) >= 40, [str(e) for e in PROTECTED]
    assert UNPROTECTED_FOUND == UNPROTECTED
    for endpoint in PROTECTED:
        assert endpoint.scope is None or endpoint.scope in ALL_SCOPES, str(endpoint)
        kinds_in(endpoint.path)  # every path parameter names a kind of resource
    stale = (set(BODIES) | set(NAMING) | set(GUARDED_INSIDE)) - {str(endpoint) for endpoint in PROTECTED}
    assert not stale, f"entries for routes that are gone: {stale}"


# -- (a) no credentials ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", PROTECTED, ids=str)
def test_no_credentials_is_401(endpoint: Endpoint, cluster: Cluster, team_a: Team) -> None:
    response = cluster.client(None).request(endpoint.method, concrete(endpoint.path, team_a.ids), endpoint.body())
    assert_error(response, 401, "unauthorized", endpoint)


# -- (b) the team's credentials without the scope ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", SCOPED, ids=str)
def test_credentials_without_the_scope_are_403(endpoint: Endpoint, team_a: Team, user_of_a: Person,
                                                key_without: Callable[[str], Client]) -> None:
    path = concrete(endpoint.path, team_a.ids)
    if endpoint.people_only:
        assert_error(team_a.admin.request(endpoint.method, path, endpoint.body()), 403, "people_only", endpoint)
    else:
        response = key_without(endpoint.scope).request(endpoint.method, path, endpoint.body())
        assert_error(response, 403, "insufficient_scope", endpoint)
    if endpoint.scope is not None and endpoint.scope not in ROLE_SCOPES["user"]:
        response = user_of_a.client.request(endpoint.method, path, endpoint.body())
        assert_error(response, 403, "insufficient_scope", endpoint)


# -- (c) another team's credentials ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", PROTECTED, ids=str)
def test_another_team_gets_404_or_only_its_own_data(endpoint: Endpoint, cluster: Cluster, team_a: Team,
                                                     team_b: Team, person_b: Person) -> None:
    if endpoint.people_only:  # a session of its own: DELETE /v1/auth ends it
        stranger, own_team = log_in(cluster, person_b.email).client, person_b.team_id
    else:
        stranger, own_team = team_b.admin, team_b.id
    if endpoint.names_resources:
        kinds = kinds_in(endpoint.path)
        before = team_a.views(kinds)
        attempts = [concrete(endpoint.path, team_a.ids)]
        if len(kinds) > 1:  # the stranger's own team, with team A's invitation or member
            attempts.append(concrete(endpoint.path, {**team_a.ids, "team": own_team}))
        for path in attempts:
            assert_error(stranger.request(endpoint.method, path, endpoint.body()), 404, "not_found", endpoint)
        assert team_a.views(kinds) == before, f"{endpoint} changed team A's resource"
        return
    naming = NAMING.get(str(endpoint))
    query, body = naming(team_a.ids) if naming else ("", endpoint.body())
    path = concrete(endpoint.path, team_a.ids)  # only names that are anyone's (ANYONES)
    named = {kind for kind, id_ in team_a.ids.items() if id_ in path + query + json.dumps(body)}
    before = team_a.views(named - ANYONES)
    response = stranger.request(endpoint.method, path + query, body)
    assert response.status < 500, (str(endpoint), response.status, response.body)
    if endpoint.method == "GET":
        assert response.status == 200, (str(endpoint), response.body)
    if naming and endpoint.method == "POST":
        assert response.status >= 400, (str(endpoint), response.body)  # nothing accepted for team A's resource
    seen = json.dumps(response.body)
    leaked = {kind: id_ for kind, id_ in team_a.ids.items() if kind not in named and id_ in seen}
    assert not leaked, (str(endpoint), leaked, response.body)
    assert team_a.views(named - ANYONES) == before, f"{endpoint} changed team A's resource"


# -- (d) credentials that no longer work -------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["expired key", "revoked key", "signed-out token", "expired token"])
@pytest.mark.parametrize("endpoint", PROTECTED, ids=str)
def test_dead_credentials_are_401(endpoint: Endpoint, credential: str, team_a: Team,
                                  dead_credentials: dict[str, tuple[Client, str]]) -> None:
    client, error = dead_credentials[credential]
    response = client.request(endpoint.method, concrete(endpoint.path, team_a.ids), endpoint.body())
    assert_error(response, 401, error, endpoint)
