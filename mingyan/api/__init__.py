"""The HTTP API (FastAPI). `app.create_app()` builds everything; `context.AppContext` holds the running pieces.

Routers, thin (parse → call a service → serialize): `openai_routes` (/v1: chat and text completions,
models), `embedding_routes` (/v1/embeddings, with `embeddings`), `conversation_routes` and
`history_routes` (/api: stored conversations, search, export and import), `account_routes` and
`admin_routes` (/api/auth, /api/keys, /api/usage, /api/admin), `service_routes` (/health, /metrics),
`web` (the static web chat and the optional API docs). Around them: `auth` (who is asking), `metering`
(admission: quotas, then the engine), `chat_chunks` and `logprobs` (response shapes), `streaming` and
`backpressure` (SSE with bounded buffers), `drain` (refusing new work before shutdown), `errors`
(OpenAI-style error bodies), `middleware` (body size, NUL, nosniff), `header_timeout`, `metrics`
(Prometheus), `audit`, and `schemas/` (request and response bodies by area).
"""
