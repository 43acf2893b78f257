"""Lists answer a page at a time (invariant 7): {"data": [...], "meta": PageMeta}."""
from __future__ import annotations

from pydantic import BaseModel, Field


class PageMeta(BaseModel):
    page: int = Field(ge=1, description="this page, from 1")
    per_page: int = Field(ge=1, description="items a page holds")
    total: int = Field(ge=0, description="items in every page together")
    total_pages: int = Field(ge=0)
