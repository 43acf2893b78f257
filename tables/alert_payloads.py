"""What an incoming webhook payload says about an alert: which group it belongs to, firing or resolved.

Two formats are understood natively, exactly as their tools send them:

* Prometheus Alertmanager (`version` "4"): `status` firing|resolved, `groupKey`,
  `alerts[]` with `labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`,
  `commonLabels`, `commonAnnotations`, `externalURL`;
* Grafana alerting (`version` "1"): the same fields plus `state` alerting|ok,
  `title`, `message`, `orgId`, and per alert `values`, `ruleUID`, `silenceURL`.

Each is one incident per `groupKey`, resolved when the payload says resolved/ok.
Any other JSON object is generic: its dedup key is the first of `dedup_key`,
`incident_key`, `fingerprint`, `groupKey` it has, else the hash of the payload
(so a storm of identical payloads is one incident); it resolves with `status`
or `state` of "resolved"/"ok". Pure functions: no I/O.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

RESOLVED_WORDS = {"resolved", "ok"}
GENERIC_KEYS = ("dedup_key", "incident_key", "fingerprint", "groupKey")
MAX_TITLE = 255
MAX_TEXT = 2000
GENERIC_TITLE = "webhook alert"


@dataclass(frozen=True, slots=True)
class AlertSignal:
    source: str                 # "alertmanager" | "grafana" | "generic"
    group_key: str
    resolved: bool
    title: str
    description: str | None = None
    firing: int = 0             # alerts firing in this payload
    resolved_alerts: int = 0    # alerts resolved in this payload
    fingerprints: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)


def _text(value: Any, limit: int) -> str | None:
    if value is None or value == "":
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text[:limit]


def _alerts(payload: dict) -> list[dict]:
    alerts = payload.get("alerts")
    return [alert for alert in alerts if isinstance(alert, dict)] if isinstance(alerts, list) else []


def _labels(payload: dict, name: str) -> dict:
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def is_alertmanager(payload: Any) -> bool:
    return (isinstance(payload, dict) and payload.get("version") == "4" and isinstance(payload.get("groupKey"), str)
            and payload.get("status") in ("firing", "resolved"))


def is_grafana(payload: Any) -> bool:
    return (isinstance(payload, dict) and payload.get("version") == "1" and isinstance(payload.get("groupKey"), str)
            and (payload.get("state") in ("alerting", "ok", "pending", "no_data")
                 or payload.get("status") in ("firing", "resolved")))


def _grouped(payload: dict, source: str, resolved: bool) -> AlertSignal:
    alerts = _alerts(payload)
    firing = sum(1 for alert in alerts if alert.get("status") == "firing")
    common_labels = _labels(payload, "commonLabels")
    common_annotations = _labels(payload, "commonAnnotations")
    group_labels = _labels(payload, "groupLabels")
    name = common_labels.get("alertname") or group_labels.get("alertname") or payload.get("receiver") or "alert"
    title = _text(payload.get("title"), MAX_TITLE) if source == "grafana" else None
    if not title:
        title = f"[{'RESOLVED' if resolved else 'FIRING:' + str(firing)}] {name}"
    description = (_text(common_annotations.get("summary"), MAX_TEXT)
                   or _text(common_annotations.get("description"), MAX_TEXT)
                   or (_text(payload.get("message"), MAX_TEXT) if source == "grafana" else None))
    details = {
        "status": payload.get("status"),
        "group_labels": group_labels,
        "common_labels": common_labels,
        "external_url": payload.get("externalURL"),
        "alerts": [{"fingerprint": alert.get("fingerprint"), "status": alert.get("status"),
                    "starts_at": alert.get("startsAt"), "ends_at": alert.get("endsAt"),
                    **({"rule_uid": alert["ruleUID"]} if "ruleUID" in alert else {}),
                    **({"values": alert["values"]} if isinstance(alert.get("values"), dict) else {})}
                   for alert in alerts[:20]],
    }
    if source == "grafana":
        details["state"] = payload.get("state")
    return AlertSignal(
        source=source,
        group_key=payload["groupKey"],
        resolved=resolved,
        title=title,
        description=description,
        firing=firing,
        resolved_alerts=sum(1 for alert in alerts if alert.get("status") == "resolved"),
        fingerprints=tuple(str(alert["fingerprint"]) for alert in alerts if alert.get("fingerprint"))[:100],
        details=details,
    )


def recognise(payload: Any) -> AlertSignal | None:
    """The alert a JSON payload describes; None for JSON that is not an object (nothing to open)."""
    if is_alertmanager(payload):
        return _grouped(payload, "alertmanager", payload["status"] == "resolved")
    if is_grafana(payload):
        state, status = payload.get("state"), payload.get("status")
        resolved = state == "ok" if state in ("alerting", "ok") else status == "resolved"
        return _grouped(payload, "grafana", resolved)
    if not isinstance(payload, dict):
        return None
    key = next((str(payload[name]) for name in GENERIC_KEYS
                if isinstance(payload.get(name), (str, int)) and payload.get(name) != ""), None)
    if key is None:
        key = "sha256:" + hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()
    words = {str(payload.get("status", "")).lower(), str(payload.get("state", "")).lower()}
    title = (_text(payload.get("title"), MAX_TITLE) or _text(payload.get("summary"), MAX_TITLE)
             or _text(payload.get("name"), MAX_TITLE) or GENERIC_TITLE)
    return AlertSignal(
        source="generic",
        group_key=key[:512],
        resolved=bool(words & RESOLVED_WORDS),
        title=title,
        description=_text(payload.get("description") or payload.get("message"), MAX_TEXT),
    )
