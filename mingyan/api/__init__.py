"""The HTTP API (FastAPI). `app.create_app()` builds everything; `context.AppContext` holds the running pieces.

Routers, thin (parse → call a service → serialize): `openai_routes` (/v1: chat and text completions,
models), `conversation_routes` and `history_routes` (/api: stored conversations, search, export and
import), `account_routes` and `admin_routes` (/api/auth, /api/keys, /api/usage, /api/admin), `web`
(the static web chat). Around them: `auth` (who is asking), `metering` (admission: quotas, then the
engine), `streaming` (SSE), `errors` (OpenAI-style error bodies), `middleware` (body size, NUL),
`metrics` (Prometheus), `audit`, and `schemas/` (request and response bodies by area).
"""
