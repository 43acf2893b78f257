"""Path and query parameters: each kind parses a value and says what it accepts in the OpenAPI document.

A route declares its parameters (api/routes.py); the same objects check a
request's values, with the same clear errors as bodies, and describe them.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from api.errors import ApiError
from schemas.validation import LAST_MOMENT, InvalidInput


def _invalid(name: str, reason: str) -> InvalidInput:
    return InvalidInput(f"Query parameter '{name}' is invalid: {reason}.", {name: reason})


# -- path parameters ------------------------------------------------------------------


@dataclass(frozen=True)
class Id:
    """A path segment naming a resource; a value that cannot be one answers 404, as an absent one does."""
    what: str                                   # "monitor": in the 404 message and the document
    pattern: re.Pattern | None = None
    valid: Callable[[str], object] | None = None  # instead of a pattern: falsy when not an id
    format: str | None = None                     # what the document says it looks like, e.g. uuid

    def check(self, value: str) -> None:
        if (self.pattern is not None and not self.pattern.match(value)) or (
                self.valid is not None and not self.valid(value)):
            raise ApiError(404, "not_found", f"{self.what} {value} not found")

    def schema(self) -> dict:
        schema: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            schema["pattern"] = self.pattern.pattern
        if self.format is not None:
            schema["format"] = self.format
        return schema


# -- query parameters -------------------------------------------------------------------


@dataclass(frozen=True)
class Integer:
    default: int
    low: int
    high: int
    description: str = ""

    def parse(self, request: web.Request, name: str) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(name, f"{raw!r} is not a whole number") from None
        if not self.low <= value <= self.high:
            raise _invalid(name, f"must be between {self.low} and {self.high}")
        return value

    def schema(self) -> dict:
        return {"type": "integer", "minimum": self.low, "maximum": self.high, "default": self.default}


@dataclass(frozen=True)
class Choice:
    default: str | None
    allowed: tuple[str, ...]
    description: str = ""

    def parse(self, request: web.Request, name: str) -> str | None:
        value = request.query.get(name) or self.default
        if value is not None and value not in self.allowed:
            raise _invalid(name, f"must be one of {', '.join(self.allowed)}")
        return value

    def schema(self) -> dict:
        schema: dict[str, Any] = {"type": "string", "enum": list(self.allowed)}
        if self.default is not None:
            schema["default"] = self.default
        return schema


@dataclass(frozen=True)
class Moment:
    """A time: ISO-8601 (a date, or a date and time; UTC unless it says) or epoch seconds; None when absent."""
    description: str = ""

    def parse(self, request: web.Request, name: str) -> float | None:
        raw = request.query.get(name)
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                raise _invalid(name, f"{raw!r} is not an ISO-8601 date or time "
                                     "(e.g. 2026-11-23 or 2026-11-23T10:00:00Z)") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            value = parsed.timestamp()
        if not (math.isfinite(value) and 0 <= value <= LAST_MOMENT):  # stored times are unsigned, keys 8 bytes
            raise _invalid(name, "must be between 1970-01-01 and 9999-12-31")
        return value

    def schema(self) -> dict:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"},
                          {"type": "number", "minimum": 0, "maximum": LAST_MOMENT}]}


@dataclass(frozen=True)
class Text:
    """Free text, or with `pattern` an id-like value; None when absent."""
    pattern: re.Pattern | None = None
    reason: str = "not an id"
    max_length: int | None = None
    description: str = ""

    def parse(self, request: web.Request, name: str) -> str | None:
        value = request.query.get(name) or None
        if value is not None and self.pattern is not None and not self.pattern.match(value):
            raise _invalid(name, self.reason)
        return value

    def schema(self) -> dict:
        schema: dict[str, Any] = {"type": "string"}
        if self.pattern is not None:
            schema["pattern"] = self.pattern.pattern
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


@dataclass(frozen=True)
class Ids:
    """The parameter repeated: ?id=a&id=b; between 1 and `most` distinct values, in the order given."""
    most: int
    description: str = ""
    item: Id | None = None          # what one id looks like (one that does not is reported not found)

    def parse(self, request: web.Request, name: str) -> list[str]:
        values = list(dict.fromkeys(request.query.getall(name, [])))
        if not values or len(values) > self.most:
            raise InvalidInput(f"Give between 1 and {self.most} ids as ?{name}=..&{name}=..",
                               {name: f"between 1 and {self.most} ids required"})
        return values

    def schema(self) -> dict:
        items = self.item.schema() if self.item is not None else {"type": "string"}
        return {"type": "array", "items": items, "minItems": 1, "maxItems": self.most}


Query = Integer | Choice | Moment | Text | Ids


def pagination(max_per_page: int = 100) -> dict[str, Query]:
    """?page=&per_page=: the pages of a list (invariant 7)."""
    return {"page": Integer(1, 1, 1_000_000, "1 for the first page"),
            "per_page": Integer(20, 1, max_per_page, "items on a page")}


def paginated(data: list, page: int, per_page: int, total: int) -> dict:
    return {"data": data, "meta": {"page": page, "per_page": per_page, "total": total,
                                   "total_pages": (total + per_page - 1) // per_page}}
