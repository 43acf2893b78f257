"""A time in a check result or check-in must be one the tables can key and show: 1970 to 9999.

A result dated before 1970 made an unsigned bucket key negative, one after 9999
could not be shown as an ISO date: either made every read of its monitor fail.
"""
from __future__ import annotations

import pytest

from schemas.check_result import CheckResult, CheckResultIn
from schemas.heartbeat import CheckIn
from schemas.validation import InvalidInput, parse

HEARTBEAT = "5d0f4b2e-8c43-4b8e-9a57-0c5e7a3d9f21"


@pytest.mark.parametrize("moment", [-1, -1e9, 1e20, 253402300800, "0001-01-01T00:00:00Z"])
def test_a_time_outside_1970_to_9999_is_invalid_input(moment: object) -> None:
    for model, body in ((CheckResult, {"monitor_id": "m", "status": "up", "checked_at": moment}),
                        (CheckResultIn, {"monitor_id": "m", "status": "up", "checked_at": moment}),
                        (CheckIn, {"heartbeat_id": HEARTBEAT, "received_at": moment})):
        with pytest.raises(InvalidInput):
            parse(model, body)


@pytest.mark.parametrize("moment", [0, 1795730000.5, 253402300799, "2026-11-23T10:15:00Z"])
def test_a_time_from_1970_to_9999_is_kept(moment: object) -> None:
    assert parse(CheckResult, {"monitor_id": "m", "status": "up", "checked_at": moment}).checked_at >= 0
    assert parse(CheckIn, {"heartbeat_id": HEARTBEAT, "received_at": moment}).received_at >= 0
