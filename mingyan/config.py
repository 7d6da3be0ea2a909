"""Settings, declared once. Environment variables are MINGYAN_<FIELD>; CLI flags override them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir, user_data_dir
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small"
# A system message for `--system-prompt` (docs/safety.md, "Over-refusal"): small instruct models,
# the default coder model above all, refuse ordinary questions outside their speciality without one.
# Not on by default until its effect on every quality check is measured (docs/safety.md).
SUGGESTED_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer questions on any subject (everyday life, history, science, "
    "health, safety, law, news, writing and programming) accurately and concisely, in the user's language."
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Everything configurable about a mingyan process."""

    model_config = SettingsConfigDict(env_prefix="MINGYAN_", extra="ignore")

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on")
    model: str = Field(DEFAULT_MODEL, description="model name (see `mingyan models list`)")
    models: list[str] = Field(
        default_factory=list,
        description="more models served beside --model (repeat --model), each loaded on first use",
    )
    models_memory_mb: int = Field(
        0,
        ge=0,
        description="memory for loaded models (MiB; their files' sizes): the least recently used idle "
        "one is unloaded to make room (0: no limit)",
    )
    keep_alive_s: float = Field(
        300.0, gt=0, le=1e7, description="unload a model (other than the first) idle for this long (seconds)"
    )
    upstream: list[str] = Field(
        default_factory=list,
        description="a model served by another OpenAI-compatible server, NAME=URL[#ITS_MODEL_NAME] "
        "(such as big=http://gpu-box:8000/v1)",
    )
    upstream_api_key: SecretStr | None = Field(
        None, description="bearer key sent to the upstream servers (prefer the env var: flags show in ps)"
    )
    ray: str | None = Field(
        None,
        description="run the models' engines as replicas on a Ray cluster: its address (HOST:PORT), 'auto' "
        "(the cluster this machine has joined) or 'local' (start one in this process); needs mingyan[ray]",
    )
    ray_replicas: int = Field(1, ge=1, le=1024, description="engine replicas of each model on Ray (with --ray)")
    ray_model_replicas: list[str] = Field(
        default_factory=list,
        description="replicas of one model on Ray instead of --ray-replicas, NAME=N (such as big=4)",
    )
    ray_replica_resources: list[str] = Field(
        default_factory=list,
        description="Ray resources a replica asks for, NAME=AMOUNT[,NAME=AMOUNT] (replica i takes the i-th "
        "given, cycling; default: replicas spread over the nodes)",
    )
    embedding_model: str = Field(
        DEFAULT_EMBEDDING_MODEL,
        description="model served at /v1/embeddings beside the chat model ('none': no embeddings)",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("mingyan")),
        description="registry of added/pulled models",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(user_cache_dir("mingyan")),
        description="where shipped models are assembled",
    )
    n_ctx: int = Field(4096, ge=64, le=1 << 20, description="context per slot: the longest conversation, in tokens")
    n_slots: int = Field(0, ge=0, le=64, description="requests decoded together (0: from cores and memory)")
    prefill_chunk: int = Field(128, ge=8, le=8192, description="prompt tokens per step while others are generating")
    max_queue: int = Field(64, ge=1, le=100000, description="requests that may wait; more get 429")
    cache_ram_mb: int = Field(512, ge=0, description="RAM for saved conversation KV states (MiB)")
    cache_disk_mb: int = Field(4096, ge=0, description="disk for saved KV states, kept across restarts (MiB)")
    kv_dir: Path | None = Field(None, description="where saved KV states go (default: <cache-dir>/kv)")
    n_threads: int = Field(
        default_factory=_default_threads, ge=1, le=1024, description="CPU threads (default: all cores)"
    )
    n_batch: int = Field(512, ge=16, le=8192, description="prompt tokens per decode call")
    speculative: bool = Field(
        True, description="prompt-lookup speculative decoding: guess the next tokens from the text so far"
    )
    max_draft: int = Field(16, ge=1, le=64, description="speculative tokens guessed per stream and step, at most")
    draft_model: str = Field(
        "auto",
        max_length=200,
        description="a registered model of the same vocabulary that drafts tokens for the served one ('auto': the "
        "shipped Qwen2.5 0.5B for a larger Qwen2.5 model; 'none': no draft model, also --no-draft-model)",
    )
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the history database (default: SQLite in the data dir)"
    )
    api_key: SecretStr | None = Field(
        None, description="require this key on /v1 (prefer the env var: flags show in ps)"
    )
    session_hours: int = Field(24 * 7, ge=1, le=24 * 365, description="how long a web login lasts (hours)")
    quota_requests_per_minute: int = Field(
        60, ge=0, description="default requests per minute for each account and key (0: no limit)"
    )
    quota_tokens_per_day: int = Field(0, ge=0, description="default tokens per UTC day for each account (0: no limit)")
    quota_concurrent_streams: int = Field(
        4, ge=0, description="default replies running at once for each account and key (0: no limit)"
    )
    system_prompt: str = Field(
        "",
        max_length=20000,
        description="system message for chats that bring none (/v1 requests, conversations without one; '': none)",
    )
    auto_titles: bool = Field(True, description="name new conversations with the model after the first reply")
    api_replicas: bool = Field(
        False,
        description="other mingyan processes serve from the same PostgreSQL database: at startup only "
        "replies not saved for 120 s are taken as cut off (without it, every reply left streaming is)",
    )
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest request body")
    max_import_bytes: int = Field(
        256 * 1024 * 1024, ge=1024, description="largest history file POST /api/import accepts"
    )
    max_file_mb: int = Field(20, ge=1, le=4096, description="largest file POST /api/files accepts (MiB)")
    max_file_pages: int = Field(1000, ge=1, le=100000, description="most pages a document may have")
    file_storage_mb: int = Field(1024, ge=0, description="storage for each user's uploaded files (MiB; 0: no limit)")
    drain_timeout: float = Field(
        20.0,
        ge=0,
        le=3600,
        description="on SIGTERM, seconds running replies get to finish before they are saved as interrupted",
    )
    stream_buffer_kb: int = Field(
        256,
        ge=1,
        le=1 << 20,
        description="events queued for a streaming client that does not read (KiB); beyond it the stream is cut",
    )
    memory_trim_s: float = Field(
        60.0,
        ge=0,
        le=86400,
        description="seconds between giving freed memory back to the OS (glibc malloc_trim; 0: never)",
    )
    hf_endpoint: str = Field("https://huggingface.co", description="base URL for `repo/file` pulls")
    header_timeout_s: int = Field(
        10, ge=1, le=3600, description="close a connection whose request line and headers take longer (seconds)"
    )
    api_docs: bool = Field(
        False, description="serve the interactive API reference at /docs (Swagger UI, shipped with mingyan)"
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="reverse proxies (comma-separated addresses or networks) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed (default: none; the headers are ignored)",
    )

    # Tools in stored conversations (MCP servers; docs/tools.md, "Limits").
    tool_call_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="seconds a tool call may take before it becomes an error result"
    )
    tool_list_timeout_s: float = Field(15.0, gt=0, le=600, description="seconds listing a tool server's tools may take")
    tool_result_chars: int = Field(
        16_000, ge=100, le=1_000_000, description="a tool result longer than this (characters) is cut"
    )
    tool_max_steps: int = Field(
        4, ge=2, le=16, description="model turns in one reply's tool loop (the last answers in words)"
    )
    tool_approval_timeout_s: float = Field(
        120.0, gt=0, le=86400, description="seconds a side-effecting call waits for approval; then it is denied"
    )

    # Content safety (mingyan.safety): per category, off (not checked), log (counted, audited) or block.
    moderation_violence: Literal["off", "log", "block"] = Field("block", description="content policy: violence")
    moderation_weapons: Literal["off", "log", "block"] = Field(
        "block", description="content policy: weapons and explosives"
    )
    moderation_self_harm: Literal["off", "log", "block"] = Field(
        "block", description="content policy: self-harm methods"
    )
    moderation_fraud: Literal["off", "log", "block"] = Field("block", description="content policy: fraud")
    moderation_minors: Literal["off", "log", "block"] = Field(
        "block", description="content policy: sexual content involving minors"
    )
    moderation_hate: Literal["off", "log", "block"] = Field("block", description="content policy: hate")
    moderation_judge: Literal["off", "log", "block"] = Field(
        "off",
        description="the model judge: the served model also classifies each prompt the keywords let through "
        "(log: counted and audited; block: refused where the policy blocks the category)",
    )
    moderation_classifier: Literal["off", "log", "block"] = Field(
        "off",
        description="the trained safety classifier (on the embedding model) scores each prompt the keywords "
        "let through, before the judge (log: counted and audited; block: refused where the policy blocks "
        "the category); needs the embedding model it was trained on",
    )
    retention_days: int = Field(
        0, ge=0, le=36500, description="delete conversations not updated for this many days, hourly (0: keep)"
    )
    ai_provider: str = Field(
        "mingyan", min_length=1, max_length=100, description="service provider named in AI-generated labels"
    )
    ai_label_on_copy: bool = Field(
        False, description="the web chat adds the AI-generated notice to text copied from a reply"
    )

    @field_validator("data_dir", "cache_dir", "kv_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")
