"""Bodies of the account routes: sign-in, keys, usage, administration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from mingyan.api.schemas.history import ApiModel, StoredModel

Password = Annotated[str, Field(min_length=1, max_length=1024)]
Limit = Annotated[int, Field(ge=1, le=2**31 - 1)]


class LoginRequest(ApiModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Password


class SetupRequest(LoginRequest):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class PasswordChange(ApiModel):
    current_password: Password
    new_password: Password


class UserOut(StoredModel):
    id: str
    username: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class SessionOut(BaseModel):
    user: UserOut
    via: str  # how this request is authenticated: session, api_key, server_key, open
    csrf_token: str | None = None  # only in the answer to login/setup (also set as a cookie)


class AuthStatus(BaseModel):
    accounts: bool  # the server has accounts: sign in
    setup_required: bool  # no accounts yet and a setup token was printed at startup


class Limits(ApiModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)

    requests_per_minute: Limit | None = None
    tokens_per_day: Limit | None = None
    concurrent_streams: Limit | None = None


class KeyCreate(ApiModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    limits: Limits = Field(default_factory=Limits)


class KeyOut(StoredModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    limits: Limits

    @field_serializer("last_used_at", "revoked_at")
    def _utc_optional(self, value: datetime | None) -> str | None:
        return None if value is None else self._utc(value)


class KeyCreated(KeyOut):
    key: str  # shown once


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]


class UsageTotalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: str | None
    username: str
    requests: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class UsageReport(BaseModel):
    object: Literal["list"] = "list"
    since: datetime | None
    data: list[UsageTotalOut]


class UserCreate(ApiModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Password
    role: Literal["admin", "user"] = "user"


class UserUpdate(ApiModel):
    role: Literal["admin", "user"] | None = None
    disabled: bool | None = None
    password: Password | None = None  # an administrator's reset


class UserList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UserOut]


class QuotaOut(BaseModel):
    overrides: Limits  # the user's own values (null: the server default)
    effective: Limits  # what applies (null: no limit)


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_id: str | None
    actor_name: str
    event: str
    target: str
    ip: str | None
    details: dict[str, Any]


class AuditLog(BaseModel):
    object: Literal["list"] = "list"
    data: list[AuditEntryOut]
    has_more: bool
