"""OpenAI-compatible HTTP API. `create_app()` in `app` builds everything."""
