"""The whole path a person hears of an outage by, through the public API of the shared cluster: a monitor goes
down → an incident → the on-call person's email and webhook get a page → nobody acknowledges → the escalation
reaches a second person after its delay → the acknowledge link stops the repeats and acknowledges the incident →
recovery resolves the incident and tells both."""
from __future__ import annotations

import time
from datetime import datetime

from tests.integration.accounts import invite, person
from tests.integration.cluster import Cluster, wait_for
from tests.integration.paging import ACK_PATH, email_channel, pages_seen, webhook_channel
from tests.integration.test_incidents import incident, incidents, new_ruleset
from tests.integration.test_monitors import create, post_results
from tests.mailbox import Mailbox
from tests.receivers import HttpReceiver


def test_a_monitor_down_pages_the_on_call_person_escalates_and_the_link_acknowledges_the_incident(
        cluster: Cluster, smtp_server: Mailbox, http_receiver: HttpReceiver) -> None:
    ada = person(cluster, smtp_server, "ada")                          # root; the second in line
    bo = invite(cluster, smtp_server, ada, ada.team_id, "bo", "user")  # on call
    schedule = ada.client.post(f"/v1/team/{ada.team_id}/schedules", {
        "name": "Primary", "time_zone": "UTC", "layers": [{"name": "all week", "members": [bo.user_id],
                                                           "rotation_unit": "days", "handoff_time": "00:00",
                                                           "start_date": "2026-01-01"}]})
    assert schedule.status == 201, schedule.body
    email_channel(bo, smtp_server)
    bo_hook, ada_hook = webhook_channel(bo, http_receiver), webhook_channel(ada, http_receiver)
    api = ada.client
    new_ruleset(api, {"rule_type": "state-change", "name": "Monitors down", "urgency": "critical",
                      "conditions": [{"key": "event", "operator": "equal", "values": ["monitor.down"]}],
                      "paging": {"repeat_interval_s": 2,
                                 "escalation": [{"delay_seconds": 3, "target_user_id": ada.user_id}]}})
    monitor = create(api, regions=[])
    now = time.time()
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 30}])
    post_results(api, [{"monitor_id": monitor["id"], "status": "down", "cause": "connection refused",
                        "checked_at": now - 20}])
    opened = wait_for("the monitor going down to open an incident",
                      lambda: incidents(api, f"?monitor_id={monitor['id']}"), 20)[0]

    # Bo, on call, hears it by email and webhook; nobody acknowledges: it repeats, and reaches Ada after 3 s
    mail = smtp_server.wait_for_mail(bo.email)
    assert "Homepage is down" in mail and "/v1/pages/ack/" in mail
    wait_for("a repeat to Bo and the escalation to Ada",
             lambda: len(pages_seen(http_receiver, bo_hook)) >= 2 and pages_seen(http_receiver, ada_hook), 30)
    first, repeat = pages_seen(http_receiver, bo_hook)[:2]
    escalated = pages_seen(http_receiver, ada_hook)[0]
    assert first["subject"] == "[critical] Homepage is down" and first["data"]["incident_id"] == opened["id"]
    assert (first["data"]["label"], repeat["data"]["label"], escalated["data"]["label"]) == ("s0", "r1", "s1")
    for message, due in ((repeat, 2), (escalated, 3)):  # each timer fired on time (bench.pages: p99 0.42 s;
        arrived = next(s.at for s in http_receiver.requests if s.body and message["id"].encode() in s.body)
        assert abs(message["data"]["due_at"] - (first["data"]["due_at"] + due)) < 0.01  # here the margin is
        assert 0 <= arrived - message["data"]["due_at"] < 2.0, (message["data"], arrived)  # for a loaded machine
    page_id = first["data"]["page_id"]
    shown = bo.client.get(f"/v1/pages/{page_id}").body["data"]
    assert shown["incident_id"] == opened["id"] and shown["first_sent_at"] and shown["acknowledged_at"] is None
    assert [r["user_id"] for r in shown["recipients"]] == [bo.user_id, ada.user_id]

    # Bo's link acknowledges without signing in: the page and the incident, by him; then no more repeats
    link = ACK_PATH.search(first["link"]).group(0)
    assert cluster.client(None).get(link[:-3] + "abc").status == 404        # a forged link
    acked = cluster.client(None).get(link)
    assert acked.status == 200, acked.body
    assert (acked.body["data"]["status"], acked.body["data"]["method"]) == ("acknowledged", "link")
    assert acked.body["data"]["acknowledged_by"] == bo.user_id and acked.body["data"]["acknowledged_at"]
    assert cluster.client(None).get(link).body["data"]["acknowledged_at"] == acked.body["data"]["acknowledged_at"]
    acknowledged = wait_for("the incident acknowledged",
                            lambda: (i := incident(api, opened["id"]))["status"] == "acknowledged" and i, 20)
    assert acknowledged["acknowledged_by"] == bo.user_id
    entry = acknowledged["timeline"][-1]
    assert (entry["type"], entry["actor"], entry["method"]) == ("acknowledged", {"type": "user", "id": bo.user_id},
                                                                "link")
    acknowledged_at = datetime.fromisoformat(acked.body["data"]["acknowledged_at"].replace("Z", "+00:00")).timestamp()
    time.sleep(2.5)  # longer than the repeat interval: a repeat would have come by now
    late = [m["data"] for hook in (bo_hook, ada_hook) for m in pages_seen(http_receiver, hook)
            if m["data"]["due_at"] > acknowledged_at + 0.01]
    assert not late, late                                                   # nothing due after the acknowledgement

    # recovery resolves the incident, and both hear it
    post_results(api, [{"monitor_id": monitor["id"], "status": "up", "checked_at": now - 10}])
    wait_for("the recovery to resolve it", lambda: incident(api, opened["id"])["status"] == "resolved", 20)
    wait_for("both told it is resolved", lambda: all(
        [m["data"]["kind"] for m in pages_seen(http_receiver, hook)][-1] == "resolved" for hook in (bo_hook, ada_hook)),
             20)
    mails = [smtp_server.wait_for_mail(bo.email) for _ in range(len(pages_seen(http_receiver, bo_hook)) - 1)]
    assert "Subject: [resolved] Homepage is down" in mails[-1]       # by email too, after each repeat
    sent = [m["id"] for hook in (bo_hook, ada_hook) for m in pages_seen(http_receiver, hook)]
    assert len(sent) == len(set(sent))                                      # nothing sent twice
    assert api.get(f"/v1/pages/{page_id}").body["data"]["status"] == "acknowledged"
