"""Status pages: the table's key layout, how a component's status follows its source, and the page's views.

Keys of the `status_pages` table:

    "<page id>" (JSON, as entity_key)  the page's configuration (commands)
    00 'c' <name>                      a claim: which page holds a subdomain ("sub:x") or a domain ("dom:x"),
                                       in the name's partition (commands)
    00 'b' <source>                    which page components show a source ("monitor:<id>", "heartbeat:<id>",
                                       "component:<id>"), in the source's partition (the fold)
    00 'm' <page id>                   the page's live model, in the page's partition (the fold)
    00 's' <page id> 00 <subscriber>   a subscriber: email, whether confirmed, its token's hash (commands)
    00 'e' <page id> 00 <email>        which subscriber an address is (commands)
    00 'w' <page id> 00 <url>          which subscriber a webhook URL is (commands)

A webhook subscriber is told through the alert channels' delivery fold
(agents/alert_channels/fold.py: the same signature, retries and backoff), as the
delivery target `webhook_target(page, subscriber)`, in the page's partition,
where the fold finds the subscriber's URL and sealed secret (`webhook_channel`).

A component's status is the worst of what its source says (a monitor or
heartbeat down: major outage; in a maintenance window: under maintenance), what
the open incidents naming it say (by impact), and, for a manual component, what
was set by hand. The page's overall status is the worst of its components and
its open incidents, in Atlassian Statuspage's words (`indicator`, `description`),
whose public JSON (summary.json, ...) `statuspage_*` below lay out field by field.
"""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

CLAIM, BINDING, MODEL, SUBSCRIBER, SUBSCRIBED = b"\x00c", b"\x00b", b"\x00m", b"\x00s", b"\x00e"
WEBHOOK_SUBSCRIBED = b"\x00w"
WEBHOOK_TARGET = "spw:"   # a delivery target that is a page's webhook subscriber, not an alert channel
#: how a webhook subscriber's deliveries are tried (an alert channel's defaults)
WEBHOOK_DELIVERY = {"max_attempts": 8, "initial_backoff_seconds": 10, "timeout_seconds": 10}
DAYS = 90                 # days of uptime shown per component
KEEP_INCIDENTS = 25       # resolved incidents a page keeps (past incidents, incidents.json)
KEEP_UPDATES = 10         # updates an incident shows, the newest (a view stays well under a Kafka message)
UPDATE_BODY = 1000        # characters of an update's message shown

#: component statuses, least to most severe
SEVERITY = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
IMPACT_STATUS = {"none": "operational", "minor": "degraded_performance", "major": "partial_outage",
                 "critical": "major_outage"}
#: the worst component status -> Statuspage's page status
INDICATOR = {
    "operational": ("none", "All Systems Operational"),
    "under_maintenance": ("maintenance", "Service Under Maintenance"),
    "degraded_performance": ("minor", "Minor Service Outage"),
    "partial_outage": ("major", "Partial System Outage"),
    "major_outage": ("critical", "Major System Outage"),
}
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")


def claim_key(name: str) -> bytes:
    return CLAIM + name.encode()


def binding_key(source: str) -> bytes:
    return BINDING + source.encode()


def model_key(page_id: str) -> bytes:
    return MODEL + page_id.encode()


def subscriber_key(page_id: str, subscriber_id: str) -> bytes:
    return SUBSCRIBER + page_id.encode() + b"\x00" + subscriber_id.encode()


def subscribers_range(page_id: str) -> tuple[bytes, bytes]:
    head = SUBSCRIBER + page_id.encode() + b"\x00"
    return head, head + b"\xff"


def subscribed_key(page_id: str, email: str) -> bytes:
    return SUBSCRIBED + page_id.encode() + b"\x00" + email.lower().encode()


def webhook_subscribed_key(page_id: str, url: str) -> bytes:
    return WEBHOOK_SUBSCRIBED + page_id.encode() + b"\x00" + url.encode()


def webhook_target(page_id: str, subscriber_id: str) -> str:
    return f"{WEBHOOK_TARGET}{page_id}:{subscriber_id}"


def webhook_of(target: str) -> tuple[str, str] | None:
    """(page id, subscriber id) of a delivery target that is a webhook subscriber; None for an alert channel."""
    if not target.startswith(WEBHOOK_TARGET):
        return None
    page_id, _, subscriber_id = target[len(WEBHOOK_TARGET):].partition(":")
    return page_id, subscriber_id


