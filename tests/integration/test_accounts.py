"""Accounts and sessions through the public API, with real mail: sign-up, confirmation, log-in,
refresh, log-out, recovery, password change, the profile and its deletion."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from engine.partitioning import partition_for
from tables.accounts import CODES_PER_HOUR, LOGIN_FAILURES
from tests.integration.accounts import PASSWORD, code_in, log_in, new_email, person, sign_up
from tests.integration.cluster import Client, Cluster, wait_for
from tests.mailbox import Mailbox


@pytest.fixture
def anonymous(cluster: Cluster) -> Client:
    return cluster.client(None)


def other_process(cluster: Cluster, token: str) -> Client:
    """The same API served by the worker: another process, following the same topics."""
    worker = next(p for p in cluster.processes if p.name.startswith("worker"))
    return Client(worker.url, token)


def test_sign_up_confirm_and_sign_in(cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    email = new_email("grace")
    created = anonymous.post("/v1/account", {"name": "Grace", "surname": "Hopper", "email": email.upper(),
                                             "password": PASSWORD})
    assert created.status == 202, created.body
    assert created.body["data"]["email"] == email
    assert "password" not in str(created.body)
    mail = smtp_server.wait_for_mail(email)
    code = code_in(mail, "confirmation")
    assert code in mail.splitlines()[0]  # the subject carries it too
    assert anonymous.post("/v1/auth", {"email": email, "password": PASSWORD}).body["error"] == "account_not_confirmed"

    wrong = anonymous.patch("/v1/account", {"email": email, "confirmation_code": "000000" if code != "000000" else "1"})
    assert wrong.status == 422 and wrong.body["error"] == "invalid_code"
    confirmed = anonymous.patch("/v1/account", {"email": email, "confirmation_code": code})
    assert confirmed.status == 200, confirmed.body
    assert confirmed.body["data"]["account"]["status"] == "active"
    assert confirmed.body["data"]["team"]["role"] == "root" and confirmed.body["data"]["team"]["plan"] == "free"
    again = anonymous.patch("/v1/account", {"email": email, "confirmation_code": code})
    assert again.status == 422 and again.body["error"] == "invalid_code"  # single use

    tokens = anonymous.post("/v1/auth", {"email": email, "password": PASSWORD}).body["data"]
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    me = Client(anonymous.base, tokens["access_token"]).get("/v1/auth/me").body["data"]
    assert me["user"]["email"] == email and me["role"] == "root"
    assert me["team"]["id"] == confirmed.body["data"]["team"]["id"] == tokens["team_id"]
    assert "keys:write" in me["scopes"]
    account = Client(anonymous.base, tokens["access_token"]).get("/v1/account").body["data"]
    assert account["plan"] == "free" and account["limits"]["requests_per_minute"] == 60
    assert account["limits"]["monitors"] == 10


def test_a_resent_code_replaces_the_old_one_and_codes_are_used_up_by_wrong_tries(
        cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    email = new_email("linus")
    anonymous.post("/v1/account", {"name": "Linus", "surname": "T", "email": email, "password": PASSWORD})
    first = code_in(smtp_server.wait_for_mail(email), "confirmation")
    assert anonymous.post("/v1/account/confirmation-code", {"email": email}).status == 202
    second = code_in(smtp_server.wait_for_mail(email), "confirmation")
    if first != second:
        stale = anonymous.patch("/v1/account", {"email": email, "confirmation_code": first})
        assert stale.status == 422
    for _ in range(5):  # five wrong tries void the code, even the right one after them
        anonymous.patch("/v1/account", {"email": email, "confirmation_code": "99999x"})
    voided = anonymous.patch("/v1/account", {"email": email, "confirmation_code": second})
    assert voided.status == 422 and voided.body["error"] == "invalid_code"
    assert anonymous.post("/v1/account/confirmation-code", {"email": "nobody@example.com"}).status == 202  # no leak


def test_a_second_sign_up_never_replaces_a_pending_password(cluster: Cluster, smtp_server: Mailbox,
                                                            anonymous: Client) -> None:
    """The attacker signs up again for the victim's pending address; the victim confirms with the newest code."""
    email = new_email("victim")
    assert anonymous.post("/v1/account", {"name": "Vic", "surname": "T", "email": email,
                                          "password": PASSWORD}).status == 202
    smtp_server.wait_for_mail(email)
    attacker_password = "the attacker's own passphrase"
    second = anonymous.post("/v1/account", {"name": "Mallory", "surname": "X", "email": email,
                                            "password": attacker_password})
    assert second.status == 202
    newest = code_in(smtp_server.wait_for_mail(email), "confirmation")
    assert anonymous.patch("/v1/account", {"email": email, "confirmation_code": newest}).status == 200
    assert anonymous.post("/v1/auth", {"email": email, "password": attacker_password}).status == 401
    victim = log_in(cluster, email)
    assert victim.client.get("/v1/customer").body["data"]["name"] == "Vic"


