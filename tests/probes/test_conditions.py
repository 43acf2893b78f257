"""The probe's condition evaluation, pure: each type, each operator family, the cause and the actual value."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from probe.conditions import DEFAULT_HTTP_STATUS, Observation, first_failure
from probe.outcome import Certificate, FailedCondition, Outcome, Timings
from schemas.check_result import CheckResult
from schemas.monitor import Condition, MonitorSpec

NOW = 1_795_000_000.0
CERT = Certificate("CN=example.com", "CN=Test CA", ("example.com",), NOW - 86400 * 80, NOW + 86400 * 10, "ab" * 32)
SEEN = Observation(status_code=200, response_time_ms=250.0, body='{"groups": {"user": [{"name": "ada"}]}, "n": 5}',
                   headers={"Content-Type": "application/json", "X-Cache": "HIT"}, certificate=CERT, now=NOW)


def cause(*conditions: dict, seen: Observation = SEEN, default=None) -> str | None:
    failure = first_failure(list(conditions), seen, default)
    return failure.cause if failure else None


def c(kind: str, operator: str, *values, key=None) -> dict:
    return {"type": kind, "key": key, "operator": operator, "values": list(values)}


def test_no_conditions_hold_and_the_default_status_is_2xx_to_3xx():
    assert cause() is None
    assert cause(seen=Observation(status_code=301), default=DEFAULT_HTTP_STATUS) is None
    assert cause(seen=Observation(status_code=404), default=DEFAULT_HTTP_STATUS) == \
        "condition failed: status_code 404 not in [200-399]"
    # an explicit status condition replaces the default
    assert cause(c("status_code", "equal", 404), seen=Observation(status_code=404), default=DEFAULT_HTTP_STATUS) \
        is None


@pytest.mark.parametrize("condition, expected", [
    (c("status_code", "equal", 200, 204), None),
    (c("status_code", "equal", "2xx"), None),
    (c("status_code", "equal", "200-299"), None),
    (c("status_code", "equal", 503), "condition failed: status_code 200 not in [503]"),
    (c("status_code", "not_equal", "2xx"), "condition failed: status_code 200 in [2xx]"),
    (c("status_code", "less", 200), "condition failed: status_code 200 not less than 200"),
    (c("response_time", "less", 1000), None),
    (c("response_time", "less_or_equal", 250), None),
    (c("response_time", "less", 100), "condition failed: response_time 250 ms not less than 100 ms"),
    (c("keyword", "contains", "ada"), None),
    (c("keyword", "contains", "pinghome"), 'keyword "pinghome" not found'),
    (c("keyword", "contains", "x", "y"), 'none of the keywords ["x", "y"] found'),
    (c("keyword", "not_contains", "error", "ada"), 'keyword "ada" found'),
    (c("keyword", "matches", r'"n": \d'), None),
    (c("regex", "matches", r"^\{"), None),
    (c("regex", "matches", r"^<html"), 'regex "^<html" does not match the body'),
    (c("regex", "not_contains", "ada"), 'regex "ada" matches the body'),
    (c("header", "equal", "HIT", key="x-cache"), None),
    (c("header", "equal", "MISS", key="X-Cache"), 'condition failed: header X-Cache "HIT" not equal to "MISS"'),
    (c("header", "exists", key="ETag"), "condition failed: header ETag missing"),
    (c("header", "not_exists", key="ETag"), None),
    (c("json_path", "equal", "ada", key="groups.user[0].name"), None),
    (c("json_path", "equal", "ada", key="$.groups.user[*].name"), None),
    (c("json_path", "greater", 4, key="n"), None),
    (c("json_path", "greater_or_equal", 5, key="n"), None),
    (c("json_path", "greater", 5, key="n"), "condition failed: json_path n 5 not greater than 5"),
    (c("json_path", "exists", key="groups.admin"), "condition failed: json_path groups.admin found nothing"),
    (c("response-json-check", "equal", "bob", key="groups.user[0].name"),
     'condition failed: json_path groups.user[0].name "ada" not equal to "bob"'),
    (c("ssl_expiry", "greater", 7), None),
    (c("ssl_expiry", "greater", 14),
     "condition failed: ssl_expiry: certificate expires in 10 days (on 2026-11-28), not greater than 14"),
])
def test_each_condition_type(condition, expected):
    assert cause(condition) == expected


def test_the_first_failure_carries_the_actual_value():
    failure = first_failure([c("keyword", "contains", "ada"), c("json_path", "equal", "bob", key="n"),
                             c("status_code", "equal", 500)], SEEN)
    assert failure.condition == FailedCondition("json_path", "n", "equal", ("bob",), 5)


def test_bodies_that_are_not_json_and_checks_without_a_certificate():
    plain = Observation(body="<html>", now=NOW)
    assert cause(c("json_path", "exists", key="a"), seen=plain) == "condition failed: json_path a: the body is not JSON"
    assert cause(c("ssl_expiry", "greater", 1), seen=plain) == \
        "condition failed: ssl_expiry: no certificate was seen (not a TLS target?)"
    records = Observation(records=("127.0.0.1",))
    assert cause(c("dns_record", "equal", "127.0.0.1"), seen=records) is None
    assert cause(c("dns_record", "not_equal", "127.0.0.1"), seen=records) == \
        'condition failed: dns_record "127.0.0.1" equal to "127.0.0.1"'


def test_the_monitoring_api_vocabulary_is_a_valid_condition():
    condition = Condition.model_validate({"type": "response-json-check", "key": "groups.user[0].name",
                                          "operator": "not-equal", "values": ["bob"]})
    assert condition.operator == "not_equal"
    with pytest.raises(ValidationError, match="is not a key path"):
        Condition.model_validate({"type": "response-json-check", "key": "a..b", "operator": "exists"})
    with pytest.raises(ValidationError, match="is not a regular expression RE2 accepts"):
        Condition.model_validate({"type": "regex", "operator": "not_contains", "values": ["(a"]})
    with pytest.raises(ValidationError, match='write 200, "2xx" or "200-299"'):
        Condition.model_validate({"type": "status_code", "operator": "equal", "values": ["ok"]})


def test_new_monitor_fields_fit_their_types():
    assert MonitorSpec(name="d", type="dns", host="example.com", dns_record_type="MX",
                       dns_nameserver="127.0.0.1").dns_record_type == "MX"
    for wrong, says in (({"type": "http", "url": "http://x", "tls": "implicit"}, "tls"),
                        ({"type": "tcp", "host": "x", "port": 1, "tls": "starttls"}, "needs a mail protocol"),
                        ({"type": "dns", "host": "x", "dns_nameserver": "ns1"}, "not an IP address"),
                        ({"type": "tcp", "host": "x", "port": 1, "dns_record_type": "A"}, "only dns monitors")):
        with pytest.raises(ValidationError, match=says):
            MonitorSpec(name="n", **wrong)


def test_as_result_is_a_valid_bounded_check_result():
    outcome = Outcome("down", "x" * 5000, response_time_ms=12.5, status_code=503,
                      timings=Timings(connect_ms=1.0, total_ms=12.5), certificate=CERT,
                      failed_condition=FailedCondition("keyword", None, "contains", ("ok",), "y" * 5000))
    result = outcome.as_result("mon_1", "eu-west", "2026-11-27T01:00:00Z")
    parsed = CheckResult.model_validate(result)
    assert len(parsed.cause) == 1000 and len(parsed.failed_condition.actual) <= 201
    assert parsed.timings.total_ms == 12.5 and parsed.timings.dns_ms is None
    assert parsed.certificate.not_after == CERT.not_after and result["certificate"]["not_after"] == \
        "2026-11-28T11:06:40Z"
    with pytest.raises(ValidationError):
        CheckResult.model_validate({**result, "certificate": {**result["certificate"], "sans": ["a"] * 101}})
    with pytest.raises(ValidationError):
        CheckResult.model_validate({**result, "timings": {"total_ms": -1}})