def webhook_channel(target: str, subscriber: dict) -> dict:
    """A webhook subscriber as the delivery fold reads an alert channel: id, spec (url, retry bounds), secret."""
    return {"id": target, "spec": {"url": subscriber["webhook"], **WEBHOOK_DELIVERY}, "secret": subscriber["secret"]}


def masked_url(url: str) -> str:
    """What a list shows of a webhook URL: its scheme and host; the path and query may hold a token."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    hidden = rest[len(host):].strip("/") or "@" in rest.split("/", 1)[0]
    return f"{scheme}://{host}/…" if hidden else f"{scheme}://{host}"


def subscription_view(subscriber: dict) -> dict:
    webhook = subscriber.get("webhook")
    return {"id": subscriber["id"], "type": "webhook" if webhook else "email", "email": subscriber.get("email"),
            "webhook": masked_url(webhook) if webhook else None, "confirmed": subscriber["confirmed"],
            "created_at": iso(subscriber["created_at"])}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def subscriber_links(subscriber: dict, token: str | None = None) -> dict:
    """The links a subscriber's mail carries (the page's URL as they subscribed through it)."""
    base = subscriber["page_url"].rstrip("/")
    secret = token or subscriber["token"]
    return {"page_url": base,
            "confirm_url": f"{base}/subscriptions/{subscriber['id']}/verify?token={secret}",
            "unsubscribe_url": f"{base}/subscriptions/{subscriber['id']}/unsubscribe?token={secret}"}


def subdomain_claim(subdomain: str) -> str:
    return f"sub:{subdomain}"


def domain_claim(domain: str) -> str:
    return f"dom:{domain}"


def sources_of(spec: dict) -> dict[str, list[str]]:
    """source -> the ids of the page's components that show it (every component shows "component:<id>")."""
    sources: dict[str, list[str]] = {}
    for component in spec.get("components", []):
        if component.get("monitor_id"):
            sources.setdefault(f"monitor:{component['monitor_id']}", []).append(component["id"])
        if component.get("heartbeat_id"):
            sources.setdefault(f"heartbeat:{component['heartbeat_id']}", []).append(component["id"])
        sources.setdefault(f"component:{component['id']}", []).append(component["id"])
    return sources


def source_status(status: str | None, in_maintenance: bool = False) -> str:
    """What a monitor's or heartbeat's status says of a component."""
    if in_maintenance:
        return "under_maintenance"
    return "major_outage" if status == "down" else "operational"


def worst(statuses: list[str]) -> str:
    return max(statuses, key=SEVERITY.index, default="operational")


def component_status(component: dict, source: dict | None, incidents: list[dict]) -> str:
    """A component's status now: its source, or its manual status, and the open incidents naming it."""
    if component.get("monitor_id") or component.get("heartbeat_id"):
        statuses = [source_status((source or {}).get("status"), bool((source or {}).get("maintenance")))]
    else:
        statuses = [component.get("status", "operational")]
    for incident in incidents:
        if incident["status"] != "resolved" and component["id"] in incident["component_ids"]:
            statuses.append(IMPACT_STATUS.get(incident.get("impact") or "none", "operational"))
            if incident.get("source") in ("monitor", "heartbeat") and statuses[0] == "operational":
                statuses.append("partial_outage")  # opened by the source going down: not operational until resolved
    return worst(statuses)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d")


def days_ending(now: float, count: int = DAYS) -> list[str]:
    today = datetime.fromtimestamp(now, tz=timezone.utc).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def daily_uptime(series: list[dict], now: float) -> dict:
    """uptime.series(..., 86400) points -> the compact form a page keeps: DAYS values ending today.

    {"end": today, "values": [uptime % or None (no data), oldest first], "up": checks up, "total": checks}
    """
    by_day = {point["start"][:10]: point for point in series}
    days = days_ending(now)
    values = []
    for day in days:
        point = by_day.get(day)
        values.append(round(100.0 * point["up_checks"] / point["total_checks"], 2)
                      if point and point["total_checks"] else None)
    return {"end": days[-1], "values": values, "up": sum(by_day[d]["up_checks"] for d in days if d in by_day),
            "total": sum(by_day[d]["total_checks"] for d in days if d in by_day)}


def day_colour(uptime: float | None, incidents: int) -> str:
    if uptime is None:
        return "none"
    if uptime >= 99.9 and not incidents:
        return "up"
    return "down" if uptime < 95.0 else "degraded"


