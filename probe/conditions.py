"""Does what a check saw satisfy its monitor's conditions? Pure: no sockets, no clock.

A monitor's conditions (schemas/monitor.py `Condition`) all must hold. They read:

* `status_code`: the HTTP status (or an SMTP reply code); values are codes,
  `"2xx"` or `"200-299"`; `equal` means in one of them. With no status_code
  condition an http monitor is up on 200-399;
* `response_time`: milliseconds, compared with greater/less(_or_equal);
* `keyword`: the body (at most 1 MiB of it) contains / does not contain a value,
  or `matches` an RE2 expression;
* `regex`: the body matches (`not_*` operators: does not match) an RE2 expression;
* `header`: the values of the response header named by `key`;
* `json_path` and its monitoring-API twin `response-json-check`: the values the
  rulesets' path syntax (tables/conditions.py) finds in the JSON body; a
  JSONPath-style leading `$.` is allowed;
* `ssl_expiry`: days left before the certificate's notAfter;
* `dns_record`: the answers of a dns monitor, as text.

Operators keep the rulesets' meaning (some found value satisfies some value;
`not_*` is exactly the negation), so a condition reads the same in both places.
The first condition that fails is reported with the value actually seen and a
cause a person can act on, e.g. `condition failed: status_code 503 not in [200]`
or `keyword "pinghome" not found`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from probe.outcome import Certificate, FailedCondition, day
from schemas.monitor import STATUS_RANGE, json_path_of
from tables.conditions import holds, parse_path, resolve, user_regex

DEFAULT_HTTP_STATUS = (200, 399)
#: the negative phrase of each operator, for "actual <phrase> expected"
FAILS_AS = {
    "equal": "not equal to", "not_equal": "equal to", "contains": "does not contain",
    "not_contains": "contains", "greater": "not greater than", "less": "not less than",
    "greater_or_equal": "less than", "less_or_equal": "greater than", "matches": "does not match",
    "exists": "missing", "not_exists": "present",
}
MISSING = object()


@dataclass(slots=True)
class Observation:
    """What one check saw, as its conditions read it."""

    status_code: int | None = None
    response_time_ms: float | None = None
    body: str | None = None
    headers: Mapping[str, str] | None = None   # case-insensitive (aiohttp's CIMultiDictProxy) or plain
    certificate: Certificate | None = None
    records: tuple[str, ...] | None = None
    now: float = 0.0                           # epoch seconds, for ssl_expiry
    _document: Any = field(default=MISSING, repr=False)

    def document(self) -> Any:
        """The body as JSON, parsed once; MISSING when it is not JSON."""
        if self._document is MISSING and self.body is not None:
            try:
                self._document = json.loads(self.body)
            except ValueError:
                self._document = MISSING
        return self._document

    def header_values(self, name: str) -> list[str]:
        if self.headers is None:
            return []
        if hasattr(self.headers, "getall"):
            return list(self.headers.getall(name, ()))
        wanted = name.lower()
        return [value for key, value in self.headers.items() if key.lower() == wanted]


@dataclass(frozen=True, slots=True)
class Failure:
    condition: FailedCondition
    cause: str


def first_failure(conditions: Sequence[Mapping[str, Any]], seen: Observation,
                  default_status: tuple[int, int] | None = None) -> Failure | None:
    """The first condition that does not hold (the default status rule first), or None when all hold."""
    if default_status is not None and not any(c["type"] == "status_code" for c in conditions):
        low, high = default_status
        if seen.status_code is not None and not low <= seen.status_code <= high:
            return Failure(FailedCondition("status_code", None, "equal", (f"{low}-{high}",), seen.status_code),
                           f"condition failed: status_code {seen.status_code} not in [{low}-{high}]")
    for condition in conditions:
        failure = _failure_of(condition, seen)
        if failure is not None:
            return failure
    return None


def _failure_of(condition: Mapping[str, Any], seen: Observation) -> Failure | None:
    kind = condition["type"]
    key = condition.get("key")
    operator = condition["operator"].replace("-", "_")
    values = tuple(condition.get("values") or ())

    def failed(actual: Any, cause: str) -> Failure:
        return Failure(FailedCondition(kind, key, operator, values, _scalar(actual)), cause)

    if kind == "status_code":
        code = seen.status_code
        if code is None:
            return failed(None, "condition failed: status_code: the check saw no status code")
        if _status_holds(operator, code, values):
            return None
        listed = ", ".join(str(value) for value in values)
        if operator == "equal":
            return failed(code, f"condition failed: status_code {code} not in [{listed}]")
        if operator == "not_equal":
            return failed(code, f"condition failed: status_code {code} in [{listed}]")
        return failed(code, f"condition failed: status_code {code} {FAILS_AS[operator]} {listed}")
    if kind == "response_time":
        took = seen.response_time_ms
        if took is None:
            return failed(None, "condition failed: response_time: the check measured no response time")
        if _holds(operator, [took], values):
            return None
        return failed(round(took, 1), f"condition failed: response_time {took:.0f} ms {FAILS_AS[operator]} "
                                      f"{_listed(values)} ms")
    if kind == "ssl_expiry":
        certificate = seen.certificate
        if certificate is None:
            return failed(None, "condition failed: ssl_expiry: no certificate was seen (not a TLS target?)")
        days = certificate.days_left(seen.now)
        if _holds(operator, [days], values):
            return None
        return failed(round(days, 1), f"condition failed: ssl_expiry: certificate expires in {days:.0f} days "
                                      f"(on {day(certificate.not_after)}), {FAILS_AS[operator]} {_listed(values)}")
    if kind in ("keyword", "regex"):
        body = seen.body or ""
        if kind == "regex":
            wanted = not operator.startswith("not_")
            matched = next((pattern for pattern in values if user_regex(str(pattern)).search(body)), None)
            if (matched is not None) == wanted:
                return None
            if wanted:
                return failed(body, f"regex {_listed(values)} does not match the body")
            return failed(body, f"regex {_text(matched)} matches the body")
        if _holds(operator, [body], values):
            return None
        if operator == "contains":
            if len(values) == 1:
                return failed(body, f"keyword {_text(values[0])} not found")
            return failed(body, f"none of the keywords {_listed(values)} found")
        if operator == "not_contains":
            present = next(value for value in values if str(value) in body)
            return failed(body, f"keyword {_text(present)} found")
        return failed(body, f"condition failed: body {FAILS_AS[operator]} {_listed(values)}")
    if kind == "header":
        return _found_failure(f"header {key}", "missing", seen.header_values(key), operator, values, failed)
    if kind in ("json_path", "response-json-check"):
        document = seen.document()
        if document is MISSING:
            return failed(None, f"condition failed: json_path {key}: the body is not JSON")
        found = resolve(document, parse_path(json_path_of(key)))
        return _found_failure(f"json_path {key}", "found nothing", found, operator, values, failed)
    if kind == "dns_record":
        found = list(seen.records or ())
        if _holds(operator, found, values):
            return None
        return failed(found, f"condition failed: dns_record {_listed(found) if found else 'none'} "
                             f"{FAILS_AS[operator]} {_listed(values)}")
    raise ValueError(f"unknown condition type {kind!r}")


def _found_failure(subject: str, nothing: str, found: list[Any], operator: str, values: Sequence[Any],
                   failed: Callable[[Any, str], Failure]) -> Failure | None:
    """For what a key finds (a header's values, a JSON path's matches): None when it holds, else why not."""
    if _holds(operator, found, values):
        return None
    if not found:
        return failed(None, f"condition failed: {subject} {nothing}")
    actual = found[0] if len(found) == 1 else found
    return failed(actual, f"condition failed: {subject} {_listed(found)} {FAILS_AS[operator]} {_listed(values)}")


def _holds(operator: str, found: list[Any], values: Sequence[Any]) -> bool:
    """tables.conditions.holds, with the monitor spelling and its _or_equal operators."""
    if operator == "greater_or_equal":
        return holds("greater", found, values) or holds("equal", found, values[:1])
    if operator == "less_or_equal":
        return holds("less", found, values) or holds("equal", found, values[:1])
    return holds(operator.replace("_", "-"), found, values)


def _in_status(code: int, value: Any) -> bool:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return code == int(value)
    found = STATUS_RANGE.match(str(value))
    if found is None:
        return False
    if found[1]:
        return int(found[1]) * 100 <= code <= int(found[1]) * 100 + 99
    return int(found[2]) <= code <= int(found[3])


def _status_holds(operator: str, code: int, values: Sequence[Any]) -> bool:
    if operator in ("equal", "contains"):
        return any(_in_status(code, value) for value in values)
    if operator in ("not_equal", "not_contains"):
        return not any(_in_status(code, value) for value in values)
    return _holds(operator, [code], values)


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def _listed(values: Sequence[Any]) -> str:
    if len(values) == 1:
        return _cut(_text(values[0]))
    return "[" + ", ".join(_cut(_text(value)) for value in values[:10]) + (", …]" if len(values) > 10 else "]")


def _cut(text: str, at: int = 120) -> str:
    return text if len(text) <= at else text[:at] + "…"


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
