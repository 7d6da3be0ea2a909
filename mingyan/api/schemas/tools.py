"""Bodies of the tool-server routes (administrators) and of tool approvals (users)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from mingyan.api.schemas.history import ApiModel, StoredModel

ServerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ToolName = Annotated[str, Field(min_length=1, max_length=128)]
HeaderName = Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
HeaderValue = Annotated[str, Field(max_length=4000, pattern=r"^[^\r\n]*$")]


class ToolServerCreate(ApiModel):
    """A stdio server (`command`, `args`: run as a child with a minimal environment) or a
    streamable-HTTP one (`url`, `headers`: kept encrypted, never returned)."""

    name: ServerName
    kind: Literal["stdio", "http"]
    command: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    args: Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=64)] = Field(default_factory=list)
    url: Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\s]+$")] | None = None
    headers: Annotated[dict[HeaderName, HeaderValue], Field(max_length=32)] = Field(default_factory=dict)
    enabled: bool = True
    side_effecting: Annotated[list[ToolName], Field(max_length=256)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_kind(self) -> ToolServerCreate:
        if self.kind == "stdio" and (self.command is None or self.url is not None or self.headers):
            raise ValueError("a stdio server takes command (and args), not url or headers")
        if self.kind == "http" and (self.url is None or self.command is not None or self.args):
            raise ValueError("an http server takes url (and headers), not command or args")
        return self


class ToolServerUpdate(ApiModel):
    enabled: bool | None = None
    side_effecting: Annotated[list[ToolName], Field(max_length=256)] | None = None


class ToolOut(BaseModel):
    name: str
    description: str
    input_schema: dict[str, Any]
    side_effecting: bool


class ToolServerOut(StoredModel):
    """Never holds the headers: `has_headers` says whether there are any."""

    id: str
    name: str
    kind: str
    command: str | None
    args: list[str]
    url: str | None
    has_headers: bool
    enabled: bool
    side_effecting: list[str]
    created_at: datetime
    updated_at: datetime
    tools: list[ToolOut] | None = None  # when listed (test, or list with tools=true)
    error: str | None = None  # why the tools could not be listed


class ToolServerList(BaseModel):
    data: list[ToolServerOut]


class EnabledToolServers(BaseModel):
    """What a user may switch on in a conversation: the enabled servers' names."""

    data: list[str]


class ApprovalDecision(ApiModel):
    approve: bool
