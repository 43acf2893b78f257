"""Paging groups: whom a group reaches, and who may be in one (tables/paging_groups.py)."""
from __future__ import annotations

from tables.paging_groups import group_view, people, strangers

MEMBERS = {"ana": {"name": "Ana", "email": "ana@example.com", "role": "root"},
           "bo": {"name": "Bo", "email": "bo@example.com", "role": "user"}}


def test_a_group_reaches_its_members_still_in_the_team_in_its_order() -> None:
    group = {"id": "grp_1", "name": "db", "members": ["bo", "left", "ana"], "created_at": 0.0, "updated_at": 1.0}
    assert people(group, MEMBERS) == [{"user_id": "bo", "name": "Bo", "email": "bo@example.com"},
                                      {"user_id": "ana", "name": "Ana", "email": "ana@example.com"}]
    view = group_view(group, MEMBERS)
    assert view["members"] == ["bo", "left", "ana"] and [p["user_id"] for p in view["people"]] == ["bo", "ana"]
    assert view["updated_at"] == "1970-01-01T00:00:01.000Z"


def test_only_members_of_the_team_may_be_in_a_group() -> None:
    assert strangers(["ana", "bo"], MEMBERS) == []
    assert strangers(["zed", "ana", "eve"], MEMBERS) == ["eve", "zed"]
