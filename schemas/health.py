"""GET /v1/health-check: is the engine serving."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    """200 when every partition has a worker and every incident engine is ready; else 503, same body."""

    status: str = Field(description="ok or degraded")
    partitions: int
    partitions_served: int
    workers: list[str]
    incident_engine: dict[str, Any]
