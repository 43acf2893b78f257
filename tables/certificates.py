"""Certificate and domain expiry: which reminders are due, which domain a monitor names, what RDAP says. Pure.

Reminders. A reminder is a list of thresholds, days before an expiry (a
certificate's notAfter, or a domain's expiration date). A threshold is crossed
once the days left are at or below it, and fires once per expiry date: a
certificate with the same notAfter (re-keyed, or seen from another region)
fires nothing again, a renewal (another notAfter) arms every threshold anew.
When several are crossed at once (a reminder set late, a certificate first
seen close to its end), one event tells the nearest one, and all of them count
as fired. `next_due` is when the next unfired threshold is crossed: the
partition's due index wakes the monitor then.

Domains. A monitor names the registrable domain of its URL's (or host's) name,
by the public suffix list bundled with the `publicsuffixlist` package (no
network): www.example.co.uk names example.co.uk; an IP address or a bare
suffix names none.

RDAP. `parse_rdap` reads an RFC 9083 domain object: events "registration" and
"expiration", the entity with role "registrar" (its vCard `fn`), nameservers'
`ldhName`, `status`.
"""
from __future__ import annotations

import ipaddress
import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from tables.entity_keys import runtime_key

DAY = 86400.0
MAX_THRESHOLDS = 10
KEPT_EXPIRIES = 3            # expiry dates whose fired thresholds are remembered (regions may see two certificates)
LOOKUP_EVERY = DAY           # a domain is looked up at most once a day
RETRY_FAILED_AFTER = 3600.0  # a lookup that got no answer at all (timeout, refused) is tried again after an hour

_PSL: PublicSuffixList | None = None


# -- reminders ------------------------------------------------------------------


def days_left(expires: float, now: float) -> float:
    return (expires - now) / DAY


def whole_days_left(expires: float, now: float) -> int:
    """Days left as people count them: 4.2 days is 4; an expiry passed 0.3 days ago is -1."""
    return math.floor(days_left(expires, now))


def expiry_tag(expires: float) -> str:
    """How fired thresholds name the expiry they fired for (whole seconds)."""
    return str(int(expires))


def crossed(thresholds: list[int], expires: float, now: float, fired: dict[str, dict[str, int]]) -> list[int]:
    """Thresholds crossed at `now` and not yet fired for this expiry, nearest first."""
    done = fired.get(expiry_tag(expires), {})
    left = days_left(expires, now)
    return sorted(t for t in thresholds if left <= t and str(t) not in done)


def mark_fired(fired: dict[str, dict[str, int]], expires: float, thresholds: list[int], pos: int) -> None:
    """Record `thresholds` fired for `expires` at source position `pos`; only the newest expiries are kept."""
    tag = expiry_tag(expires)
    fired.setdefault(tag, {}).update({str(t): pos for t in thresholds})
    for old in sorted(fired, key=float)[:-KEPT_EXPIRIES]:
        del fired[old]


def next_due(thresholds: list[int], expires: float, fired: dict[str, dict[str, int]]) -> float | None:
    """When the next threshold not fired for `expires` is crossed (epoch seconds); None when none is left."""
    done = fired.get(expiry_tag(expires), {})
    times = [expires - t * DAY for t in thresholds if str(t) not in done]
    return min(times) if times else None


def valid_thresholds(days_before: list[int]) -> str | None:
    """Why `days_before` cannot be a reminder; None when it can (1-365, at most 10, no repeats)."""
    if not days_before:
        return "give at least one threshold"
    if len(days_before) > MAX_THRESHOLDS:
        return f"at most {MAX_THRESHOLDS} thresholds"
    if any(not 1 <= t <= 365 for t in days_before):
        return "each threshold is 1 to 365 days"
    if len(set(days_before)) != len(days_before):
        return "thresholds must not repeat"
    return None


# -- which domain a monitor names -------------------------------------------------


def host_of(spec: dict) -> str | None:
    """The host name a monitor checks: its URL's for http, else its `host`."""
    url = spec.get("url")
    if url:
        try:
            return urlsplit(url if "://" in url else f"//{url}").hostname
        except ValueError:
            return None
    return spec.get("host")


