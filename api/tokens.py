"""People's tokens: short-lived access tokens and rotating refresh tokens, both JWT (HS256).

Access token claims: sub (user id), eml (email: routes to the account's
partition), sid (session), team (organisation it acts in), typ "access".
A refresh token carries sid and gen: the account's partition accepts only the
newest generation of a session, so a refresh token works once, and replaying an
old one ends the session (it was stolen, or copied).
"""
from __future__ import annotations

import time
import uuid

import jwt

from api.errors import ApiError
from engine.settings import Settings

ALGORITHM = "HS256"


def secret_of(settings: Settings) -> str:
    secret = settings.jwt_secret  # never the internal token: one leaked secret must not open both doors
    if not secret:
        raise ApiError(503, "not_configured", "Sign-in is not configured: set PINGSTREAM_JWT_SECRET "
                                              "(the same value for every API process and worker).")
    return secret


def mint(settings: Settings, typ: str, claims: dict, ttl: float) -> str:
    now = int(time.time())
    payload = {**claims, "typ": typ, "iat": now, "exp": now + int(ttl), "jti": uuid.uuid4().hex}
    return jwt.encode(payload, secret_of(settings), algorithm=ALGORITHM)


def decode(settings: Settings, token: str, typ: str) -> dict:
    """The claims of a valid token of type `typ`; 401 token_expired or unauthorized otherwise."""
    try:
        claims = jwt.decode(token, secret_of(settings), algorithms=[ALGORITHM],
                            options={"require": ["exp", "iat", "sub", "sid", "typ"]})
    except jwt.ExpiredSignatureError:
        what = "access token" if typ == "access" else "refresh token"
        hint = "refresh it with POST /v1/auth/refresh" if typ == "access" else "sign in again with POST /v1/auth"
        raise ApiError(401, "token_expired", f"The {what} has expired: {hint}.") from None
    except jwt.PyJWTError:
        raise ApiError(401, "unauthorized", "The token is not valid (malformed or not signed by this service).") from None
    if claims["typ"] != typ:
        raise ApiError(401, "unauthorized", f"This is a {claims['typ']} token; a {typ} token is needed here.")
    return claims


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2 and credential.startswith("eyJ")


def token_pair(settings: Settings, user_id: str, email: str, sid: str, gen: int, team_id: str | None) -> dict:
    """What POST /v1/auth and POST /v1/auth/refresh answer."""
    access = mint(settings, "access", {"sub": user_id, "eml": email, "sid": sid, "team": team_id},
                  settings.access_token_ttl)
    refresh = mint(settings, "refresh", {"sub": user_id, "eml": email, "sid": sid, "gen": gen},
                   settings.refresh_token_ttl)
    return {"access_token": access, "refresh_token": refresh, "token_type": "Bearer",
            "expires_in": settings.access_token_ttl, "refresh_expires_in": settings.refresh_token_ttl,
            "team_id": team_id}
