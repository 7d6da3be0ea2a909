"""Request and response bodies of the OpenAI-compatible API: the one place they are declared.

Requests are validated here, at the boundary, so that no out-of-range number ever reaches
native code. Unknown fields are accepted and ignored, as OpenAI-compatible clients send
many optional ones.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from mingyan.engine.base import SamplingParams

MAX_STOPS = 16
MAX_STOP_CHARS = 256
MAX_TOKENS_LIMIT = 1 << 20


# Ranges native code can take, shared by the OpenAI requests and conversation settings.
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
TopP = Annotated[float, Field(gt=0.0, le=1.0)]
TopK = Annotated[int, Field(ge=0, le=1000)]
MinP = Annotated[float, Field(ge=0.0, le=1.0)]
Seed = Annotated[int, Field(ge=-(2**63), le=2**64 - 1)]
RepeatPenalty = Annotated[float, Field(gt=0.0, le=10.0)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


def check_stops(value: str | list[str] | None) -> str | list[str] | None:
    stops = [value] if isinstance(value, str) else value or []
    if len(stops) > MAX_STOPS:
        raise ValueError(f"at most {MAX_STOPS} stop sequences are allowed")
    if any(len(s) > MAX_STOP_CHARS for s in stops):
        raise ValueError(f"each stop sequence must be at most {MAX_STOP_CHARS} characters")
    return value


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def as_template_dict(self) -> dict[str, str]:
        role = "system" if self.role == "developer" else self.role
        return {"role": role, "content": self.text()}


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class SamplingFields(OpenAIBaseModel):
    """Fields shared by chat and text completions, with the ranges native code can take."""

    model: str | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    temperature: Temperature = 0.7
    top_p: TopP = 0.95
    top_k: TopK = 40
    min_p: MinP = 0.05
    seed: Seed | None = None
    repeat_penalty: RepeatPenalty = 1.0
    presence_penalty: Penalty = 0.0
    frequency_penalty: Penalty = 0.0
    stop: str | list[str] | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        return check_stops(value)

    def sampling(self) -> SamplingParams:
        stops = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            seed=None if self.seed is None else self.seed % (2**64),
            repeat_penalty=self.repeat_penalty,
            presence_penalty=self.presence_penalty,
            frequency_penalty=self.frequency_penalty,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            stop=tuple(s for s in stops if s),
        )


class ChatCompletionRequest(SamplingFields):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]


class CompletionRequest(SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    echo: bool = False

    @model_validator(mode="after")
    def _plain_prompt(self) -> CompletionRequest:
        if isinstance(self.prompt, list):
            self.prompt = self.prompt[0]
        return self


# -- responses ------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


class PromptTokensDetails(OpenAIBaseModel):
    cached_tokens: int = 0


class UsageInfo(OpenAIBaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class AssistantMessage(OpenAIBaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(OpenAIBaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None


class ChatCompletion(OpenAIBaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo


class ChatDelta(OpenAIBaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(OpenAIBaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: str | None = None


class ChatCompletionChunk(OpenAIBaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None


class TextChoice(OpenAIBaseModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: None = None


class Completion(OpenAIBaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageInfo | None = None


class ModelCard(OpenAIBaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mingyan"
    context_length: int | None = None


class ModelList(OpenAIBaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(OpenAIBaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(OpenAIBaseModel):
    error: ErrorDetail


class Health(OpenAIBaseModel):
    status: Literal["ok"] = "ok"
    model: str
    active_requests: int
    queued_requests: int
    generated_tokens_total: int


# -- mingyan's own API (/api): conversations ------------------------------------------------
# Unknown fields are refused here (unlike /v1): these are our own clients, and a typo must not
# be silently ignored.

MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 20_000
MAX_MESSAGE_CHARS = 100_000


class ApiModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerationSettings(ApiModel):
    """A conversation's sampling settings; a message can override any of them."""

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    repeat_penalty: RepeatPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    max_tokens: MaxTokens | None = None
    stop: list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: list[str] | None) -> list[str] | None:
        check_stops(value)
        return [s for s in value if s] if value is not None else None

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


Title = Annotated[str, Field(max_length=MAX_TITLE_CHARS)]
SystemPrompt = Annotated[str, Field(max_length=MAX_SYSTEM_PROMPT_CHARS)]
MessageText = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class ConversationCreate(ApiModel):
    title: Title = ""
    system_prompt: SystemPrompt | None = None
    settings: GenerationSettings = Field(default_factory=GenerationSettings)


class ConversationUpdate(ApiModel):
    """Only the fields present change. `system_prompt: null` removes the system prompt."""

    title: Title | None = None
    pinned: bool | None = None
    archived: bool | None = None
    system_prompt: SystemPrompt | None = None
    settings: GenerationSettings | None = None


class ReplyOptions(ApiModel):
    settings: GenerationSettings | None = None  # overrides for this reply only
    stream: bool = True


class MessageCreate(ReplyOptions):
    content: MessageText
    parent_id: str | None = None  # default: the conversation's current leaf

    _blank = field_validator("content")(_not_blank)


class MessageEdit(ReplyOptions):
    content: MessageText

    _blank = field_validator("content")(_not_blank)


class BranchSwitch(ApiModel):
    message_id: str


class _Stored(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_serializer("created_at", "updated_at", check_fields=False)
    def _utc(self, value: datetime) -> str:
        # SQLite gives naive datetimes (written as UTC); PostgreSQL aware ones.
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class MessageOut(_Stored):
    id: str
    conversation_id: str
    parent_id: str | None
    role: str
    content: str
    status: str
    created_at: datetime
    updated_at: datetime
    model_name: str | None = None
    model_sha256: str | None = None
    sampling: dict[str, Any] | None = None
    seed: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    ttft_ms: int | None = None
    duration_ms: int | None = None
    omitted_turns: int | None = None
    error: str | None = None


class ConversationOut(_Stored):
    id: str
    title: str
    model: str
    system_prompt: str | None
    settings: dict[str, Any]
    pinned: bool
    archived: bool
    current_leaf_id: str | None
    created_at: datetime
    updated_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut]  # the whole tree, oldest first
    current_path: list[str]  # ids from the root to the current leaf
    live: list[str]  # ids of replies being generated right now (attach to their events)


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationOut]
    has_more: bool


class ExchangeOut(BaseModel):
    user_message: MessageOut | None
    message: MessageOut
    omitted_turns: int


class SearchHitOut(_Stored):
    conversation_id: str
    conversation_title: str
    message_id: str | None  # None: the title matched
    role: str | None
    snippet: str
    match: list[tuple[int, int]]  # [start, end) offsets of the query terms inside `snippet`
    updated_at: datetime
    archived: bool


class SearchResults(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchHitOut]
    has_more: bool


class ImportResultOut(BaseModel):
    conversation_ids: list[str]
    message_count: int
    remapped: int  # conversations given new ids because theirs were taken
    skipped: dict[str, int]  # what the file held that mingyan does not keep (ChatGPT tool messages, images)


# -- accounts, keys, usage, admin ---------------------------------------------------------------

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


class UserOut(_Stored):
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


class KeyOut(_Stored):
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
