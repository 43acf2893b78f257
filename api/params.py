"""Query parameters, checked with the same clear errors as bodies."""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from schemas.validation import InvalidInput


def _invalid(name: str, reason: str) -> InvalidInput:
    return InvalidInput(f"Query parameter '{name}' is invalid: {reason}.", {name: reason})


def integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(name, f"{raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise _invalid(name, f"must be between {low} and {high}")
    return value


def choice(request: web.Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query.get(name) or default
    if value not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}")
    return value


def moment(request: web.Request, name: str, default: float) -> float:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(name, f"{raw!r} is not an ISO-8601 date or time (e.g. 2026-11-23 or 2026-11-23T10:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def pagination(request: web.Request, max_per_page: int = 100) -> tuple[int, int]:
    return integer(request, "page", 1, 1, 1_000_000), integer(request, "per_page", 20, 1, max_per_page)


def paginated(data: list, page: int, per_page: int, total: int) -> dict:
    return {"data": data, "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}}
