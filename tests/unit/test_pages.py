"""Pages' pure rules: which messages fire when, once; acknowledge links."""
from __future__ import annotations

from tables import incidents as book
from tables.pages import ack_token, acknowledge, fire, new_page, next_due, open_page, read_ack_token

ADA = {"user_id": "u-ada", "name": "Ada", "email": "ada@example.com"}
BOB = {"user_id": "u-bob", "name": "Bob", "email": "bob@example.com"}
T0 = 1_700_000_000.0


def page(**spec: object) -> dict:
    return new_page("pg_1", "org", {"subject": "down", **spec}, T0, "u-root")


def labels(messages: list) -> list[tuple[str, str]]:
    return [(m.user_id, m.label) for m in messages]


def test_a_page_repeats_once_per_interval_and_a_tick_applied_again_asks_for_nothing_new() -> None:
    record = page(repeat_interval_s=30)
    assert labels(open_page(record, [ADA])) == [("u-ada", "s0")]
    assert next_due(record) == T0 + 30
    assert fire(record, T0 + 29.9, lambda step: []) == []
    first = fire(record, T0 + 30.2, lambda step: [])
    assert labels(first) == [("u-ada", "r1")] and first[0].message_id == "page:pg_1:u-ada:r1"
    assert fire(record, T0 + 30.4, lambda step: []) == []  # the same tick again, or a later one: nothing new
    assert next_due(record) == T0 + 60


def test_escalation_reaches_the_next_person_after_the_delay_and_repeat_page_tells_the_first_again() -> None:
    record = page(repeat_interval_s=300, escalation=[{"delay_seconds": 60, "target_user_id": "u-bob",
                                                       "repeat_page": True}])
    open_page(record, [ADA])
    assert fire(record, T0 + 59, lambda step: [BOB]) == []
    fired = fire(record, T0 + 61, lambda step: [BOB])
    assert sorted(labels(fired)) == [("u-ada", "s1"), ("u-bob", "s1")]
    assert [r["step"] for r in record["recipients"]] == [0, 1]
    assert next_due(record) == T0 + 300


def test_a_recipient_gets_at_most_one_message_per_repeat_interval() -> None:
    record = page(repeat_interval_s=60, escalation=[{"delay_seconds": 50, "target_user_id": "u-bob"}])
    open_page(record, [ADA])
    fire(record, T0 + 50, lambda step: [BOB])  # Bob paged at +50
    assert labels(fire(record, T0 + 60, lambda step: [BOB])) == [("u-ada", "r1")]  # Bob's +50 is recent
    assert sorted(labels(fire(record, T0 + 120, lambda step: [BOB]))) == [("u-ada", "r2"), ("u-bob", "r2")]


def test_a_worker_away_for_several_intervals_sends_only_the_latest_repeat() -> None:
    record = page(repeat_interval_s=30)
    open_page(record, [ADA])
    assert labels(fire(record, T0 + 100, lambda step: [])) == [("u-ada", "r3")]


def test_acknowledged_or_expired_pages_fire_nothing() -> None:
    record = page(repeat_interval_s=30, expires_minutes=1)
    open_page(record, [ADA])
    assert fire(record, T0 + 61, lambda step: []) == [] and record["status"] == "expired"
    assert next_due(record) is None
    acked = page(repeat_interval_s=30)
    open_page(acked, [ADA])
    assert acknowledge(acked, "u-ada", T0 + 5, "on it", "link")
    assert not acknowledge(acked, "u-ada", T0 + 6, None, None)
    assert fire(acked, T0 + 31, lambda step: []) == [] and next_due(acked) is None


def test_an_acknowledge_link_names_its_page_until_it_expires_and_cannot_be_forged() -> None:
    token = ack_token("s" * 32, "org", "pg_1", "u-ada", T0 + 60)
    assert read_ack_token("s" * 32, token, T0) == ("org", "pg_1", "u-ada")
    assert read_ack_token("s" * 32, token, T0 + 61) == "expired"
    assert read_ack_token("t" * 32, token, T0) == "invalid"
    payload, _, signature = token.partition(".")
    assert read_ack_token("s" * 32, payload[:-2] + "AA." + signature, T0) == "invalid"


def test_acknowledging_an_incidents_page_acknowledges_an_open_incident_once() -> None:
    opened = {"id": "inc_1-1", "org_id": "org", "status": "investigating", "source": "monitor", "entity_id": "m",
              "team_id": None}
    signal = {"at": T0, "acknowledged_by": "u-bo", "note": "on it", "method": "link"}
    outcome = book.acknowledge(opened, signal)
    assert outcome.incident["status"] == "acknowledged" and outcome.incident["acknowledged_by"] == "u-bo"
    assert outcome.timeline[0]["type"] == "acknowledged" and outcome.timeline[0]["actor"] == {"type": "user",
                                                                                            "id": "u-bo"}
    assert book.acknowledge(outcome.incident, signal).incident is None                  # once
    assert book.acknowledge({**opened, "status": "resolved"}, signal).incident is None  # resolved meanwhile
    assert book.page_id_of("inc_1-1") == book.page_id_of("inc_1-1") != book.page_id_of("inc_1-2")