def test_sign_up_and_confirm_answer_alike_whether_or_not_the_email_exists(cluster: Cluster, smtp_server: Mailbox,
                                                                          anonymous: Client) -> None:
    taken, _ = sign_up(cluster, smtp_server, "taken")
    fresh = new_email("fresh")

    def shape(answer) -> tuple:
        body = answer.body
        return answer.status, body.get("error"), (body.get("message") or body["data"]["message"])

    sign_ups = [anonymous.post("/v1/account", {"name": "X", "surname": "Y", "email": address, "password": PASSWORD})
                for address in (taken, fresh)]
    assert shape(sign_ups[0]) == shape(sign_ups[1]) and sign_ups[0].status == 202
    assert "already has an account" in smtp_server.wait_for_mail(taken)   # the mail says what happened
    smtp_server.wait_for_mail(fresh)
    confirms = [anonymous.patch("/v1/account", {"email": address, "confirmation_code": "123456"})
                for address in (taken, new_email("nobody"), fresh)]
    assert len({shape(answer) for answer in confirms}) == 1 and confirms[0].status == 422


def test_bad_sign_up_input_says_what_to_fix(anonymous: Client) -> None:
    answer = anonymous.post("/v1/account", {"name": "", "surname": "x", "email": "not-an-email", "password": "short"})
    assert answer.status == 422
    assert set(answer.body["errors"]) == {"name", "email", "password"}


def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(
        cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    ada = person(cluster, smtp_server)
    fresh = anonymous.post("/v1/auth/refresh", {"refresh_token": ada.refresh_token})
    assert fresh.status == 200, fresh.body
    new = fresh.body["data"]
    assert new["team_id"] == ada.team_id and new["refresh_token"] != ada.refresh_token
    assert Client(anonymous.base, new["access_token"]).get("/v1/monitors").status == 200
    replayed = anonymous.post("/v1/auth/refresh", {"refresh_token": ada.refresh_token})
    assert replayed.status == 401 and replayed.body["error"] == "refresh_token_reused"
    # the session is over for the thief and for the owner alike
    assert Client(anonymous.base, new["access_token"]).get("/v1/monitors").status == 401
    assert anonymous.post("/v1/auth/refresh", {"refresh_token": new["refresh_token"]}).status == 401
    assert anonymous.post("/v1/auth/refresh", {"refresh_token": new["access_token"]}).status == 401  # wrong type


def test_log_out_revokes_the_token_in_every_api_process(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    other = log_in(cluster, ada.email)  # a second session stays signed in
    assert other_process(cluster, ada.access_token).get("/v1/monitors").status == 200
    assert ada.client.delete("/v1/auth").status == 204
    assert ada.client.get("/v1/monitors").status == 401  # this process knows at once
    wait_for("the other process to refuse the token",
             lambda: other_process(cluster, ada.access_token).get("/v1/monitors").status == 401, 5)
    assert ada.client.get("/v1/auth/me").body["error"] == "unauthorized"
    assert Client(ada.base, None).post("/v1/auth/refresh", {"refresh_token": ada.refresh_token}).status == 401
    assert other.client.get("/v1/monitors").status == 200


def test_wrong_passwords_lock_the_account_for_a_while(cluster: Cluster, smtp_server: Mailbox,
                                                      anonymous: Client) -> None:
    email, _ = sign_up(cluster, smtp_server, "eve")
    statuses = [anonymous.post("/v1/auth", {"email": email, "password": "guess"}).status for _ in range(10)]
    assert statuses[:9] == [401] * 9 and statuses[9] == 429
    locked = anonymous.post("/v1/auth", {"email": email, "password": PASSWORD})  # even the right one
    assert locked.status == 429 and locked.body["error"] == "too_many_login_attempts"
    assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    unknown = anonymous.post("/v1/auth", {"email": "nobody@example.com", "password": "guess"})
    assert unknown.status == 401 and unknown.body["error"] == "invalid_credentials"  # same as a wrong password


def test_a_concurrent_burst_of_wrong_passwords_cannot_outrun_the_lock(cluster: Cluster, smtp_server: Mailbox,
                                                                       anonymous: Client) -> None:
    """24 guesses at once: each try is reserved in the account's partition before its hash is verified."""
    email, _ = sign_up(cluster, smtp_server, "eve")
    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: anonymous.post("/v1/auth", {"email": email, "password": "guess"}),
                                range(24)))
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(401) <= LOGIN_FAILURES - 1 and set(statuses) == {401, 429}, statuses
    assert all(a.body["error"] == "too_many_login_attempts" for a in answers if a.status == 429)
    right_after = anonymous.post("/v1/auth", {"email": email, "password": PASSWORD})
    assert right_after.status == 429 and right_after.body["error"] == "too_many_login_attempts"


