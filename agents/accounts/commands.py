"""commands about accounts and sessions → the `accounts` table → mail, access records, replies.

1. the topic: `commands` (engine/commands.py applies them), kinds account.* and
   session.*, keyed by the account's normalised email (the API routes log-ins,
   codes and refresh tokens by it), so sign-up is unique per email without a
   lookup elsewhere;
2. the state: `accounts`, one record per email (tables/accounts.py): profile,
   password hash (argon2, computed by the API: hashing is slow on purpose and
   must not hold up the stream), codes, recent failed log-ins, sessions;
3. the transitions: sign up (pending) → confirm (active, with a first team)
   → delete; codes for confirmation and recovery; sessions opened, refreshed
   (one generation at a time), closed; passwords changed or recovered (every
   other session ends);
4. the events: mail with codes on `mail`; ended sessions and deleted users on
   `access`, so every API process refuses their tokens; a confirmation
   forwards team.create to the new team's partition, which answers for both.
"""
from __future__ import annotations

import hmac
import uuid

from agents.teams.commands import publish, send_mail
from engine.commands import CommandApplier
from tables.access import new_team_id
from engine.partitioning import entity_key
from tables.accounts import (CODE_TTL, GRANT_TTL, MAX_SESSIONS, account_view, check_code, code_hash, code_record,
                             locked_until, may_mail_code, new_code, recent_failures, with_code_mailed)

#: one answer for every failed code, so it tells nothing about whether the account exists
INVALID_CODE = "The code is wrong, expired or used up (no code, or too many wrong tries)."
SIGNED_UP = ("We sent a mail to this address: it has a confirmation code, or says what to do if the address "
             "already has an account. Confirm with PATCH /v1/account {email, confirmation_code}.")


def account_of(applier: CommandApplier, partition: int, command: dict) -> dict | None:
    account = applier.engine.accounts.get(partition, entity_key(command["entity_id"]))
    return None if account is None or account["status"] == "deleted" else account


def store(applier: CommandApplier, partition: int, offset: int, account: dict) -> None:
    applier.engine.accounts.put(partition, entity_key(account["email"]), {**account, "pos": offset})


