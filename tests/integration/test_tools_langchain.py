"""A real agent framework against a running mingyan: LangChain's ChatOpenAI with bind_tools
runs a two-tool task (both tools called with valid arguments, results sent back, a final
answer in words)."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from tests.conftest import QWEN, start_server, stop_server

pytestmark = pytest.mark.timeout(1800)


@tool
def get_weather(city: str) -> str:
    """获取指定城市的当前天气 / Get the current weather of a city."""
    return f"{city}: 晴, 23°C"


@tool
def convert_currency(amount: float, currency_from: str, currency_to: str) -> str:
    """货币换算 / Convert an amount of money from one currency code to another (e.g. USD, CNY)."""
    rates = {("USD", "CNY"): 7.1}
    return f"{amount * rates.get((currency_from.upper(), currency_to.upper()), 1.0):.2f} {currency_to}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("langchain"), None)
    yield srv
    stop_server(srv)


def test_langchain_agent_calls_both_tools_and_finishes(server):
    llm = ChatOpenAI(
        model=QWEN,
        base_url=server.base_url,
        api_key="unused",
        temperature=0,
        max_tokens=300,
        timeout=1200,
        max_retries=0,
    )
    tools = {t.name: t for t in (get_weather, convert_currency)}
    messages = [HumanMessage("查一下北京的天气，再把100美元换算成人民币（CNY）。")]
    ai = llm.bind_tools(list(tools.values()), tool_choice="any").invoke(messages)
    names = [call["name"] for call in ai.tool_calls]
    assert set(names) == set(tools), ai  # one call per tool (parallel calls)
    messages.append(ai)
    for call in ai.tool_calls:
        result = tools[call["name"]].invoke(call["args"])  # LangChain validates the arguments
        messages.append(ToolMessage(result, tool_call_id=call["id"]))
    final = llm.bind_tools(list(tools.values()), tool_choice="none").invoke(messages)
    assert not final.tool_calls and isinstance(final.content, str) and final.content.strip()
