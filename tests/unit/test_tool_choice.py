"""The tools switch is stored per conversation (`settings.tools`): validated on create and update,
returned with the conversation, used by messages sent without `tools`, replaced by a message's
explicit `tools` (`[]` too), kept by export and import. Real HTTP, real SQLite, the test MCP
server over stdio, a fake engine writing the calls."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.unit.test_tool_loop import call, events, serving

REPLIES = [
    call("get_weather", city="北京"),  # 1: stored choice, no `tools` in the request
    "北京今天晴。",
    "no tools now",  # 2: `tools: []` switches them off
    "still none",  # 3: no `tools`: the stored (empty) choice
    call("get_weather", city="上海"),  # 4: `tools: ["local"]` switches them on again
    "上海今天晴。",
]


def post(client: httpx.Client, cid: str, body: dict) -> list[dict]:
    with client.stream("POST", f"/api/conversations/{cid}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        return list(events(r))


def kinds(seen: list[dict]) -> set[str]:
    return {e["type"] for e in seen}


def stored_tools(client: httpx.Client, cid: str) -> list[str] | None:
    return client.get(f"/api/conversations/{cid}").json()["settings"].get("tools")


def test_the_switch_is_stored_used_and_replaced_by_a_messages_tools(tmp_path: Path) -> None:
    with serving(tmp_path, REPLIES) as (client, setup):
        r = client.post("/api/conversations", json={"settings": {"temperature": 0.5, "tools": ["local", "local"]}})
        assert r.status_code == 201, r.text
        cid = r.json()["id"]
        assert r.json()["settings"] == {"temperature": 0.5, "tools": ["local"]}
        assert stored_tools(client, cid) == ["local"]
        seen = post(client, cid, {"content": "北京天气？"})  # no `tools`: the stored choice
        assert {"tool_call", "tool_result"} <= kinds(seen) and seen[-1]["message"]["content"] == "北京今天晴。"
        seen = post(client, cid, {"content": "no tools", "tools": []})
        assert "tool_call" not in kinds(seen) and seen[-1]["message"]["content"] == "no tools now"
        detail = client.get(f"/api/conversations/{cid}").json()
        assert detail["settings"] == {"temperature": 0.5}  # switched off, the other settings kept
        seen = post(client, cid, {"content": "again"})
        assert "tool_call" not in kinds(seen) and seen[-1]["message"]["content"] == "still none"
        described = [setup.engine.detokenize(q.prompt_tokens) for q in setup.engine.requests]
        assert ["get_weather" in p for p in described] == [True, True, False, False]  # no tools offered
        seen = post(client, cid, {"content": "上海天气？", "tools": ["local"]})
        assert "tool_result" in kinds(seen) and seen[-1]["message"]["content"] == "上海今天晴。"
        assert stored_tools(client, cid) == ["local"]
        # a request naming a server that is not there changes nothing and writes nothing
        before = len(client.get(f"/api/conversations/{cid}").json()["messages"])
        bad = client.post(f"/api/conversations/{cid}/messages", json={"content": "x", "tools": ["nope"]})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "tools"
        assert stored_tools(client, cid) == ["local"]
        assert len(client.get(f"/api/conversations/{cid}").json()["messages"]) == before
        # export and import keep the choice
        exported = client.get(f"/api/conversations/{cid}/export")
        assert exported.json()["conversations"][0]["settings"]["tools"] == ["local"]
        imported = client.post("/api/import", content=exported.content)
        assert imported.status_code == 201, imported.text
        assert stored_tools(client, imported.json()["conversation_ids"][0]) == ["local"]


def test_only_enabled_servers_can_be_chosen_and_a_disabled_one_is_left_out(tmp_path: Path) -> None:
    with serving(tmp_path, ["plain reply", "plain again"]) as (client, setup):
        bad = client.post("/api/conversations", json={"settings": {"tools": ["nope"]}})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "settings.tools"
        assert "'nope'" in bad.json()["error"]["message"]
        assert client.get("/api/conversations").json()["data"] == []  # nothing written
        bad = client.post("/api/conversations", json={"settings": {"tools": ["bad name!"]}})
        assert bad.status_code == 400
        cid = client.post("/api/conversations", json={}).json()["id"]
        r = client.patch(f"/api/conversations/{cid}", json={"settings": {"top_k": 5, "tools": ["local"]}})
        assert r.status_code == 200 and r.json()["settings"] == {"top_k": 5, "tools": ["local"]}
        servers = {s["name"]: s["id"] for s in client.get("/api/admin/tool-servers").json()["data"]}
        assert client.patch(f"/api/admin/tool-servers/{servers['local']}", json={"enabled": False}).is_success
        # stored before the server was disabled: kept, and accepted again with the other settings
        r = client.patch(f"/api/conversations/{cid}", json={"settings": {"top_k": 6, "tools": ["local"]}})
        assert r.status_code == 200, r.text
        other = client.post("/api/conversations", json={}).json()["id"]
        bad = client.patch(f"/api/conversations/{other}", json={"settings": {"tools": ["local"]}})
        assert bad.status_code == 400 and "'local'" in bad.json()["error"]["message"]
        assert stored_tools(client, other) is None
        # a message without `tools` leaves the disabled server out: a plain reply
        seen = post(client, cid, {"content": "hi"})
        assert "tool_call" not in kinds(seen) and seen[-1]["message"]["content"] == "plain reply"
        assert "get_weather" not in setup.engine.detokenize(setup.engine.requests[-1].prompt_tokens)
        # a message's own settings cannot carry tools (they are the request's `tools`)
        bad = client.post(f"/api/conversations/{cid}/messages", json={"content": "x", "settings": {"tools": []}})
        assert bad.status_code == 400