def test_password_recovery_ends_every_session(cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    ada = person(cluster, smtp_server)
    assert anonymous.post("/v1/account/recovery", {"email": ada.email}).status == 202
    code = code_in(smtp_server.wait_for_mail(ada.email), "recovery")
    new_password = "a much better passphrase"
    wrong = anonymous.patch("/v1/account/recovery", {"email": ada.email, "code": "nope", "new_password": new_password})
    assert wrong.status == 422
    done = anonymous.patch("/v1/account/recovery", {"email": ada.email, "code": code, "new_password": new_password})
    assert done.status == 200, done.body
    assert ada.client.get("/v1/monitors").status == 401
    assert anonymous.post("/v1/auth", {"email": ada.email, "password": PASSWORD}).status == 401
    assert log_in(cluster, ada.email, new_password).client.get("/v1/monitors").status == 200
    reused = anonymous.patch("/v1/account/recovery", {"email": ada.email, "code": code, "new_password": "x" * 12})
    assert reused.status == 422  # used once


def test_codes_are_mailed_at_most_five_times_an_hour_and_answers_stay_alike(
        cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    """Asking again and again neither floods the inbox nor buys more codes to guess."""
    email, _ = sign_up(cluster, smtp_server, "bombed")           # the confirmation code: one
    for _ in range(7):
        assert anonymous.post("/v1/account/recovery", {"email": email}).status == 202
    assert anonymous.post("/v1/account/confirmation-code", {"email": email}).status == 202
    assert anonymous.post("/v1/account", {"name": "X", "surname": "Y", "email": email,
                                          "password": PASSWORD}).status == 202
    # a mail to another address of the same partition comes after whatever these commands mailed
    marker = next(address for address in (new_email("marker") for _ in range(200))
                  if partition_for(address, cluster.partitions) == partition_for(email, cluster.partitions))
    assert anonymous.post("/v1/account", {"name": "M", "surname": "K", "email": marker,
                                          "password": PASSWORD}).status == 202
    smtp_server.wait_for_mail(marker)
    assert len(smtp_server.mail_to(email)) == CODES_PER_HOUR


def test_password_change_keeps_this_session_and_ends_the_others(cluster: Cluster, smtp_server: Mailbox) -> None:
    ada = person(cluster, smtp_server)
    laptop = log_in(cluster, ada.email)
    wrong = ada.client.request("PUT", "/v1/account/password", {"current_password": "nope",
                                                               "new_password": "another fine passphrase"})
    assert wrong.status == 403 and wrong.body["error"] == "wrong_password"
    changed = ada.client.request("PUT", "/v1/account/password", {"current_password": PASSWORD,
                                                                 "new_password": "another fine passphrase"})
    assert changed.status == 200, changed.body
    assert ada.client.get("/v1/monitors").status == 200
    assert laptop.client.get("/v1/monitors").status == 401
    log_in(cluster, ada.email, "another fine passphrase")


def test_profile_update_and_deletion(cluster: Cluster, smtp_server: Mailbox, anonymous: Client) -> None:
    ada = person(cluster, smtp_server)
    assert ada.client.get("/v1/customer").body["data"]["name"] == "Ada"
    assert ada.client.patch("/v1/customer", {"surname": "Lovelace"}).body["data"]["surname"] == "Lovelace"
    assert ada.client.delete("/v1/customer").status == 422  # a reason is required
    assert ada.client.request("DELETE", "/v1/customer", {"reason": "moving on"}).status == 204
    assert ada.client.get("/v1/auth/me").status == 401
    assert anonymous.post("/v1/auth", {"email": ada.email, "password": PASSWORD}).status == 401
    # her team had no one else: it is gone with her, and the email may sign up afresh
    again = anonymous.post("/v1/account", {"name": "Ada", "surname": "L", "email": ada.email, "password": PASSWORD})
    assert again.status == 202
    code = code_in(smtp_server.wait_for_mail(ada.email), "confirmation")
    fresh = anonymous.patch("/v1/account", {"email": ada.email, "confirmation_code": code}).body["data"]
    assert fresh["account"]["id"] != ada.user_id


def test_people_endpoints_refuse_api_keys(cluster: Cluster, api: Client) -> None:
    for method, path in (("GET", "/v1/customer"), ("DELETE", "/v1/auth"), ("POST", "/v1/team")):
        answer = api.request(method, path, {"name": "x"} if method == "POST" else None)
        assert answer.status == 403 and answer.body["error"] == "people_only", (method, path)


def test_an_expired_access_token_says_so(cluster: Cluster) -> None:
    import jwt

    settings = cluster.settings()
    now = int(time.time())
    token = jwt.encode({"sub": "usr_x", "sid": "ses_x", "typ": "access", "team": "org_x", "iat": now - 1000,
                        "exp": now - 100}, settings.jwt_secret, algorithm="HS256")
    answer = Client(cluster.client(None).base, token).get("/v1/monitors")
    assert answer.status == 401 and answer.body["error"] == "token_expired"
    forged = jwt.encode({"sub": "usr_x", "sid": "ses_x", "typ": "access", "team": "org_x", "iat": now,
                         "exp": now + 100}, "not the secret", algorithm="HS256")
    assert Client(cluster.client(None).base, forged).get("/v1/monitors").body["error"] == "unauthorized"
