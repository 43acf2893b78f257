"""Accounts: one record per email in its partition of `accounts` (agents/accounts/commands.py).

    {"id": "usr_…", "email", "name", "surname", "status": "pending" | "active" | "deleted",
     "password_hash", "created_at", "confirmed_at", "default_team",
     "confirmation": code | None, "recovery": code | None,
     "failures": [times of failed log-ins in the last window],
     "sessions": {sid: {"created_at", "gen", "expires_at"}},
     "codes_sent": [times of mails with a code, or about a sign-up, in the last hour], "pos"}

A code is {"hash", "expires_at", "attempts"}: six digits sent by mail, stored
only as a hash, good for CODE_TTL seconds and CODE_ATTEMPTS tries, used once.
At most CODES_PER_HOUR such mails go to one account an hour, so codes cannot
be guessed by asking for ever more, nor an inbox flooded. A recovery code
that is right becomes a grant {"grant", "expires_at"}: the hash of a random
value the API holds, good for GRANT_TTL seconds to set the new password (the
API hashes the new password only once the code is known to be right).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from tables.monitor_views import iso

CODE_TTL = 15 * 60
CODE_ATTEMPTS = 5
LOGIN_WINDOW = 15 * 60       # failed log-ins are counted over this many seconds
LOGIN_FAILURES = 10          # ... and this many lock the account until the oldest leaves the window
MAX_SESSIONS = 50            # the oldest session goes when a 51st is opened
CODES_PER_HOUR = 5           # mails with a code (or about a sign-up) one account gets an hour
GRANT_TTL = 60               # seconds a checked recovery code lets the new password be set


def normalize_email(email: str) -> str:
    return email.strip().lower()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


def code_hash(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code.strip()}".encode()).hexdigest()


def code_record(code: str, salt: str, now: float, ttl: float = CODE_TTL) -> dict:
    return {"hash": code_hash(code, salt), "expires_at": now + ttl, "attempts": 0}


def check_code(record: dict | None, code: str, salt: str, now: float) -> tuple[str, dict | None]:
    """("ok" | "wrong" | "expired" | "none", the code record to keep): a used or exhausted code is gone."""
    if record is None:
        return "none", None
    if record["expires_at"] < now:
        return "expired", None
    if hmac.compare_digest(record["hash"], code_hash(code, salt)):
        return "ok", None
    attempts = record["attempts"] + 1
    return "wrong", (None if attempts >= CODE_ATTEMPTS else {**record, "attempts": attempts})


def may_mail_code(account: dict, now: float) -> bool:
    """Fewer than CODES_PER_HOUR code mails went to this account in the last hour?"""
    return len([at for at in account.get("codes_sent", []) if at > now - 3600]) < CODES_PER_HOUR


def with_code_mailed(account: dict, now: float) -> dict:
    return {**account, "codes_sent": [at for at in account.get("codes_sent", []) if at > now - 3600] + [now]}


def recent_failures(failures: list[float], now: float) -> list[float]:
    return [at for at in failures if at > now - LOGIN_WINDOW]


def locked_until(failures: list[float], now: float) -> float | None:
    """When log-ins are allowed again, or None when they are now."""
    recent = sorted(recent_failures(failures, now))
    if len(recent) < LOGIN_FAILURES:
        return None
    return recent[-LOGIN_FAILURES] + LOGIN_WINDOW


def account_view(account: dict) -> dict:
    return {"id": account["id"], "email": account["email"], "name": account["name"],
            "surname": account["surname"], "status": account["status"],
            "created_at": iso(account["created_at"]), "confirmed_at": iso(account.get("confirmed_at"))}
