"""Where each table record lives when the partition count changes: the rules a rescale re-keys state by.

A record lives in the partition of one id (`home_of`): the entity it belongs
to (a monitor, a heartbeat, a channel's owner, an organisation, a domain, an
incident's route), read from its key. Most keys start with that id, either as
JSON (`"mon_…"`, the keys `entity_key` makes) or followed by NUL; the indexes
of a partition start with a byte no id starts with (00, 01, 02, FF) and carry
the id after a time. A rescale checks every record against the partition it
is in before it moves anything (`partition_for(home, old count)` must be it),
so a key laid out in a way these rules do not know stops the move, never
misplaces a record.

A few records count what a partition holds for an organisation (`MERGED`):
after the move one partition keeps the organisation's sum (reads add every
partition's count, so where the sum lives does not change an answer).
"""
from __future__ import annotations

from collections.abc import Callable

import orjson

from tables.entity_keys import SEP
from tables.incidents import INCIDENT_ID


class Unroutable(ValueError):
    """A key these rules cannot place."""


def _leading(key: bytes) -> str:
    head = key.split(SEP, 1)[0]
    if not head:
        raise Unroutable("no id before the first NUL")
    text = head.decode()
    incident = INCIDENT_ID.match(text)
    return incident[1] if incident else text  # an incident lives with its route


def _after(width: int) -> Callable[[bytes], str]:
    """The id after `width` bytes of index head and time (the rest of the key, up to any NUL)."""
    return lambda key: _leading(key[width:])


def _ref_org(key: bytes) -> str:
    """A page's due entry: `00 pdue <ms> <org>/<page>`, in the organisation's partition."""
    return key[5 + 8:].decode().split("/", 1)[0]


#: table -> index head -> the id of a record whose key starts with that head
INDEXES: dict[str, dict[bytes, Callable[[bytes], str]]] = {
    "monitors": {b"\xffactive\x00": _after(8)},
    "monitor_data": {b"\x00d": _after(2 + 8), b"\x00u": _after(2)},
    "heartbeat_data": {b"\x00": _after(1 + 8)},
    "deliveries": {b"\x01": _after(1 + 8)},
    "notification_deliveries": {b"\x01": _after(1 + 8)},
    "certificates": {b"\x01n": _after(2), b"\x01d": _after(2), b"\x02q": _after(2 + 8), b"\x02l": _after(2 + 8)},
    "status_pages": {b"\x00c": lambda key: key[2:].decode(), b"\x00b": lambda key: key[2:].decode().split(":", 1)[1],
                     b"\x00m": _after(2), b"\x00s": _after(2), b"\x00e": _after(2), b"\x00w": _after(2)},
    "pages": {b"\x00pdue": _ref_org},
}


def home_of(table: str, key: bytes) -> str:
    """The id whose partition holds `table`'s record `key`; raises Unroutable for a layout not known here."""
    try:
        for head, home in INDEXES.get(table, {}).items():
            if key.startswith(head):
                return home(key)
        if key[:1] == b'"':
            entity = orjson.loads(key)
            if not isinstance(entity, str):
                raise Unroutable("a JSON key that is not a string")
            return entity
        if key[:1] in (b"\x00", b"\x01", b"\x02", b"\xff"):
            raise Unroutable(f"an index {key[:2]!r} not known for table {table!r}")
        return _leading(key)
    except (UnicodeDecodeError, orjson.JSONDecodeError, IndexError) as exc:
        raise Unroutable(f"{exc}") from None


def _sum_active(a: dict, b: dict) -> dict:
    return {"active": a["active"] + b["active"], "pos": max(a["pos"], b["pos"])}


def _sum_hours(a: dict, b: dict) -> dict:
    hours: dict[float, int] = {}
    for hour, count in a["hours"] + b["hours"]:
        hours[hour] = hours.get(hour, 0) + count
    return {"pos": max(a["pos"], b["pos"]), "hours": [[hour, hours[hour]] for hour in sorted(hours)]}


#: (table, index head) -> how two partitions' records of one key become one (JSON values)
MERGED: dict[tuple[str, bytes], Callable[[dict, dict], dict]] = {
    ("monitors", b"\xffactive\x00"): _sum_active,      # tables/usage.py: active monitors per partition
    ("monitor_data", b"\x00u"): _sum_hours,             # tables/usage.py: checks per hour per partition
}


def merger_of(table: str, key: bytes) -> Callable[[dict, dict], dict] | None:
    for (name, head), merge in MERGED.items():
        if name == table and key.startswith(head):
            return merge
    return None


def merge(table: str, key: bytes, a: bytes, b: bytes) -> bytes:
    """One record of `key` from two partitions' records of it (a counter per partition)."""
    merger = merger_of(table, key)
    if merger is None:
        raise Unroutable(f"two partitions hold {table!r} key {key!r}, which is not a per-partition counter")
    return orjson.dumps(merger(orjson.loads(a), orjson.loads(b)))


def directory_home(key: bytes) -> str:
    """A `directory` entry (`monitor:<id>`, `heartbeat:<id>`, `webhook:<id>`) lives with its entity."""
    kind, sep, entity = key.decode().partition(":")
    if not sep or not entity:
        raise Unroutable(f"directory key {key!r} is not <kind>:<id>")
    return entity
