"""What users get back for monitor bodies and check results: accepted values and per-field errors."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas.check_result import MAX_BATCH, CheckBatchIn, CheckResult, CheckResultIn
from schemas.monitor import Condition, MonitorPatch, MonitorSpec
from schemas.validation import InvalidInput, parse, parse_json

HTTP = {"name": "Homepage", "url": "https://example.com/health"}


def errors_of(model, data) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse(model, data)
    assert caught.value.code == "validation_error"
    assert caught.value.message == f"The request has invalid fields: {', '.join(sorted(caught.value.errors))}."
    return caught.value.errors


# -- monitors that are accepted -------------------------------------------------------------------


def test_an_http_monitor_needs_only_a_name_and_url_and_gets_defaults():
    spec = parse(MonitorSpec, HTTP)
    assert spec.type == "http"
    assert spec.method == "GET"
    assert (spec.interval_seconds, spec.timeout_seconds) == (60, 30)
    assert (spec.grace_period, spec.recovery_period) == (0, 0)
    assert spec.regions == [] and spec.conditions == [] and spec.headers == {}


@pytest.mark.parametrize("body", [
    {"name": "db", "type": "tcp", "host": "db.internal", "port": 5432},
    {"name": "dns", "type": "dns", "host": "example.com"},
    {"name": "v6", "type": "icmp", "host": "2001:db8::1"},
    {"name": "v4", "type": "udp", "host": "10.0.0.7", "port": 53},
    {"name": "mail", "type": "smtp", "host": "mx.example.com."},
], ids=["tcp", "dns", "icmp-ipv6", "udp-ipv4", "smtp-fqdn"])
def test_non_http_monitors_with_a_host_are_accepted(body):
    spec = parse(MonitorSpec, body)
    assert spec.host == body["host"]
    assert spec.url is None


def test_a_fully_specified_http_monitor_keeps_every_field():
    body = {
        **HTTP,
        "method": "POST",
        "headers": {"Accept": "application/json"},
        "body": "{}",
        "conditions": [
            {"type": "status_code", "operator": "equal", "values": [200, 204]},
            {"type": "json_path", "key": "$.status", "operator": "equal", "values": ["ok"]},
            {"type": "header", "key": "content-type", "operator": "exists"},
            {"type": "keyword", "operator": "matches", "values": ["^OK( .*)?$"]},
        ],
        "regions": ["eu-west", "us-east-1"],
        "grace_period": 120,
        "recovery_period": 60,
        "maintenance_cron_expression": "0 3 * * sun",
        "maintenance_duration": 3600,
        "interval_seconds": 30,
        "timeout_seconds": 10,
    }
    spec = parse(MonitorSpec, body)
    assert spec.model_dump(exclude_unset=True, mode="json") == body


# -- monitors that are refused, with the field that is wrong --------------------------------------


@pytest.mark.parametrize("change, field, says", [
    ({"name": ""}, "name", "at least 1 character"),
    ({"name": "x" * 256}, "name", "at most 255"),
    ({"regions": ["EU-West"]}, "regions", "'EU-West' is not a region code"),
    ({"regions": ["eu", "eu"]}, "regions", "must not repeat"),
    ({"grace_period": -1}, "grace_period", "greater than or equal to 0"),
    ({"grace_period": 86401}, "grace_period", "less than or equal to 86400"),
    ({"recovery_period": "soon"}, "recovery_period", "valid integer"),
    ({"maintenance_cron_expression": "0 3 * *", "maintenance_duration": 600},
     "maintenance_cron_expression", "not a 5-field cron expression"),
    ({"maintenance_cron_expression": "0 3 * * sun *", "maintenance_duration": 600},
     "maintenance_cron_expression", "not a 5-field cron expression"),
    ({"maintenance_cron_expression": "61 3 * * *", "maintenance_duration": 600},
     "maintenance_cron_expression", "not a 5-field cron expression"),
    ({"maintenance_cron_expression": "0 3 * * *", "maintenance_duration": 59},
     "maintenance_duration", "greater than or equal to 60"),
    ({"port": 70000}, "port", "less than or equal to 65535"),
    ({"method": "FETCH"}, "method", "Input should be"),
    ({"type": "ftp"}, "type", "Input should be"),
    ({"interval_seconds": 5}, "interval_seconds", "greater than or equal to 10"),
    ({"timeout_seconds": 121}, "timeout_seconds", "less than or equal to 120"),
    ({"favourite_colour": "blue"}, "favourite_colour", "Extra inputs are not permitted"),
])
def test_an_invalid_field_is_reported_under_its_own_name(change, field, says):
    errors = errors_of(MonitorSpec, {**HTTP, **change})
    assert list(errors) == [field]
    assert says in errors[field]


@pytest.mark.parametrize("condition, field, says", [
    ({"type": "status_code", "operator": "equal"}, "conditions.0", "operator 'equal' needs at least one value"),
    ({"type": "json_path", "operator": "exists"}, "conditions.0", "a json_path condition needs a 'key'"),
    ({"type": "header", "operator": "equal", "values": ["x"]}, "conditions.0", "a header condition needs a 'key'"),
    ({"type": "keyword", "operator": "matches", "values": ["ok", "(unclosed"]},
     "conditions.0", "'(unclosed' is not a regular expression RE2 accepts"),
    ({"type": "latency", "operator": "less", "values": [100]}, "conditions.0.type", "Input should be"),
    ({"type": "status_code", "operator": "between", "values": [200]}, "conditions.0.operator", "Input should be"),
    ({"type": "status_code", "operator": "equal", "values": [200], "negate": True},
     "conditions.0.negate", "Extra inputs are not permitted"),
])
def test_an_invalid_condition_is_reported_under_its_position(condition, field, says):
    ok = {"type": "status_code", "operator": "equal", "values": [200]}
    errors = errors_of(MonitorSpec, {**HTTP, "conditions": [condition, ok]})
    assert list(errors) == [field]
    assert says in errors[field]


def test_a_bad_second_condition_names_index_one():
    ok = {"type": "status_code", "operator": "equal", "values": [200]}
    errors = errors_of(MonitorSpec, {**HTTP, "conditions": [ok, {"type": "keyword", "operator": "contains"}]})
    assert list(errors) == ["conditions.1"]


@pytest.mark.parametrize("operator", ["exists", "not_exists"])
def test_exists_operators_need_no_values(operator):
    condition = Condition.model_validate({"type": "header", "key": "etag", "operator": operator})
    assert condition.values == []


def test_every_invalid_field_is_reported_at_once():
    errors = errors_of(MonitorSpec, {**HTTP, "name": "", "grace_period": -5, "regions": ["A"], "extra": 1})
    assert set(errors) == {"name", "grace_period", "regions", "extra"}


# Rules spanning several fields name the field to fix.
@pytest.mark.parametrize("body, field, says", [
    ({"name": "x"}, "url", "an http monitor needs a 'url'"),
    ({"name": "x", "url": "example.com/health"}, "url", "must be an absolute http:// or https:// URL"),
    ({"name": "x", "url": "ftp://example.com/file"}, "url", "must be an absolute http:// or https:// URL"),
    ({"name": "x", "url": "https://"}, "url", "must be an absolute http:// or https:// URL"),
    ({"name": "x", "type": "dns"}, "host", "a dns monitor needs a 'host'"),
    ({"name": "x", "type": "dns", "url": "https://example.com"}, "host", "a dns monitor needs a 'host'"),
    ({"name": "x", "type": "icmp", "host": "not a host"}, "host", "is not a host name or IP address"),
    ({"name": "x", "type": "tcp", "host": "db.internal"}, "port", "a tcp monitor needs a 'port'"),
    ({"name": "x", "type": "udp", "host": "10.0.0.1"}, "port", "a udp monitor needs a 'port'"),
    ({**HTTP, "interval_seconds": 30, "timeout_seconds": 30}, "timeout_seconds", "must be shorter than interval_seconds"),
    ({**HTTP, "interval_seconds": 10}, "timeout_seconds", "must be shorter than interval_seconds"),
    ({**HTTP, "maintenance_cron_expression": "0 3 * * sun"}, "maintenance_duration", "go together"),
    ({**HTTP, "maintenance_duration": 3600}, "maintenance_duration", "go together"),
])
def test_rules_across_fields_name_the_field_to_fix(body, field, says):
    errors = errors_of(MonitorSpec, body)
    assert list(errors) == [field]
    assert says in errors[field]


def test_an_http_url_with_a_port_and_query_is_accepted():
    assert parse(MonitorSpec, {**HTTP, "url": "http://10.0.0.1:8080/health?deep=1"}).url.endswith("deep=1")


# -- PATCH: merged with the stored monitor, then validated whole ----------------------------------


STORED = MonitorSpec.model_validate({
    **HTTP, "body": "ping", "regions": ["eu"], "grace_period": 60,
    "maintenance_cron_expression": "0 3 * * *", "maintenance_duration": 600,
}).model_dump(mode="json")


def test_a_patch_changes_only_the_fields_it_names():
    merged = parse(MonitorPatch, {"name": "Renamed", "grace_period": 300}).merged_with(STORED)
    spec = MonitorSpec.model_validate(merged)
    assert spec.name == "Renamed"
    assert spec.grace_period == 300
    assert spec.url == STORED["url"]
    assert spec.regions == ["eu"]
    assert spec.body == "ping"


def test_null_in_a_patch_clears_the_field_back_to_its_default():
    merged = parse(MonitorPatch, {"body": None, "regions": None}).merged_with(STORED)
    assert "body" not in merged and "regions" not in merged
    spec = MonitorSpec.model_validate(merged)
    assert spec.body is None
    assert spec.regions == []


def test_an_empty_patch_keeps_the_monitor_as_it_is():
    merged = parse(MonitorPatch, {}).merged_with(STORED)
    assert MonitorSpec.model_validate(merged).model_dump(mode="json") == STORED


def test_a_patch_switching_type_must_bring_what_the_new_type_needs():
    patch = parse(MonitorPatch, {"type": "tcp", "url": None, "host": "db.internal", "port": 5432})
    spec = MonitorSpec.model_validate(patch.merged_with(STORED))
    assert (spec.type, spec.host, spec.port, spec.url) == ("tcp", "db.internal", 5432, None)

    incomplete = parse(MonitorPatch, {"type": "tcp", "host": "db.internal"}).merged_with(STORED)
    assert errors_of(MonitorSpec, incomplete) == {"port": "a tcp monitor needs a 'port'"}


def test_clearing_half_of_a_maintenance_window_is_refused():
    merged = parse(MonitorPatch, {"maintenance_duration": None}).merged_with(STORED)
    assert "go together" in errors_of(MonitorSpec, merged)["maintenance_duration"]


def test_a_patch_value_of_the_wrong_type_is_reported_once_merged():
    merged = parse(MonitorPatch, {"grace_period": "a while"}).merged_with(STORED)
    assert list(errors_of(MonitorSpec, merged)) == ["grace_period"]


def test_a_patch_with_an_unknown_field_is_refused():
    assert list(errors_of(MonitorPatch, {"nmae": "typo"})) == ["nmae"]


def test_merging_ignores_stored_keys_that_are_not_spec_fields():
    merged = parse(MonitorPatch, {"name": "n"}).merged_with({**STORED, "id": "mon_1", "paused": True})
    assert "id" not in merged and "paused" not in merged


# -- check results --------------------------------------------------------------------------------


RESULT = {"monitor_id": "mon_1", "status": "up", "checked_at": 1_700_000_000}
T = datetime(2026, 11, 23, 10, 15, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("checked_at, expected", [
    ("2026-11-23T10:15:00Z", T),
    ("2026-11-23T10:15:00.250Z", T + 0.25),
    ("2026-11-23T12:15:00+02:00", T),
    ("2026-11-23T05:15:00-05:00", T),
    ("2026-11-23T10:15:00", T),  # naive: read as UTC
    ("2026-11-23T10:15:00+00:00", T),
    (T, T),
    (int(T), T),
    (1_700_000_000.5, 1_700_000_000.5),
], ids=["Z", "Z-millis", "plus-offset", "minus-offset", "naive-is-utc", "explicit-utc", "epoch-float",
        "epoch-int", "epoch-fraction"])
def test_checked_at_becomes_epoch_seconds(checked_at, expected):
    result = parse(CheckResult, {**RESULT, "checked_at": checked_at})
    assert result.checked_at == pytest.approx(expected, abs=1e-6)


def test_a_result_gets_default_region_and_optional_fields():
    result = parse(CheckResult, RESULT)
    assert result.region == "default"
    assert (result.id, result.response_time_ms, result.status_code, result.cause) == (None, None, None, None)


@pytest.mark.parametrize("change, field, says", [
    ({"status": "degraded"}, "status", "Input should be 'up' or 'down'"),
    ({"response_time_ms": -1}, "response_time_ms", "greater than or equal to 0"),
    ({"response_time_ms": 3_600_001}, "response_time_ms", "less than or equal to 3600000"),
    ({"status_code": 1000}, "status_code", "less than or equal to 999"),
    ({"checked_at": "yesterday"}, "checked_at", "'yesterday' is not an ISO-8601 time"),
    ({"checked_at": "1700000000"}, "checked_at", "is not an ISO-8601 time"),
    ({"monitor_id": ""}, "monitor_id", "at least 1 character"),
    ({"region": "r" * 33}, "region", "at most 32"),
    ({"latency": 12}, "latency", "Extra inputs are not permitted"),
])
def test_an_invalid_result_names_the_field(change, field, says):
    errors = errors_of(CheckResult, {**RESULT, **change})
    assert list(errors) == [field]
    assert says in errors[field]


@pytest.mark.parametrize("missing", ["monitor_id", "status", "checked_at"])
def test_a_result_without_a_required_field_is_refused(missing):
    body = {key: value for key, value in RESULT.items() if key != missing}
    assert errors_of(CheckResult, body) == {missing: "Field required"}


def test_api_results_may_leave_checked_at_out():
    assert parse(CheckResultIn, {"monitor_id": "mon_1", "status": "down"}).checked_at is None


@pytest.mark.parametrize("size, accepted", [(1, True), (MAX_BATCH, True), (MAX_BATCH + 1, False), (0, False)])
def test_a_batch_holds_one_to_a_thousand_results(size, accepted):
    body = {"results": [{"monitor_id": "mon_1", "status": "up"}] * size}
    if accepted:
        assert len(parse(CheckBatchIn, body).results) == size
    else:
        assert list(errors_of(CheckBatchIn, body)) == ["results"]


def test_a_bad_result_in_a_batch_is_named_by_its_index():
    body = {"results": [{"monitor_id": "mon_1", "status": "up"}, {"monitor_id": "mon_1", "status": "meh"}]}
    assert list(errors_of(CheckBatchIn, body)) == ["results.1.status"]


# -- JSON bodies ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"", b"{", b"{'single': 'quotes'}", b"[1, 2,]", b"\xff\xfe"])
def test_malformed_json_is_its_own_error(raw):
    with pytest.raises(InvalidInput) as caught:
        parse_json(raw)
    assert caught.value.code == "malformed_json"
    assert caught.value.errors == {}
    assert "not valid JSON" in caught.value.message


def test_well_formed_json_is_decoded():
    assert parse_json(b'{"results": [1, 2.5, "x", null]}') == {"results": [1, 2.5, "x", None]}
