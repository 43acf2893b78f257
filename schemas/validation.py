"""Turning pydantic's complaints into the error body users get (invariant 5)."""
from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, Field, ValidationError

Model = TypeVar("Model", bound=BaseModel)
#: the last moment a time may name: times are kept as unsigned (milli)seconds in 8-byte keys and shown as ISO dates
LAST_MOMENT = 253402300799.0  # 9999-12-31T23:59:59Z
NAMED_REASON = re.compile(r"^(?P<field>[a-z_]+(?:\.[a-z0-9_]+)*): (?P<reason>.+)$", re.S)


class InvalidInput(Exception):
    """Input that cannot be used; `errors` maps each field path to what is wrong with it."""

    def __init__(self, message: str, errors: dict[str, str] | None = None, code: str = "validation_error"):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.code = code


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        path = ".".join(str(part) for part in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        named = NAMED_REASON.match(reason)
        if named:  # a rule across fields names the field to fix: "url: an http monitor needs a 'url'"
            path = ".".join(filter(None, (path, named["field"])))
            reason = named["reason"]
        errors.setdefault(path or "body", reason)
    return errors


def parse(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        fields = ", ".join(sorted(errors))
        raise InvalidInput(f"The request has invalid fields: {fields}.", errors) from None


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The body is not valid JSON ({exc}). Send a JSON document with Content-Type: application/json.",
            code="malformed_json",
        ) from None


class ErrorBody(BaseModel):
    """What every error answer of the API carries (invariant 5)."""

    error: str = Field(description="machine-readable code, e.g. validation_error, not_found")
    message: str = Field(description="what was wrong and what to do")
    errors: dict[str, str] | None = Field(None, description="field -> reason, for invalid input")

