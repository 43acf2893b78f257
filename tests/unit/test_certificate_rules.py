"""Certificate and domain expiry rules: thresholds, registrable domains, RDAP answers (tables/certificates.py)."""
from __future__ import annotations

import pytest

from tables.certificates import (
    DAY, crossed, days_left, due_key, due_range, host_of, mark_fired, next_due, next_lookup, parse_due_key,
    parse_rdap, registrable_domain, unavailable, valid_thresholds, whole_days_left,
)

NOW = 1_800_000_000.0


def test_days_left_counts_whole_days_as_people_do() -> None:
    assert days_left(NOW + 5 * DAY, NOW) == 5
    assert whole_days_left(NOW + 4.9 * DAY, NOW) == 4
    assert whole_days_left(NOW - 0.3 * DAY, NOW) == -1


def test_a_threshold_is_crossed_at_or_below_its_days_and_fires_once_per_expiry() -> None:
    expires, fired = NOW + 20 * DAY, {}
    assert crossed([30, 14, 7, 1], expires, NOW, fired) == [30]
    mark_fired(fired, expires, [30], pos=7)
    assert crossed([30, 14, 7, 1], expires, NOW, fired) == []
    assert crossed([30, 14, 7, 1], expires, NOW + 6 * DAY, fired) == [14]   # exactly 14 days left
    assert next_due([30, 14, 7, 1], expires, fired) == expires - 14 * DAY


def test_several_crossed_at_once_are_told_nearest_first() -> None:
    expires = NOW + 5 * DAY
    assert crossed([30, 14, 7, 1], expires, NOW, {}) == [7, 14, 30]
    assert crossed([30], NOW - DAY, NOW, {}) == [30]   # expired: every threshold is crossed


def test_a_renewal_arms_every_threshold_again() -> None:
    fired: dict = {}
    mark_fired(fired, NOW + 5 * DAY, [7, 14, 30], pos=1)
    renewed = NOW + 90 * DAY
    assert crossed([30, 14, 7], renewed, NOW + 61 * DAY, fired) == [30]
    assert next_due([30, 14, 7], renewed, fired) == renewed - 30 * DAY


def test_only_the_newest_expiries_are_remembered() -> None:
    fired: dict = {}
    for n in range(5):
        mark_fired(fired, NOW + n * DAY, [1], pos=n)
    assert sorted(fired, key=float) == [str(int(NOW + n * DAY)) for n in (2, 3, 4)]


def test_nothing_left_to_fire_is_never_due() -> None:
    fired: dict = {}
    mark_fired(fired, NOW, [1, 7], pos=3)
    assert next_due([1, 7], NOW, fired) is None


@pytest.mark.parametrize("days, problem", [
    ([30, 14, 7, 1], None), ([], "give at least one threshold"), (list(range(1, 12)), "at most 10 thresholds"),
    ([0], "each threshold is 1 to 365 days"), ([366], "each threshold is 1 to 365 days"),
    ([7, 7], "thresholds must not repeat")])
def test_reminder_thresholds(days: list[int], problem: str | None) -> None:
    assert valid_thresholds(days) == problem


@pytest.mark.parametrize("spec, domain", [
    ({"url": "https://www.example.co.uk/path"}, "example.co.uk"),
    ({"url": "https://shop.example.com:8443/"}, "example.com"),
    ({"url": "https://a.b.example.github.io/"}, "example.github.io"),
    ({"host": "mail.Example.ORG."}, "example.org"),
    ({"url": "https://127.0.0.1:8443/"}, None),
    ({"url": "https://[::1]/"}, None),
    ({"host": "localhost"}, None),
    ({"host": "co.uk"}, None),
    ({"url": "https://bücher.de/"}, "xn--bcher-kva.de"),
    ({}, None),
])
def test_the_registrable_domain_of_a_monitor(spec: dict, domain: str | None) -> None:
    assert registrable_domain(host_of(spec)) == domain


RDAP_DOMAIN = {
    "objectClassName": "domain", "ldhName": "EXAMPLE.CO.UK", "status": ["client transfer prohibited", "active"],
    "events": [{"eventAction": "registration", "eventDate": "1996-08-01T00:00:00Z"},
               {"eventAction": "expiration", "eventDate": "2027-08-01T00:00:00Z"},
               {"eventAction": "last changed", "eventDate": "2025-07-01T10:00:00+01:00"}],
    "entities": [{"objectClassName": "entity", "roles": ["registrant"], "handle": "X"},
                 {"objectClassName": "entity", "roles": ["registrar"], "handle": "292",
                  "vcardArray": ["vcard", [["version", {}, "text", "4.0"], ["fn", {}, "text", "Example Registrar Ltd"]]]}],
    "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.EXAMPLE.NET."},
                    {"objectClassName": "nameserver", "ldhName": "ns2.example.net"}],
}


def test_an_rdap_domain_object_says_registrar_dates_name_servers_and_status() -> None:
    info = parse_rdap("example.co.uk", RDAP_DOMAIN, NOW)
    assert info["source"] == "rdap"
    assert info["registrar"] == "Example Registrar Ltd"
    assert info["created"] == 838857600.0 and info["expires"] == 1817078400.0
    assert info["name_servers"] == ["ns1.example.net", "ns2.example.net"]
    assert info["status"] == ["client transfer prohibited", "active"]
    assert next_lookup(info) == NOW + DAY


def test_an_rdap_answer_that_is_not_a_domain_says_so() -> None:
    info = parse_rdap("example.com", {"objectClassName": "error", "errorCode": 404}, NOW)
    assert info["source"] == "unavailable" and info["reason"]
    assert parse_rdap("example.com", {"objectClassName": "domain"}, NOW)["expires"] is None


def test_a_failed_lookup_is_tried_again_within_the_hour() -> None:
    assert next_lookup(unavailable("example.com", "timed out", NOW, failed=True)) == NOW + 3600
    assert next_lookup(unavailable("example.com", "no RDAP", NOW)) == NOW + DAY


def test_due_keys_sort_by_time() -> None:
    key = due_key(1234, "mon_a")
    assert parse_due_key(key) == (1234, "mon_a")
    low, high = due_range(1234)
    assert low <= key < high and not (low <= due_key(1235, "mon_a") < high)
