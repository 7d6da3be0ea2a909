"""Bodies of the content-safety routes under /api (labels, reports, keyword banks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LabelOptions",
    "ReportCreate",
    "ReportOut",
    "ReportAdminOut",
    "ReportList",
    "ReportQueue",
    "ReportReview",
    "BankOut",
    "BankList",
    "BankUpdate",
    "BankVersionOut",
    "BankHistory",
    "AccountDeletion",
]


class LabelOptions(BaseModel):
    provider: str
    on_copy: bool


ReportReason = Literal[
    "illegal", "violence", "sexual", "minors", "hate", "self_harm", "fraud", "privacy", "false", "other"
]


class ReportCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: str = Field(min_length=1, max_length=32)
    message_id: str | None = Field(None, min_length=1, max_length=32)  # None: the whole conversation
    reason: Literal[
        "illegal", "violence", "sexual", "minors", "hate", "self_harm", "fraud", "privacy", "false", "other"
    ]
    details: str = Field("", max_length=4000)


class ReportOut(BaseModel):
    """What the reporter sees of their report: its status and the administrators' answer."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    conversation_id: str
    message_id: str | None
    reason: str
    details: str
    status: str
    answer: str | None
    hidden: bool
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


class ReportAdminOut(ReportOut):
    """The queue's view: the reported content frozen as it was, who reported it, how long it took."""

    reporter_id: str
    reviewer_id: str | None
    content: list[dict[str, Any]]
    response_seconds: float | None = None  # created → resolved


class ReportList(BaseModel):
    data: list[ReportOut]


class ReportQueue(BaseModel):
    data: list[ReportAdminOut]


class ReportReview(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "in_review", "resolved"] | None = None
    answer: str | None = Field(None, max_length=4000)
    hide: bool = False  # replace the reported content in the reporter's history with a notice


class BankOut(BaseModel):
    category: str
    version: str
    source: Literal["shipped", "edited"]
    phrases: list[str]


class BankList(BaseModel):
    data: list[BankOut]


class BankUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrases: list[str] = Field(max_length=5000)


class BankVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    author: str
    created_at: datetime
    phrases: list[str]


class BankHistory(BaseModel):
    data: list[BankVersionOut]


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=1, max_length=1024)  # the account's password, to confirm
