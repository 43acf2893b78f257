"""Alert subscriptions naming people: the body's rules, whom the replica says to tell, and what they are told."""
from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from engine.org_config import OrgConfig, alert_channel_key
from schemas.alert_channel import ALERT_EVENTS, AlertChannelSpec
from tables.alert_channels import told


def test_a_subscription_names_people_a_url_or_both_never_neither() -> None:
    people = AlertChannelSpec.model_validate({"name": "ops", "notify": ["team", "user:usr_1", "on-call"]})
    assert people.url is None and people.members() == ["usr_1"]
    assert "heartbeat.down" not in people.events  # the default stays what channels always got
    both = AlertChannelSpec.model_validate({"name": "ops", "url": "https://example.com/h", "notify": ["team"],
                                            "events": ["heartbeat.down", "monitor.down"]})
    assert both.events == ["heartbeat.down", "monitor.down"] and set(both.events) <= set(ALERT_EVENTS)
    for wrong in ({"name": "ops"}, {"name": "ops", "notify": []}, {"name": "ops", "notify": ["everyone"]},
                  {"name": "ops", "notify": ["user:"]}, {"name": "ops", "notify": ["team", "team"]},
                  {"name": "ops", "notify": ["user:a b"]}):
        with pytest.raises(ValidationError):
            AlertChannelSpec.model_validate(wrong)


def test_the_replica_tells_webhooks_and_people_apart() -> None:
    replica = OrgConfig()
    record = {"kind": "alert", "org_id": "org_1", "events": ["monitor.down"]}
    replica.apply(alert_channel_key("alc_old"), orjson.dumps({**record, "id": "alc_old"}))  # published before
    replica.apply(alert_channel_key("alc_people"), orjson.dumps({**record, "id": "alc_people", "webhook": False,
                                                                  "notify": ["team"]}))
    replica.apply(alert_channel_key("alc_both"), orjson.dumps({**record, "id": "alc_both", "webhook": True,
                                                                "notify": ["on-call"]}))
    assert replica.channels_for("org_1", "monitor.down") == ["alc_both", "alc_old"]
    assert replica.people_for("org_1", "monitor.down") == [("alc_both", ("on-call",)), ("alc_people", ("team",))]
    assert replica.people_for("org_1", "monitor.recovered") == []
    assert replica.people_for("org_2", "monitor.down") == []
    replica.apply(alert_channel_key("alc_both"), None)
    assert replica.channels_for("org_1", "monitor.down") == ["alc_old"]
    assert replica.people_for("org_1", "monitor.down") == [("alc_people", ("team",))]


def test_people_are_told_what_is_down_its_status_cause_and_time() -> None:
    subject, text = told("monitor.down", 1_700_000_000.0, {"monitor_id": "mon_1", "status": "down",
                                                           "previous_status": "up", "cause": "timeout"}, "Checkout")
    assert subject == "[pingstream] Checkout is down"
    assert text.splitlines() == ["Checkout is down.", "Status: up -> down", "Cause: timeout",
                                 "At: 2023-11-14T22:13:20.000Z", "Event: monitor.down"]
    subject, text = told("heartbeat.recovered", 1_700_000_000.0, {"name": "nightly backup", "status": "up"})
    assert subject == "[pingstream] nightly backup is up again" and "Status: up" in text
