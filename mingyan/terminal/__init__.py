"""The terminal chat client: the line loop, in-memory and server-stored sessions, and their backends.

It talks to a mingyan server over HTTP (`/api` stored conversations, or any OpenAI-compatible
`/v1`) or to an in-process engine. Nothing in the server imports it.

- `app`         the line loop and its wiring (options → backend → session)
- `session`     what a session is to the loop; the in-memory session (in-process or /v1)
- `history`     the session inside a server's stored conversations: /list /search /resume ...
- `api_client`  async client for /api (conversations, SSE replies, stop, search)
- `backends`    in-process engine and /v1/chat/completions backends; one-line HTTP errors
- `format`      pure formatting: list rows, search hits with [matches], last turns
"""