def code_mail(applier: CommandApplier, command: dict, account: dict, template: str, code: str) -> None:
    send_mail(applier, command["id"], account["email"], template,
              {"name": account["name"], "code": code, "expires_minutes": CODE_TTL // 60})


def end_session(applier: CommandApplier, account: dict, sid: str, at: float) -> dict:
    """Close one session: its access tokens are refused from now on, by every API process."""
    until = at + applier.engine.settings.access_token_ttl
    publish(applier, f"session:{sid}", {"kind": "session", "id": sid, "until": until})
    return {**account, "sessions": {k: v for k, v in account["sessions"].items() if k != sid}}


def end_sessions(applier: CommandApplier, account: dict, at: float, keep: str | None = None) -> dict:
    for sid in list(account["sessions"]):
        if sid != keep:
            account = end_session(applier, account, sid, at)
    return account


def not_active(applier: CommandApplier, command: dict, account: dict | None) -> bool:
    """Replies and returns True unless the account exists and is confirmed."""
    if account is None:
        applier.error(command, 401, "invalid_credentials", "Wrong email or password.")
    elif account["status"] != "active":
        applier.error(command, 403, "account_not_confirmed",
              "Confirm the account first: PATCH /v1/account with the code we mailed "
              "(POST /v1/account/confirmation-code sends a new one).")
    else:
        return False
    return True


def account_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: email, name, surname, password_hash. Answers alike whatever the address is; the mail says what happened.

    A new address gets a pending account and a code. A pending one keeps the
    password it was signed up with (a second sign-up must not replace it: the
    owner would confirm the newcomer's password) and gets a new code. An active
    one gets a mail saying someone tried.
    """
    body = command["body"]
    existing = account_of(applier, partition, command)
    answer = {"email": command["entity_id"], "message": SIGNED_UP}
    if existing is not None:
        if existing["pos"] < offset and may_mail_code(existing, command["at"]):
            existing = with_code_mailed(existing, command["at"])
            if existing["status"] == "active":
                send_mail(applier, command["id"], existing["email"], "account_exists", {"name": existing["name"]})
                store(applier, partition, offset, existing)
            else:
                code = new_code()
                code_mail(applier, command, existing, "confirmation", code)
                store(applier, partition, offset,
                      {**existing, "confirmation": code_record(code, existing["id"], command["at"])})
        return applier.reply(command["id"], 202, answer)
    code = new_code()
    user_id = "usr_" + uuid.uuid4().hex[:16]
    account = {"id": user_id, "email": command["entity_id"], "name": body["name"], "surname": body["surname"],
               "status": "pending", "password_hash": body["password_hash"], "created_at": command["at"],
               "confirmed_at": None, "default_team": None, "recovery": None, "failures": [], "sessions": {},
               "confirmation": code_record(code, user_id, command["at"]), "codes_sent": [command["at"]]}
    code_mail(applier, command, account, "confirmation", code)
    store(applier, partition, offset, account)
    applier.reply(command["id"], 202, answer)


def account_resend_code(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """Answers 202 whether or not there is such a pending account: nobody learns who signed up."""
    account = account_of(applier, partition, command)
    if (account is not None and account["status"] == "pending" and account["pos"] < offset
            and may_mail_code(account, command["at"])):
        code = new_code()
        code_mail(applier, command, account, "confirmation", code)
        store(applier, partition, offset, {**with_code_mailed(account, command["at"]),
                                           "confirmation": code_record(code, account["id"], command["at"])})
    applier.reply(command["id"], 202, {"message": "If a pending account has this email, a new code is on its way."})


def account_confirm(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: code. Activates the account and creates its first team, where it is root."""
    account = account_of(applier, partition, command)
    if account is not None and account["status"] == "active" and account["pos"] == offset:
        return forward_team(applier, command, account)  # redelivered: the team partition answers again
    refused = INVALID_CODE + " POST /v1/account/confirmation-code sends a new one."
    if account is None or account["status"] == "active":  # answered as a wrong code: nothing to learn here
        return applier.error(command, 422, "invalid_code", refused)
    outcome, kept = check_code(account["confirmation"], command["body"]["code"], account["id"], command["at"])
    if outcome != "ok":
        store(applier, partition, offset, {**account, "confirmation": kept})
        return applier.error(command, 422, "invalid_code", refused)
    account = {**account, "status": "active", "confirmation": None, "confirmed_at": command["at"],
               "default_team": new_team_id()}
    store(applier, partition, offset, account)
    forward_team(applier, command, account)


def forward_team(applier: CommandApplier, command: dict, account: dict) -> None:
    org_id = account["default_team"]
    applier.send(command["id"], "team.create", org_id, org_id, {
        "name": f"{account['name']}'s team", "plan": applier.engine.settings.signup_plan,
        "root": {"user_id": account["id"], "email": account["email"], "name": account["name"]},
    }, command["at"], {"status": 200, "body": {"account": account_view(account)}})


def account_login_attempt(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """A log-in about to verify a password reserves its try here first, counted as a failure.

    Commands of one account are applied one at a time, so a concurrent burst is
    counted try by try: once the lock is reached, the rest are refused before
    any password is verified. A log-in that succeeds clears the count
    (session.create). Replies locked_until (refused: locked until then) or
    locks_until (granted: if this try fails, the account is locked until then).
    """
    account = account_of(applier, partition, command)
    if account is None:
        return applier.reply(command["id"], 204, None)
    at = command["at"]
    if account["pos"] >= offset:  # redelivered: the count already holds this try
        locked = locked_until(account["failures"], at)
        return applier.reply(command["id"], 200, {"locked_until": locked, "locks_until": locked})
    locked = locked_until(account["failures"], at)
    if locked is None:
        account = {**account, "failures": recent_failures(account["failures"], at) + [at]}
    store(applier, partition, offset, account)
    applier.reply(command["id"], 200, {"locked_until": locked,
                                       "locks_until": None if locked else locked_until(account["failures"], at)})


def account_login_failed(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """A wrong password, counted where every API process sees it (API processes now send login_attempt)."""
    account = account_of(applier, partition, command)
    if account is None:
        return applier.reply(command["id"], 204, None)
    if account["pos"] < offset:
        failures = recent_failures(account["failures"], command["at"]) + [command["at"]]
        account = {**account, "failures": failures}
        store(applier, partition, offset, account)
    applier.reply(command["id"], 200, {"locked_until": locked_until(account["failures"], command["at"])})


def session_create(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: sid. The API checked the password; this opens the session (and clears failed log-ins)."""
    account = account_of(applier, partition, command)
    if not_active(applier, command, account):
        return
    sid = command["body"]["sid"]
    if sid not in account["sessions"]:
        sessions = dict(sorted(account["sessions"].items(), key=lambda item: item[1]["created_at"]))
        while len(sessions) >= MAX_SESSIONS:
            ended = next(iter(sessions))
            sessions.pop(ended)
            end_session(applier, account, ended, command["at"])
        expires_at = command["at"] + applier.engine.settings.refresh_token_ttl
        sessions[sid] = {"created_at": command["at"], "gen": 1, "expires_at": expires_at}
        publish_live(applier, account, sid, expires_at)
        account = {**account, "sessions": sessions, "failures": []}
        store(applier, partition, offset, account)
    session_reply(applier, command, account, sid)


def session_reply(applier: CommandApplier, command: dict, account: dict, sid: str) -> None:
    applier.reply(command["id"], 200, {"user": account_view(account), "sid": sid,
                                       "gen": account["sessions"][sid]["gen"], "default_team": account["default_team"]})


def publish_live(applier: CommandApplier, account: dict, sid: str, until: float) -> None:
    """Access tokens are honoured only for a session the API processes have seen opened (or refreshed) here;
    they forget it once its refresh token and the last access token made with it have expired."""
    publish(applier, f"session:{sid}", {"kind": "session", "id": sid, "user_id": account["id"],
                                        "live": True, "until": until})


def session_refresh(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: sid, gen. Only the newest refresh token of a session works; an older one ends the session."""
    account = account_of(applier, partition, command)
    body = command["body"]
    session = None if account is None else account["sessions"].get(body["sid"])
    if account is not None and account["pos"] >= offset and session is not None:
        return session_reply(applier, command, account, body["sid"])  # redelivered
    if session is None or session["expires_at"] < command["at"] or account["status"] != "active":
        return applier.error(command, 401, "session_ended", "The session has ended: sign in again.")
    if body["gen"] != session["gen"]:
        store(applier, partition, offset, end_session(applier, account, body["sid"], command["at"]))
        return applier.error(command, 401, "refresh_token_reused",
                     "This refresh token was already used, so the session has been ended: sign in again.")
    session = {**session, "gen": session["gen"] + 1,
               "expires_at": command["at"] + applier.engine.settings.refresh_token_ttl}
    account = {**account, "sessions": {**account["sessions"], body["sid"]: session}}
    publish_live(applier, account, body["sid"], session["expires_at"])  # API processes keep it until then
    store(applier, partition, offset, account)
    session_reply(applier, command, account, body["sid"])


def session_revoke(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    account = account_of(applier, partition, command)
    sid = command["body"]["sid"]
    if account is not None and sid in account["sessions"]:
        store(applier, partition, offset, end_session(applier, account, sid, command["at"]))
    applier.reply(command["id"], 204, None)


def account_recovery_request(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    account = account_of(applier, partition, command)
    if (account is not None and account["status"] == "active" and account["pos"] < offset
            and may_mail_code(account, command["at"])):
        code = new_code()
        code_mail(applier, command, account, "recovery", code)
        store(applier, partition, offset, {**with_code_mailed(account, command["at"]),
                                           "recovery": code_record(code, account["id"], command["at"])})
    applier.reply(command["id"], 202, {"message": "If an account has this email, a recovery code is on its way."})


def account_recovery_confirm(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: code, grant_hash. A right code becomes a short grant to set the password (account.recovery_set).

    The API hashes the new password only after this answers 200: a wrong code
    costs it no hashing.
    """
    account = account_of(applier, partition, command)
    if account is not None and account["pos"] == offset:
        return applier.reply(command["id"], 200, {"checked": True})  # redelivered: the grant is stored
    refused = INVALID_CODE + " POST /v1/account/recovery sends a new one."
    if account is None or account["status"] != "active":
        return applier.error(command, 422, "invalid_code", refused)
    code = account["recovery"] if account["recovery"] and "hash" in account["recovery"] else None
    outcome, kept = check_code(code, command["body"]["code"], account["id"], command["at"])
    if outcome != "ok":
        store(applier, partition, offset, {**account, "recovery": kept})
        return applier.error(command, 422, "invalid_code", refused)
    grant = {"grant": command["body"]["grant_hash"], "expires_at": command["at"] + GRANT_TTL}
    store(applier, partition, offset, {**account, "recovery": grant})
    applier.reply(command["id"], 200, {"checked": True})


def account_recovery_set(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: grant, password_hash. Every session ends: whoever knew the old password is out."""
    account = account_of(applier, partition, command)
    if account is not None and account["pos"] == offset:
        return applier.reply(command["id"], 200, account_view(account))
    grant = (account or {}).get("recovery") or {}
    if (account is None or "grant" not in grant or grant["expires_at"] < command["at"]
            or not hmac.compare_digest(grant["grant"], code_hash(command["body"]["grant"], ""))):
        return applier.error(command, 422, "invalid_code", INVALID_CODE + " POST /v1/account/recovery sends a new one.")
    account = end_sessions(applier, account, command["at"])
    account = {**account, "recovery": None, "password_hash": command["body"]["password_hash"], "failures": []}
    store(applier, partition, offset, account)
    applier.reply(command["id"], 200, account_view(account))


def account_password_set(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: password_hash, keep_sid (the session that changed it stays; the others end)."""
    account = account_of(applier, partition, command)
    if not_active(applier, command, account):
        return
    if account["pos"] < offset:
        account = end_sessions(applier, account, command["at"], keep=command["body"]["keep_sid"])
        account = {**account, "password_hash": command["body"]["password_hash"]}
        store(applier, partition, offset, account)
    applier.reply(command["id"], 200, account_view(account))


def account_update(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    account = account_of(applier, partition, command)
    if not_active(applier, command, account):
        return
    if account["pos"] < offset:
        account = {**account, **{k: v for k, v in command["body"].items() if k in ("name", "surname") and v}}
        store(applier, partition, offset, account)
    applier.reply(command["id"], 200, account_view(account))


def account_delete(applier: CommandApplier, partition: int, offset: int, command: dict) -> None:
    """body: reason, teams (the ids the API knows the person is in). The email may sign up again."""
    stored = applier.engine.accounts.get(partition, entity_key(command["entity_id"]))
    if stored is not None and stored["pos"] == offset:
        return applier.reply(command["id"], 204, None)  # redelivered
    account = account_of(applier, partition, command)
    if not_active(applier, command, account):
        return
    account = end_sessions(applier, account, command["at"])
    publish(applier, f"user:{account['id']}", {"kind": "user", "id": account["id"], "deleted": True})
    for org_id in command["body"]["teams"]:
        applier.send(f"{command['id']}:leave:{org_id}", "member.remove", org_id, org_id,
                     {"member_id": account["id"], "actor": {"type": "system"}}, command["at"])
    store(applier, partition, offset, {**account, "status": "deleted", "deleted_at": command["at"],
                                       "deleted_reason": command["body"]["reason"], "password_hash": None,
                                       "sessions": {}})
    applier.reply(command["id"], 204, None)


COMMANDS = {
    "account.create": account_create,
    "account.resend_code": account_resend_code,
    "account.confirm": account_confirm,
    "account.login_attempt": account_login_attempt,
    "account.login_failed": account_login_failed,
    "session.create": session_create,
    "session.refresh": session_refresh,
    "session.revoke": session_revoke,
    "account.recovery_request": account_recovery_request,
    "account.recovery_confirm": account_recovery_confirm,
    "account.recovery_set": account_recovery_set,
    "account.password_set": account_password_set,
    "account.update": account_update,
    "account.delete": account_delete,
}