def registrable_domain(host: str | None) -> str | None:
    """The domain one registers, by the public suffix list: www.example.co.uk -> example.co.uk.

    None for an IP address, a bare public suffix (co.uk) or a single label (localhost).
    """
    global _PSL
    if not host:
        return None
    name = host.strip().rstrip(".").lower()
    try:
        ipaddress.ip_address(name.strip("[]"))
        return None
    except ValueError:
        pass
    if "." not in name:
        return None
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if _PSL is None:
        _PSL = PublicSuffixList()  # parses the bundled list once, ~50 ms
    return _PSL.privatesuffix(name)


# -- what RDAP says ---------------------------------------------------------------


def moment(text: Any) -> float | None:
    """An RDAP date (RFC 3339) as epoch seconds; None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _vcard_name(entity: dict) -> str | None:
    card = entity.get("vcardArray")
    if isinstance(card, list) and len(card) == 2 and isinstance(card[1], list):
        for prop in card[1]:
            if isinstance(prop, list) and len(prop) >= 4 and prop[0] == "fn" and isinstance(prop[3], str):
                return prop[3]
    return None


def _registrar(entities: Any) -> str | None:
    for entity in entities if isinstance(entities, list) else []:
        if not isinstance(entity, dict):
            continue
        if "registrar" in (entity.get("roles") or []):
            return _vcard_name(entity) or entity.get("handle")
        found = _registrar(entity.get("entities"))
        if found:
            return found
    return None


def parse_rdap(domain: str, document: Any, looked_up_at: float) -> dict:
    """The domain information an RDAP domain object (RFC 9083) gives; `source` "unavailable" if it is not one."""
    if not isinstance(document, dict) or document.get("objectClassName", "domain") != "domain":
        return unavailable(domain, "the RDAP answer is not a domain object", looked_up_at)
    events = {event.get("eventAction"): moment(event.get("eventDate"))
              for event in document.get("events") or [] if isinstance(event, dict)}
    nameservers = [str(ns["ldhName"]).lower().rstrip(".") for ns in document.get("nameservers") or []
                   if isinstance(ns, dict) and ns.get("ldhName")]
    return {
        "source": "rdap",
        "domain": domain,
        "registrar": _registrar(document.get("entities")),
        "created": events.get("registration"),
        "expires": events.get("expiration"),
        "name_servers": nameservers[:20],
        "status": [str(s) for s in document.get("status") or []][:20],
        "looked_up_at": looked_up_at,
        "reason": None,
    }


def unavailable(domain: str, reason: str, looked_up_at: float, failed: bool = False) -> dict:
    """No RDAP information: `reason` says why. `failed`: no answer at all (tried again sooner)."""
    return {"source": "unavailable", "domain": domain, "registrar": None, "created": None, "expires": None,
            "name_servers": [], "status": [], "looked_up_at": looked_up_at, "reason": reason, "failed": failed}


def next_lookup(info: dict) -> float:
    """When a domain is looked up again: a day after an answer, an hour after no answer."""
    return info["looked_up_at"] + (RETRY_FAILED_AFTER if info.get("failed") else LOOKUP_EVERY)


# -- the table's keys (table `certificates`) ----------------------------------------
#
#   <monitor id> 00 's'              a monitor's certificate and domain runtime (the certificates fold)
#   01 'n' <monitor id>              which domain a monitor names (the directory fold)
#   01 'd' <domain>                  a domain: its monitors and what RDAP said (the domain's partition)
#   02 'q' <ms, 8 bytes> <monitor>   due index: a monitor's next reminder threshold
#   02 'l' <ms, 8 bytes> <domain>    lookup index: a domain's next RDAP lookup
#
# Monitor ids and domains never start with 01 or 02, so the indexes sort apart from runtimes.

monitor_key = runtime_key


def naming_key(monitor_id: str) -> bytes:
    return b"\x01n" + monitor_id.encode()


def domain_key(domain: str) -> bytes:
    return b"\x01d" + domain.encode()


def _index_key(kind: bytes, at_ms: int, name: str) -> bytes:
    return b"\x02" + kind + max(0, at_ms).to_bytes(8, "big") + name.encode()


def _index_range(kind: bytes, until_ms: int) -> tuple[bytes, bytes]:
    return b"\x02" + kind + bytes(8), b"\x02" + kind + (max(0, until_ms) + 1).to_bytes(8, "big")


def _parse_index(key: bytes) -> tuple[int, str]:
    return int.from_bytes(key[2:10], "big"), key[10:].decode()


def due_key(at_ms: int, monitor_id: str) -> bytes:
    return _index_key(b"q", at_ms, monitor_id)


def due_range(until_ms: int) -> tuple[bytes, bytes]:
    return _index_range(b"q", until_ms)


def lookup_key(at_ms: int, domain: str) -> bytes:
    return _index_key(b"l", at_ms, domain)


def lookup_range(until_ms: int) -> tuple[bytes, bytes]:
    return _index_range(b"l", until_ms)


parse_due_key = parse_lookup_key = _parse_index


# -- views ----------------------------------------------------------------------------


def iso_or_none(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_view(monitor_id: str, runtime: dict | None, reminder: dict | None, now: float) -> dict:
    """GET /v1/monitors/{id}/ssl."""
    runtime = runtime or {}
    seen = runtime.get("certificate")
    certificate = None
    if seen is not None:
        certificate = {
            **{k: seen.get(k) for k in ("subject", "issuer", "sans", "serial", "fingerprint_sha256")},
            "not_before": iso_or_none(seen["not_before"]), "not_after": iso_or_none(seen["not_after"]),
            "days_left": whole_days_left(seen["not_after"], now),
            "expired": seen["not_after"] <= now,
            "verified": runtime.get("verified"), "verify_error": runtime.get("verify_error"),
        }
    change = runtime.get("last_change")
    return {
        "monitor_id": monitor_id,
        "certificate": certificate,
        "observed_at": iso_or_none(runtime.get("observed_at")),
        "region": runtime.get("region"),
        "last_change": None if change is None else {
            "at": iso_or_none(change["at"]), "previous_fingerprint_sha256": change.get("previous"),
            "fingerprint_sha256": change["fingerprint"], "previous_not_after": iso_or_none(change.get("previous_not_after")),
            "not_after": iso_or_none(change.get("not_after")), "renewed": bool(change.get("renewed"))},
        "reminder": reminder_view(monitor_id, "ssl", reminder),
    }


def domain_view(monitor_id: str, domain: str | None, runtime: dict | None, reminder: dict | None,
                now: float) -> dict:
    """GET /v1/monitors/{id}/domain: `domain` is what the monitor names now; the runtime holds its last answer."""
    info = (runtime or {}).get("domain_info")
    if info is not None and info.get("domain") != domain:
        info = None  # about the domain the monitor named before
    if domain is None:
        source, reason = "none", "the monitor's host is an IP address or has no registrable domain"
    elif info is None:
        source, reason = "pending", "not looked up yet"
    else:
        source, reason = info["source"], info.get("reason")
    info = info or {}
    expires = info.get("expires")
    return {
        "monitor_id": monitor_id,
        "domain": domain,
        "source": source,
        "reason": reason,
        "registrar": info.get("registrar"),
        "created": iso_or_none(info.get("created")),
        "expires": iso_or_none(expires),
        "days_left": None if expires is None else whole_days_left(expires, now),
        "name_servers": info.get("name_servers", []),
        "status": info.get("status", []),
        "looked_up_at": iso_or_none(info.get("looked_up_at")),
        "reminder": reminder_view(monitor_id, "domain", reminder),
    }


def reminder_view(monitor_id: str, kind: str, reminder: dict | None) -> dict | None:
    if reminder is None:
        return None
    return {"monitor_id": monitor_id, "kind": kind, "days_before": reminder["days_before"],
            "created_at": iso_or_none(reminder["created_at"]), "updated_at": iso_or_none(reminder["updated_at"])}
