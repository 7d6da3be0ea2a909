"""An MCP server for the tests, written with the SDK's MCPServer (FastMCP in mcp 1.x).

`python tests/mcp_test_server.py [--tools a,b]` serves over stdio; `... http PORT` over streamable HTTP on
127.0.0.1 (requests without `Authorization: Bearer test-token` get 401 when `--auth` is given).
Tools: `get_weather` (a fixed, recognizable answer), `environment` (the names of its own
environment variables), `hang` (never answers), `send_email` (a side effect: appends to a file
named by argv), `add`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer

WEATHER = "晴，25°C，微风 (sunny, 25 C, light breeze) [weather-probe-7731]"
TOKEN = "test-token"


def build(outbox: Path | None) -> MCPServer:
    app = MCPServer("mingyan-tests")

    @app.tool()
    def get_weather(city: str) -> str:
        """Get today's weather for a city. 查询城市今天的天气。"""
        return f"{city}: {WEATHER}"

    @app.tool()
    def environment() -> str:
        """The names and values of this tool server's environment variables."""
        return "\n".join(f"{k}={v}" for k, v in sorted(os.environ.items()))

    @app.tool()
    async def hang() -> str:
        """Never answers."""
        await anyio.sleep(3600)
        return "never"

    @app.tool()
    def send_email(to: str, body: str) -> str:
        """Send an email."""
        if outbox is not None:
            with outbox.open("a") as file:
                file.write(f"{to}\t{body}\n")
        return f"sent to {to}"

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    return app


def main(argv: list[str]) -> None:
    outbox = Path(os.environ["OUTBOX"]) if "OUTBOX" in os.environ else None
    if "--outbox" in argv:
        outbox = Path(argv[argv.index("--outbox") + 1])
    app = build(outbox)
    if "--tools" in argv:  # offer only these (a small model picks better among few tools)
        keep = set(argv[argv.index("--tools") + 1].split(","))
        for name in [t.name for t in app._tool_manager.list_tools()]:
            if name not in keep:
                app.remove_tool(name)
    if argv[:1] == ["http"]:
        starlette = app.streamable_http_app()
        if "--auth" in argv:
            starlette.add_middleware(_BearerOnly)
        import uvicorn

        uvicorn.run(starlette, host="127.0.0.1", port=int(argv[1]), log_level="warning")
    else:
        app.run()


class _BearerOnly:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != f"Bearer {TOKEN}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


if __name__ == "__main__":
    main(sys.argv[1:])
