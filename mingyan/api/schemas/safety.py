"""Bodies of the content-safety routes under /api (labels, reports, keyword banks)."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = ["LabelOptions"]


class LabelOptions(BaseModel):
    provider: str
    on_copy: bool
