"""On-call schedules through the public API: a team's and a person's own, who is on call, previews, tenancy."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.integration.accounts import Person, invite, person
from tests.integration.cluster import Client, Cluster
from tests.mailbox import Mailbox


@dataclass
class Team:
    id: str
    ada: Person      # root
    bo: Person       # a user
    cy: Person       # a manager


@pytest.fixture(scope="module")
def team(cluster: Cluster, smtp_server: Mailbox) -> Team:
    ada = person(cluster, smtp_server, "ada")
    return Team(ada.team_id, ada, invite(cluster, smtp_server, ada, ada.team_id, "bo", "user"),
                invite(cluster, smtp_server, ada, ada.team_id, "cy", "manager"))


def rotation(team: Team) -> dict:
    """Ada and Bo take daily turns at 09:00 Berlin time from 5 January 2026; Cy covers one afternoon."""
    return {"name": "Primary", "time_zone": "Europe/Berlin",
            "layers": [{"name": "daily", "members": [team.ada.user_id, team.bo.user_id], "rotation_unit": "days",
                        "handoff_time": "09:00", "start_date": "2026-01-05"}],
            "overrides": [{"id": "dentist", "user_id": team.cy.user_id, "start": "2026-03-10T10:00",
                           "end": "2026-03-10T14:00"}]}


def on_call(client: Client, team: Team, at: str) -> list[tuple[str, str]]:
    answer = client.get(f"/v1/team/{team.id}/on-call?at={at}")
    assert answer.status == 200, answer.body
    return [(row["user_id"], row["source"]) for row in answer.body["data"]["on_call"]]


def test_a_team_schedule_says_who_is_on_call_and_previews_its_shifts(team: Team) -> None:
    ada, path = team.ada.client, f"/v1/team/{team.id}/schedules"
    created = ada.post(path, rotation(team))
    assert created.status == 201, created.body
    schedule = created.body["data"]
    assert schedule["scope"] == "team" and schedule["time_zone"] == "Europe/Berlin"
    # 2026-03-10 is 64 days after the first handoff: turn 64 is Ada's, turn 63 (before 09:00) Bo's
    assert on_call(ada, team, "2026-03-10T07:59:00Z") == [(team.bo.user_id, "layer")]
    assert on_call(ada, team, "2026-03-10T08:00:00Z") == [(team.ada.user_id, "layer")]
    answer = team.bo.client.get(f"/v1/team/{team.id}/on-call?at=2026-03-10T12:00:00%2B01:00").body["data"]
    [row] = answer["on_call"]
    assert (row["user_id"], row["source"], row["override"]["id"]) == (team.cy.user_id, "override", "dentist")
    assert (row["start"], row["end"]) == ("2026-03-10T10:00:00+01:00", "2026-03-10T14:00:00+01:00")
    assert row["schedule"] == {"id": schedule["id"], "name": "Primary", "scope": "team"}
    assert row["email"] == team.cy.email and answer["at"] == "2026-03-10T11:00:00.000Z"

    preview = ada.get(f"{path}/{schedule['id']}/preview?start=2026-03-09T11:00:00Z&days=2")
    assert preview.status == 200, preview.body
    shifts = [(s["user_id"], s["source"], s["start"][5:16], s["end"][5:16]) for s in preview.body["data"]["shifts"]]
    assert shifts == [(team.bo.user_id, "layer", "03-09T12:00", "03-10T09:00"),
                      (team.ada.user_id, "layer", "03-10T09:00", "03-10T10:00"),
                      (team.cy.user_id, "override", "03-10T10:00", "03-10T14:00"),
                      (team.ada.user_id, "layer", "03-10T14:00", "03-11T09:00"),
                      (team.bo.user_id, "layer", "03-11T09:00", "03-11T12:00")]
    fortnight = ada.get(f"{path}/{schedule['id']}/preview").body["data"]["shifts"]
    assert 14 <= len(fortnight) <= 15 and sum(s["hours"] for s in fortnight) == pytest.approx(14 * 24, abs=1.01)

    changed = ada.request("PUT", f"{path}/{schedule['id']}", {**rotation(team), "name": "Primary (EU)",
                                                             "overrides": []})
    assert changed.status == 200 and changed.body["data"]["name"] == "Primary (EU)"
    assert on_call(ada, team, "2026-03-10T11:00:00Z") == [(team.ada.user_id, "layer")]
    listed = team.bo.client.get(path).body
    assert [s["id"] for s in listed["data"]] == [schedule["id"]] and listed["meta"]["total"] == 1
    assert team.bo.client.request("PUT", f"{path}/{schedule['id']}", rotation(team)).status == 403  # a user reads
    assert ada.delete(f"{path}/{schedule['id']}").status == 204
    assert ada.get(f"{path}/{schedule['id']}").status == 404
    assert on_call(ada, team, "2026-03-10T11:00:00Z") == []


def test_a_schedule_that_cannot_work_is_refused_with_the_field_to_fix(team: Team) -> None:
    ada, path = team.ada.client, f"/v1/team/{team.id}/schedules"

    def refused(spec: dict) -> dict:
        answer = ada.post(path, {"name": "broken", **spec})
        assert answer.status == 422, answer.body
        return answer.body["errors"]

    assert "IANA" in refused({"time_zone": "Europe/Atlantis"})["time_zone"]
    entry = {"user_id": team.ada.user_id, "start_date": "2026-05-10", "end_date": "2026-05-01"}
    assert "before the start" in refused({"entries": [entry]})["entries.0.end_date"]
    override = {"user_id": team.ada.user_id, "start": "2026-05-02T10:00", "end": "2026-05-02T09:00"}
    assert "ends after it starts" in refused({"overrides": [override]})["overrides.0.end"]
    assert "start_time" in " ".join(refused({"entries": [{**entry, "end_date": None, "start_time": "24:00"}]}))
    stranger = refused({"layers": [{"members": [team.ada.user_id, "usr_nobody"], "start_date": "2026-01-01"}]})
    assert "usr_nobody" in stranger["user_id"]
    assert ada.get(f"/v1/team/{team.id}/on-call?at=yesterday").status == 422
    assert ada.get(f"/v1/team/{team.id}/on-call?at=2500-01-01").status == 422
    assert ada.get(f"{path}/sch_{'0' * 20}/preview").status == 404
    assert ada.get(f"{path}/{'x' * 10}").status == 404


def test_a_persons_own_schedule_names_only_them_and_counts_for_the_team(team: Team) -> None:
    bo, mine = team.bo.client, "/v1/account/schedules"
    weekends = {"name": "My weekends", "time_zone": "America/New_York",
                "entries": [{"user_id": team.bo.user_id, "start_date": "2026-01-01", "week_days": [6, 7],
                             "start_time": "08:00", "end_time": "20:00"}]}
    created = bo.post(mine, weekends)
    assert created.status == 201, created.body
    own = created.body["data"]
    assert (own["scope"], own["owner_id"]) == ("account", team.bo.user_id)
    on_behalf = bo.post(mine, {**weekends, "entries": [{**weekends["entries"][0], "user_id": team.ada.user_id}]})
    assert on_behalf.status == 422 and team.ada.user_id in on_behalf.body["errors"]["user_id"]
    # Saturday 2026-03-14 12:00 in New York
    answer = team.ada.client.get(f"/v1/team/{team.id}/on-call?at=2026-03-14T16:00:00Z").body["data"]["on_call"]
    assert [(r["user_id"], r["schedule"]["scope"]) for r in answer] == [(team.bo.user_id, "account")]
    assert [s["id"] for s in bo.get(mine).body["data"]] == [own["id"]]
    assert team.ada.client.get(mine).body["data"] == []                      # Ada has none of her own
    assert team.ada.client.get(f"{mine}/{own['id']}").status == 404          # and cannot reach Bo's
    assert team.ada.client.delete(f"{mine}/{own['id']}").status == 404
    assert team.ada.client.get(f"/v1/team/{team.id}/schedules/{own['id']}").status == 404
    assert bo.get(f"{mine}/{own['id']}/preview?days=7").body["data"]["shifts"] is not None
    assert bo.delete(f"{mine}/{own['id']}").status == 204


def test_another_team_can_neither_read_nor_change_the_schedules(cluster: Cluster, team: Team) -> None:
    created = team.ada.client.post(f"/v1/team/{team.id}/schedules", rotation(team)).body["data"]
    other_id, other_key = cluster.new_org(name="other team")
    other = cluster.client(other_key)
    theirs = f"/v1/team/{team.id}/schedules"
    assert other.get(theirs).status == 404
    assert other.get(f"{theirs}/{created['id']}").status == 404
    assert other.get(f"/v1/team/{team.id}/on-call").status == 404
    assert other.delete(f"{theirs}/{created['id']}").status == 404
    # through its own team's path, the schedule's id names nothing either
    assert other.get(f"/v1/team/{other_id}/schedules/{created['id']}").status == 404
    assert other.request("PUT", f"/v1/team/{other_id}/schedules/{created['id']}", rotation(team)).status == 404
    assert other.delete(f"/v1/team/{other_id}/schedules/{created['id']}").status == 404
    assert other.get(f"/v1/team/{other_id}/schedules").body["data"] == []
    naming_ours = other.post(f"/v1/team/{other_id}/schedules", rotation(team))
    assert naming_ours.status == 422 and team.ada.user_id in naming_ours.body["errors"]["user_id"]
    assert team.ada.client.get(f"{theirs}/{created['id']}").body["data"]["name"] == "Primary"
