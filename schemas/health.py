"""GET /v1/health-check: is the engine serving."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Health(BaseModel):
    """200 when every partition has a worker and every incident engine is ready; else 503, same body.

    Without the internal token only `status`: the rest would map the deployment for a stranger.
    """

    status: str = Field(description="ok or degraded")
    partitions: int | None = Field(None, description="with the internal token only")
    partitions_served: int | None = Field(None, description="with the internal token only")
    workers: list[str] | None = Field(None, description="with the internal token only")
    incident_engine: dict[str, Any] | None = Field(None, description="with the internal token only")
