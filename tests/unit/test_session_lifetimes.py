"""API processes hold only live sessions, and recovery hashes a new password only after a right code."""
from __future__ import annotations

import time
from types import SimpleNamespace

from api import accounts
from api.gateway import SESSIONS_PRUNED_AT, Gateway
from engine.settings import Settings
from schemas.account import RecoveryConfirm


def live(sid: str, until: float) -> dict:
    return {"kind": "session", "id": sid, "user_id": "u1", "live": True, "until": until}


def test_a_session_counts_until_its_refresh_window_and_last_access_token_end() -> None:
    gateway = Gateway(Settings(access_token_ttl=900))
    now = time.time()
    gateway.apply_access(live("open", now + 60))
    gateway.apply_access(live("lapsed", now - 901))        # not refreshed in time, last token expired too
    gateway.apply_access(live("last-token", now - 600))    # its last access token still has 5 minutes
    assert gateway.session_user("open") == "u1" and gateway.session_user("last-token") == "u1"
    assert gateway.session_user("lapsed") is None and gateway.session_user("never") is None
    gateway.apply_access(live("lapsed", now + 3600))       # a refresh publishes the session's new end
    assert gateway.session_user("lapsed") == "u1"
    gateway.apply_access({"kind": "session", "id": "open", "until": now + 60})  # ended
    assert gateway.session_user("open") is None


def test_lapsed_sessions_are_forgotten_so_memory_holds_live_ones_only() -> None:
    gateway = Gateway(Settings())
    long_ago = time.time() - 10 * 86400
    for n in range(3 * SESSIONS_PRUNED_AT):
        gateway.apply_access(live(f"old-{n}", long_ago))
    assert len(gateway.live_sessions) <= SESSIONS_PRUNED_AT + 1
    gateway.apply_access(live("fresh", time.time() + 3600))
    assert gateway.session_user("fresh") == "u1"


async def test_a_wrong_recovery_code_is_refused_before_any_password_is_hashed(monkeypatch) -> None:
    hashed: list[str] = []

    async def hash_spy(password: str) -> str:
        hashed.append(password)
        return "argon2id$..."

    class Gateway:
        def __init__(self) -> None:
            self.commands: list[str] = []

        async def command(self, kind: str, org_id: str, entity_id: str, body: dict) -> tuple[int, dict]:
            self.commands.append(kind)
            return 422, {"error": "invalid_code", "message": "The code is wrong or expired."}

    monkeypatch.setattr(accounts, "hash_password", hash_spy)
    gateway = Gateway()
    body = RecoveryConfirm(email="ada@example.com", code="000000", new_password="a new long password")
    response = await accounts.recovery_confirm.__wrapped__(SimpleNamespace(app={"gateway": gateway}), body)
    assert response.status == 422
    assert gateway.commands == ["account.recovery_confirm"] and hashed == []  # no hash, no set