def uptime_bars(daily: dict | None, incidents: list[dict], component_id: str, now: float) -> list[dict]:
    """DAYS bars ending today, oldest first: the day, its uptime (None: no data), the incidents naming the
    component opened that day. `daily` (daily_uptime) may end before today: the days since have no data."""
    opened: dict[str, list[str]] = {}
    for incident in incidents:
        if component_id in incident["component_ids"]:
            opened.setdefault(day_of(incident["created_at"]), []).append(incident["name"])
    known: dict[str, float | None] = {}
    if daily:
        known = dict(zip(days_ending(datetime.fromisoformat(daily["end"]).replace(tzinfo=timezone.utc).timestamp(),
                                     len(daily["values"])), daily["values"]))
    bars = []
    for day in days_ending(now):
        uptime, names = known.get(day), opened.get(day, [])
        bars.append({"date": day, "uptime_percentage": uptime, "incidents": names,
                     "colour": day_colour(uptime, len(names))})
    return bars


def overall_uptime(daily: dict | None) -> float | None:
    if not daily or not daily["total"]:
        return None
    return round(100.0 * daily["up"] / daily["total"], 3)


def group_id(page_id: str, name: str) -> str:
    return "grp_" + hashlib.sha256(f"{page_id}:{name}".encode()).hexdigest()[:16]


# -- the live model: the page's partition keeps it, the view is what it publishes ---------------


def new_model(page_id: str) -> dict:
    return {"id": page_id, "config": None, "sources": {}, "incidents": {}, "version": 0}


def apply_incident(model: dict, incident: dict, at: float) -> bool:
    """An incident naming the page's components (a view from incident-events): its status and updates.

    Idempotent: an event older than what the model holds changes nothing.
    """
    held = model["incidents"].get(incident["id"])
    updated_at = incident["updated_at"]
    if held is not None and (held["updated_at"] > updated_at
                             or (held["updated_at"] == updated_at and held["status"] == incident["status"])):
        return False  # older, or this change again (redelivered, or heard through another component)
    updates = list(held["updates"]) if held else []
    if not updates or updates[-1]["status"] != incident["status"] or incident.get("message"):
        body = incident.get("message") or (incident.get("description") if not updates else None) \
            or default_update(incident["status"])
        number = int(updates[-1]["id"].rsplit(":", 1)[1]) + 1 if updates else 0
        updates.append({"id": f"{incident['id']}:{number}", "status": incident["status"], "body": body[:UPDATE_BODY],
                        "at": at})
        updates = updates[-KEEP_UPDATES:]
    model["incidents"][incident["id"]] = {
        "id": incident["id"], "name": incident["name"], "status": incident["status"],
        "impact": incident.get("impact") or "none", "source": incident.get("source"),
        "component_ids": sorted(incident["component_ids"]), "created_at": incident["created_at"],
        "updated_at": updated_at, "resolved_at": incident.get("resolved_at"), "updates": updates,
    }
    resolved = sorted((i for i in model["incidents"].values() if i["status"] == "resolved"),
                      key=lambda i: i["updated_at"])
    for old in resolved[:-KEEP_INCIDENTS]:
        del model["incidents"][old["id"]]
    return True


def default_update(status: str) -> str:
    return {"investigating": "We are investigating this issue.",
            "identified": "The issue has been identified and a fix is being worked on.",
            "monitoring": "A fix has been put in place and we are monitoring the results.",
            "resolved": "This incident has been resolved."}.get(status, status)


def page_view(model: dict, now: float) -> dict | None:
    """The page as published on `status-page-views` and served: settings, components, incidents, status."""
    config = model["config"]
    if config is None:
        return None
    spec = config["spec"]
    incidents = sorted(model["incidents"].values(), key=lambda i: i["created_at"], reverse=True)
    components = []
    for position, component in enumerate(spec.get("components", []), 1):
        source = model["sources"].get(component["id"])
        daily = (source or {}).get("daily")
        components.append({
            "id": component["id"], "name": component["name"], "description": component.get("description"),
            "group": component.get("group"),
            "group_id": group_id(model["id"], component["group"]) if component.get("group") else None,
            "monitor_id": component.get("monitor_id"), "heartbeat_id": component.get("heartbeat_id"),
            "status": component_status(component, source, incidents), "position": position,
            "uptime_percentage": overall_uptime(daily), "daily": daily,
        })
    statuses = [component["status"] for component in components]
    statuses += [IMPACT_STATUS.get(i["impact"], "operational") for i in incidents if i["status"] != "resolved"]
    indicator, description = INDICATOR[worst(statuses)]
    public = {name: value for name, value in spec.items() if name not in ("components", "password")}
    return {
        **public, "id": model["id"], "org_id": config["org_id"], "password_hash": config.get("password_hash"),
        "page_name": spec.get("page_name") or spec["name"], "components": components,
        "groups": groups_of(model["id"], components), "incidents": incidents,
        "status": {"indicator": indicator, "description": description},
        "maintenances": sorted((m for m in config.get("maintenances", []) if m["ends_at"] > now - SHOW_ENDED_FOR),
                               key=lambda m: m["starts_at"]),
        "created_at": config["created_at"], "updated_at": max([config["updated_at"]] + [
            i["updated_at"] for i in incidents] + [s.get("at", 0) for s in model["sources"].values()]),
        "version": model["version"],
    }


