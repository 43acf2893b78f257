"""Codes, log-in lockout and the member rules: the pure logic of accounts and teams."""
from __future__ import annotations

from tables.accounts import (CODE_ATTEMPTS, CODE_TTL, LOGIN_FAILURES, LOGIN_WINDOW, check_code, code_record,
                             locked_until)
from tables.teams import member_change_refusal


def test_a_code_works_once_within_its_time_and_tries() -> None:
    record = code_record("123456", "usr_1", now=1000.0)
    assert check_code(record, "123456", "usr_1", now=1000.0 + CODE_TTL - 1) == ("ok", None)
    assert check_code(record, "123456", "usr_1", now=1000.0 + CODE_TTL + 1) == ("expired", None)
    assert check_code(record, "123456", "usr_2", now=1001.0)[0] == "wrong"  # salted by the account
    assert check_code(None, "123456", "usr_1", now=1001.0) == ("none", None)


def test_wrong_codes_use_up_the_code() -> None:
    record = code_record("123456", "usr_1", now=0.0)
    for attempt in range(1, CODE_ATTEMPTS):
        outcome, record = check_code(record, "000000", "usr_1", now=1.0)
        assert outcome == "wrong" and record["attempts"] == attempt
    assert check_code(record, "000000", "usr_1", now=1.0) == ("wrong", None)  # the last try voids it


def test_log_ins_lock_after_enough_failures_until_the_oldest_leaves_the_window() -> None:
    failures = [100.0 + n for n in range(LOGIN_FAILURES - 1)]
    assert locked_until(failures, now=200.0) is None
    failures.append(150.0)
    assert locked_until(failures, now=200.0) == 100.0 + LOGIN_WINDOW
    assert locked_until(failures, now=100.0 + LOGIN_WINDOW + 1) is None  # the oldest has left the window


def team(**roles: str) -> dict:
    return {"members": {user: {"role": role, "email": f"{user}@x.io", "name": user, "joined_at": 0}
                        for user, role in roles.items()}}


def test_member_rules() -> None:
    t = team(ann="root", max="manager", ulf="user", uma="user")
    assert member_change_refusal(t, "max", "manager", "ulf", "manager") is None      # managers manage users
    assert member_change_refusal(t, "max", "manager", "ulf", None) is None
    assert member_change_refusal(t, "max", "manager", "ann", "user")[1] == "insufficient_role"  # not roots
    assert member_change_refusal(t, "max", "manager", "ulf", "root")[1] == "insufficient_role"  # nor make one
    assert member_change_refusal(t, "ulf", "user", "uma", None)[1] == "insufficient_role"
    assert member_change_refusal(t, "ulf", "user", "ulf", None) is None              # anyone may leave
    assert member_change_refusal(t, "ulf", "user", "ulf", "manager")[1] == "insufficient_role"
    assert member_change_refusal(t, "ann", "root", "ann", None)[1] == "last_root"    # a team keeps a root
    assert member_change_refusal(t, "ann", "root", "ann", "manager")[1] == "last_root"
    assert member_change_refusal(t, "ann", "root", "max", "root") is None
    assert member_change_refusal(t, "ann", "root", "nobody", None)[1] == "not_found"
