"""Every error leaves the API as {"error": code, "message": text[, "errors": {field: reason}]}."""
from __future__ import annotations

import logging

from aiohttp import web
from aiokafka.errors import KafkaError

from api.gateway import EngineUnavailable
from engine.responses import error_response
from schemas.validation import InvalidInput

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, errors: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors
        self.headers = headers


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.errors, exc.headers)
    except InvalidInput as exc:
        status = 400 if exc.code == "malformed_json" else 422
        return error_response(status, exc.code, exc.message, exc.errors)
    except EngineUnavailable as exc:
        if exc.retry_after is not None:
            return error_response(503, "rescaling", f"{exc}. Retry in {exc.retry_after} seconds.", None,
                                  {"Retry-After": str(exc.retry_after)})
        return error_response(503, "unavailable", f"{exc}. Retry in a few seconds.", None, {"Retry-After": "2"})
    except KafkaError as exc:  # a write the broker refused: nothing was acknowledged, so never a 202
        log.warning("Kafka refused a write for %s %s: %r", request.method, request.path, exc)
        return error_response(503, "unavailable", f"Kafka did not take the request ({type(exc).__name__}); "
                              "nothing was acknowledged. Retry in a few seconds.", None, {"Retry-After": "2"})
    except web.HTTPException as exc:
        if exc.status >= 400:
            code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(exc.status, "http_error")
            return error_response(exc.status, code, exc.reason if exc.status != 404 else
                                  f"No route {request.method} {request.path}: see /v1/openapi.json")
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
