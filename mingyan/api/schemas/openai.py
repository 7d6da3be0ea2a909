"""Request and response bodies of the OpenAI-compatible API (/v1).

Requests are validated here, at the boundary, so that no out-of-range number ever reaches
native code. A top-level request field mingyan does not honour is a 400 naming it
(`refuse_unknown_fields`), except the few harmless ones in HARMLESS_FIELDS; inside nested
objects (messages, tools) unknown keys are ignored, as clients echo back response fields.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mingyan.chat.service import MAX_MESSAGES
from mingyan.engine.base import SamplingParams
from mingyan.errors import InvalidRequestError
from mingyan.formats.tool_calls import ToolChoice, ToolRequest, ToolSpec
from mingyan.sampling import MaxTokens, SamplingSettings, Seed, check_stops

_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_LOGIT_BIAS = 1024
MAX_TOP_LOGPROBS = 20
MAX_TOOLS = 128

# Top-level request fields accepted without effect, because ignoring them changes nothing a
# client can observe: `metadata` (labels for OpenAI's dashboard), `service_tier`, and the
# caching/abuse hints `prompt_cache_key` and `safety_identifier`. `store` is honoured when it
# is false (mingyan keeps no copy of /v1 completions) and refused when true.
HARMLESS_FIELDS = frozenset({"metadata", "service_tier", "prompt_cache_key", "safety_identifier"})


def _valid_unicode(value: object) -> object:
    """Refuse lone surrogates ("\\ud800" in JSON): no tokenizer or database can take them."""
    texts = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    for text in texts:
        if isinstance(text, str) and _SURROGATE.search(text):
            raise ValueError("the text holds a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode")
    return value


class OpenAIBaseModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    _unicode = field_validator("*", mode="after")(_valid_unicode)


class TextPart(OpenAIBaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(OpenAIBaseModel):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCallIn(OpenAIBaseModel):
    id: str = ""
    type: Literal["function"] = "function"
    function: FunctionCall

    @field_validator("function")
    @classmethod
    def _json_arguments(cls, value: FunctionCall) -> FunctionCall:
        try:
            parsed = json.loads(value.arguments or "{}")
        except ValueError as exc:
            raise ValueError("function.arguments must be a JSON object in a string") from exc
        if not isinstance(parsed, dict):
            raise ValueError("function.arguments must be a JSON object in a string")  # noqa: TRY004 (pydantic wants ValueError)
        return value


class ChatMessage(OpenAIBaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: Annotated[list[ToolCallIn], Field(max_length=MAX_TOOLS)] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content_or_calls(self) -> ChatMessage:
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (it may be null only on an assistant message with tool_calls)")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id it answers")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def as_template_dict(self) -> dict[str, Any]:
        role = "system" if self.role == "developer" else self.role
        out: dict[str, Any] = {"role": role, "content": self.text()}
        if self.tool_calls:
            out["tool_calls"] = [c.model_dump() for c in self.tool_calls]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


class FunctionSpec(OpenAIBaseModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{1,64}$")]
    description: Annotated[str, Field(max_length=8192)] | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None  # calls always follow the schema exactly (grammar), strict or not


class ToolIn(OpenAIBaseModel):
    type: Literal["function"]
    function: FunctionSpec


class NamedFunction(OpenAIBaseModel):
    name: str


class NamedToolChoice(OpenAIBaseModel):
    type: Literal["function"]
    function: NamedFunction


class JsonSchemaFormat(OpenAIBaseModel):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None  # the reply always follows the schema exactly (grammar), strict or not


class ResponseFormat(OpenAIBaseModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a json_schema object")
        return self


class StreamOptions(OpenAIBaseModel):
    include_usage: bool = False


class SamplingFields(OpenAIBaseModel, SamplingSettings):
    """Fields shared by chat and text completions: the sampling fields of mingyan.sampling (ranges
    and defaults declared there), and OpenAI's own."""

    model_config = ConfigDict(extra="ignore", frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
            unknown = sorted(k for k in data if k not in known and k not in HARMLESS_FIELDS)
            if data.get("store"):
                unknown = sorted({*unknown, "store"})
            elif "store" in data:
                unknown = [k for k in unknown if k != "store"]
            if unknown:  # not a ValueError: it reaches the 400 handler with `param` set
                raise InvalidRequestError(
                    f"Unsupported field(s): {', '.join(unknown)}. mingyan does not honour "
                    "them, so it refuses the request rather than ignore them.",
                    param=unknown[0],
                    code="unsupported_parameter",
                )
        return data

    model: str | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    seed: Seed | None = None
    stop: str | list[str] | None = None
    n: Annotated[int, Field(ge=1, le=1)] = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None

    @field_validator("stop")
    @classmethod
    def _check_stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        return check_stops(value)

    @field_validator("logit_bias")
    @classmethod
    def _check_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and len(value) > MAX_LOGIT_BIAS:
            raise ValueError(f"at most {MAX_LOGIT_BIAS} tokens can be biased")
        for key in value or {}:
            if not (key.isascii() and key.isdigit() and len(key) < 10):
                raise ValueError(f"keys must be token ids (whole numbers, as strings), not {key[:20]!r}")
        return value

    def bias(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(token), float(bias)) for token, bias in (self.logit_bias or {}).items())

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
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_MESSAGES)]
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None

    @field_validator("top_logprobs")
    @classmethod
    def _needs_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return value

    def engine_options(self) -> dict[str, Any]:
        return {"logit_bias": self.bias(), "logprobs": (self.top_logprobs or 0) if self.logprobs else None}

    tools: Annotated[list[ToolIn], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None

    @model_validator(mode="after")
    def _tools_consistent(self) -> ChatCompletionRequest:
        names = [t.function.name for t in self.tools or []]
        if len(set(names)) != len(names):
            raise ValueError("tools: each function needs its own name")
        if self.tool_choice not in (None, "none") and not names:
            raise ValueError("tool_choice needs tools")
        if isinstance(self.tool_choice, NamedToolChoice) and self.tool_choice.function.name not in names:
            raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not in tools")
        return self

    def tool_request(self) -> ToolRequest | None:
        """The tools and the caller's choice, engine-neutral (None when no tools are given)."""
        if not self.tools:
            return None
        specs = tuple(
            ToolSpec(
                t.function.name,
                t.function.description or "",
                t.function.parameters if t.function.parameters is not None else {"type": "object", "properties": {}},
            )
            for t in self.tools
        )
        choice = self.tool_choice
        if isinstance(choice, NamedToolChoice):
            picked = ToolChoice("named", choice.function.name)
        else:
            picked = ToolChoice(choice or "auto")
        return ToolRequest(specs, picked, parallel=self.parallel_tool_calls is not False)

    def response_kind(self) -> tuple[str, dict[str, Any] | None]:
        """`response_format`'s type and schema (`text` when absent)."""
        fmt = self.response_format
        if fmt is None:
            return "text", None
        return fmt.type, fmt.json_schema.schema_ if fmt.json_schema else None


class CompletionRequest(SamplingFields):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    echo: bool = False
    logprobs: Annotated[int, Field(ge=0, le=MAX_TOP_LOGPROBS)] | None = None
    best_of: int | None = None
    suffix: str | None = None

    @field_validator("logprobs")
    @classmethod
    def _not_with_echo(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("echo"):
            raise ValueError("logprobs of the echoed prompt are not supported: drop echo or logprobs")
        return value

    @field_validator("best_of")
    @classmethod
    def _one_best(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise ValueError("only best_of 1 is supported (one completion per request)")
        return value

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value: str | None) -> str | None:
        if value:
            raise ValueError("suffix (text after the insertion) is not supported")
        return value

    def engine_options(self) -> dict[str, Any]:
        return {"logit_bias": self.bias(), "logprobs": self.logprobs}

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


class TopLogprobOut(OpenAIBaseModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut]


class ChatLogprobs(OpenAIBaseModel):
    content: list[TokenLogprobOut] | None = None


class CompletionLogprobs(OpenAIBaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class FunctionCallOut(OpenAIBaseModel):
    name: str
    arguments: str


class ToolCallOut(OpenAIBaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class AssistantMessage(OpenAIBaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = Field(default=None, exclude_if=lambda v: v is None)


class FunctionDelta(OpenAIBaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(OpenAIBaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionDelta


class ChatChoice(OpenAIBaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: ChatLogprobs | None = None


class ChatCompletion(OpenAIBaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: UsageInfo
    ai_label: dict[str, str] | None = Field(default=None, exclude_if=lambda v: v is None)  # mingyan: AI label


class ChatDelta(OpenAIBaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = Field(default=None, exclude_if=lambda v: v is None)


class ChatChunkChoice(OpenAIBaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: str | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(OpenAIBaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: UsageInfo | None = None
    ai_label: dict[str, str] | None = Field(default=None, exclude_if=lambda v: v is None)  # mingyan: AI label


class TextChoice(OpenAIBaseModel):
    index: int = 0
    text: str
    finish_reason: str | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(OpenAIBaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[TextChoice]
    usage: UsageInfo | None = None
    ai_label: dict[str, str] | None = Field(default=None, exclude_if=lambda v: v is None)  # mingyan: AI label


class ModelCard(OpenAIBaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mingyan"
    context_length: int | None = None
    kind: Literal["chat", "embedding"] = "chat"  # mingyan's own: what the model serves
    # mingyan's own, with several models: "loaded", "loading", "unloaded" (loads on first use) or "error"
    status: str | None = None
    loading_s: float | None = None  # while loading: seconds so far


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
    status: Literal["ok", "draining"] = "ok"  # draining: shutting down, new requests get 503
    model: str
    active_requests: int
    queued_requests: int
    generated_tokens_total: int
    engine_errors_total: int = 0  # failed engine steps since start; their requests ended with an error
    last_engine_error: str | None = None  # the latest one, as the requests saw it
    models: list[dict[str, Any]] | None = None  # with several models: each one's state (mingyan.serving)
    replicas: list[dict[str, Any]] | None = None  # with --ray: each engine replica's state (mingyan.serving)