# -- scheduled maintenance: announced ahead, shown while it runs --------------------------------------------

SHOW_ENDED_FOR = 7 * 86400   # seconds a completed maintenance stays on the page


def maintenance_status(maintenance: dict, now: float) -> str:
    if now < maintenance["starts_at"]:
        return "scheduled"
    return "in_progress" if now < maintenance["ends_at"] else "completed"


def maintenance_view(maintenance: dict, now: float) -> dict:
    return {"id": maintenance["id"], "name": maintenance["name"], "message": maintenance.get("message"),
            "status": maintenance_status(maintenance, now), "starts_at": iso(maintenance["starts_at"]),
            "ends_at": iso(maintenance["ends_at"]), "component_ids": maintenance["component_ids"]}


def maintenance_phase(view: dict, now: float) -> tuple[str, ...]:
    """Where each of the page's maintenances stands now: a rendering made in one phase holds for all of it."""
    return tuple(maintenance_status(m, now) for m in view.get("maintenances", ()))


def at_time(view: dict, now: float) -> dict:
    """The view as it stands at `now`: components of a maintenance in progress are under maintenance (unless
    worse), and so is the page if nothing is worse."""
    running = [m for m in view.get("maintenances", ()) if maintenance_status(m, now) == "in_progress"]
    if not running:
        return view
    under = {cid for m in running for cid in m["component_ids"]}
    components = [{**c, "status": worst([c["status"], "under_maintenance"])} if c["id"] in under else c
                  for c in view["components"]]
    statuses = [c["status"] for c in components]
    statuses += [IMPACT_STATUS.get(i["impact"], "operational") for i in view["incidents"] if i["status"] != "resolved"]
    indicator, description = INDICATOR[worst(statuses + ["under_maintenance"])]
    return {**view, "components": components, "groups": groups_of(view["id"], components),
            "status": {"indicator": indicator, "description": description}}


def drop_oldest_resolved(view: dict) -> bool:
    """Leave out the view's oldest resolved incident; False when there is none left to drop."""
    resolved = [incident for incident in view["incidents"] if incident["status"] == "resolved"]
    if not resolved:
        return False
    view["incidents"].remove(min(resolved, key=lambda incident: incident["updated_at"]))
    return True


def groups_of(page_id: str, components: list[dict]) -> list[dict]:
    """Components by group, groups in the order of their first component; ungrouped ones alone."""
    groups: list[dict] = []
    by_name: dict[str, dict] = {}
    for component in components:
        name = component["group"]
        if name is None:
            groups.append({"id": None, "name": None, "components": [component]})
        elif name in by_name:
            by_name[name]["components"].append(component)
        else:
            by_name[name] = {"id": group_id(page_id, name), "name": name, "components": [component]}
            groups.append(by_name[name])
    for group in groups:
        group["status"] = worst([component["status"] for component in group["components"]])
    return groups


# -- Atlassian Statuspage's public JSON (v2) -------------------------------------------------------


def statuspage_page(view: dict, url: str) -> dict:
    return {"id": view["id"], "name": view["page_name"], "url": url, "time_zone": "Etc/UTC",
            "updated_at": iso(view["updated_at"])}


def statuspage_components(view: dict) -> list[dict]:
    created = iso(view["created_at"])
    updated = iso(view["updated_at"])
    rows = []
    for group in view["groups"]:
        if group["id"] is not None:
            rows.append({"id": group["id"], "name": group["name"], "status": group["status"],
                         "created_at": created, "updated_at": updated,
                         "position": group["components"][0]["position"], "description": None, "showcase": False,
                         "start_date": None, "group_id": None, "page_id": view["id"], "group": True,
                         "only_show_if_degraded": False,
                         "components": [component["id"] for component in group["components"]]})
        for component in group["components"]:
            rows.append({"id": component["id"], "name": component["name"], "status": component["status"],
                         "created_at": created, "updated_at": updated, "position": component["position"],
                         "description": component["description"], "showcase": True,
                         "start_date": created[:10] if created else None, "group_id": component["group_id"],
                         "page_id": view["id"], "group": False, "only_show_if_degraded": False})
    return rows


def statuspage_incident(view: dict, incident: dict, url: str) -> dict:
    names = {component["id"]: component for component in view["components"]}
    affected = [names[cid] for cid in incident["component_ids"] if cid in names]
    monitoring = next((u["at"] for u in incident["updates"] if u["status"] == "monitoring"), None)
    return {
        "id": incident["id"], "name": incident["name"], "status": incident["status"],
        "created_at": iso(incident["created_at"]), "updated_at": iso(incident["updated_at"]),
        "monitoring_at": iso(monitoring), "resolved_at": iso(incident["resolved_at"]),
        "impact": incident["impact"], "shortlink": f"{url}#incident-{incident['id']}",
        "started_at": iso(incident["created_at"]), "page_id": view["id"],
        "incident_updates": [{
            "id": update["id"], "status": update["status"], "body": update["body"], "incident_id": incident["id"],
            "created_at": iso(update["at"]), "updated_at": iso(update["at"]), "display_at": iso(update["at"]),
            "affected_components": [{"code": c["id"], "name": c["name"], "old_status": c["status"],
                                     "new_status": c["status"]} for c in affected],
            "deliver_notifications": True, "custom_tweet": None, "tweet_id": None,
        } for update in reversed(incident["updates"])],
        "components": [{"id": c["id"], "name": c["name"], "status": c["status"], "created_at": iso(view["created_at"]),
                        "updated_at": iso(view["updated_at"]), "position": c["position"],
                        "description": c["description"], "showcase": True, "start_date": None,
                        "group_id": c["group_id"], "page_id": view["id"], "group": False,
                        "only_show_if_degraded": False} for c in affected],
    }


def statuspage_maintenance(view: dict, maintenance: dict, url: str, now: float) -> dict:
    names = {component["id"]: component for component in view["components"]}
    affected = [names[cid] for cid in maintenance["component_ids"] if cid in names]
    status = maintenance_status(maintenance, now)
    created = iso(maintenance["starts_at"])
    return {
        "id": maintenance["id"], "name": maintenance["name"], "status": status, "created_at": created,
        "updated_at": created, "monitoring_at": None,
        "resolved_at": iso(maintenance["ends_at"]) if status == "completed" else None, "impact": "maintenance",
        "shortlink": f"{url}#maintenance-{maintenance['id']}", "started_at": created, "page_id": view["id"],
        "scheduled_for": iso(maintenance["starts_at"]), "scheduled_until": iso(maintenance["ends_at"]),
        "incident_updates": [{
            "id": f"{maintenance['id']}:0", "status": "scheduled", "body": maintenance.get("message") or "",
            "incident_id": maintenance["id"], "created_at": created, "updated_at": created, "display_at": created,
            "affected_components": [{"code": c["id"], "name": c["name"], "old_status": "operational",
                                     "new_status": "under_maintenance"} for c in affected],
            "deliver_notifications": True, "custom_tweet": None, "tweet_id": None}],
        "components": [{"id": c["id"], "name": c["name"], "status": c["status"], "created_at": iso(view["created_at"]),
                        "updated_at": iso(view["updated_at"]), "position": c["position"],
                        "description": c["description"], "showcase": True, "start_date": None,
                        "group_id": c["group_id"], "page_id": view["id"], "group": False,
                        "only_show_if_degraded": False} for c in affected],
    }


def statuspage_document(view: dict, url: str, kind: str, now: float | None = None) -> dict:
    """summary, status, components, incidents, unresolved, scheduled-maintenances: the v2 documents."""
    now = time.time() if now is None else now
    view = at_time(view, now)
    page = statuspage_page(view, url)
    incidents = view["incidents"]
    maintenances = [statuspage_maintenance(view, m, url, now) for m in view.get("maintenances", ())]
    upcoming = [m for m in maintenances if m["status"] != "completed"]
    unresolved = [statuspage_incident(view, i, url) for i in incidents if i["status"] != "resolved"]
    if kind == "summary":
        return {"page": page, "components": statuspage_components(view), "incidents": unresolved,
                "scheduled_maintenances": upcoming, "status": view["status"]}
    if kind == "status":
        return {"page": page, "status": view["status"]}
    if kind == "components":
        return {"page": page, "components": statuspage_components(view)}
    if kind == "incidents":
        return {"page": page, "incidents": [statuspage_incident(view, i, url) for i in incidents]}
    if kind == "unresolved":
        return {"page": page, "incidents": unresolved}
    if kind == "scheduled-maintenances":
        return {"page": page, "scheduled_maintenances": maintenances}
    raise ValueError(kind)
