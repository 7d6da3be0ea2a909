"""Grammar-constrained decoding in the llama.cpp engine, with the real SmolLM2 model."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from mingyan.bootstrap import open_registry
from mingyan.chat.prompt import chat_prompt_tokens
from mingyan.config import Settings
from mingyan.engine.base import (
    Constraint,
    FinishReason,
    GenerationRequest,
    SamplingParams,
)
from mingyan.engine.llamacpp.engine import EngineConfig, LlamaCppEngine
from mingyan.errors import InvalidRequestError
from mingyan.formats.grammar import json_object_grammar, schema_grammar
from tests.conftest import SMOLLM

SCHEMAS = [
    {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp_c": {"type": "integer"}, "sunny": {"type": "boolean"}},
        "required": ["city", "temp_c", "sunny"],
    },
    {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 2, "maxItems": 4},
    {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no"]}, "why": {"type": "string", "maxLength": 40}},
        "required": ["answer"],
        "additionalProperties": False,
    },
    {
        "$defs": {
            "p": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": ["integer", "null"]}},
                "required": ["name", "age"],
            }
        },
        "type": "object",
        "properties": {"people": {"type": "array", "items": {"$ref": "#/$defs/p"}, "maxItems": 3}},
        "required": ["people"],
    },
]


@pytest.fixture(scope="module")
def engine():
    entry = open_registry(Settings(), progress=False).resolve(SMOLLM)
    eng = LlamaCppEngine(
        entry.path,
        name=SMOLLM,
        sha256=entry.sha256,
        config=EngineConfig(n_ctx=1024, n_threads=2, n_slots=1, cache_disk_bytes=0),
    )
    yield eng
    eng.close()


def ask(engine, text: str, constraint: Constraint | None, **sampling) -> tuple[str, FinishReason]:
    tokens = chat_prompt_tokens(engine, engine.chat_template, [{"role": "user", "content": text}])
    params = SamplingParams(**({"temperature": 0.0, "max_tokens": 120, "constraint": constraint} | sampling))

    async def run():
        parts, reason = [], None
        stream = engine.generate(GenerationRequest(tuple(tokens), params))
        try:
            async for event in stream:
                parts.append(event.text)
                reason = event.finish_reason or reason
        finally:
            await stream.aclose()
        return "".join(parts), reason

    return asyncio.run(run())


@pytest.mark.parametrize("schema", SCHEMAS)
def test_output_under_a_schema_grammar_parses_and_validates(engine, schema):
    text, reason = ask(
        engine, "Give me some example data as JSON.", Constraint(schema_grammar(schema)), temperature=0.8, seed=7
    )
    assert reason is FinishReason.STOP, text
    jsonschema.validate(json.loads(text), schema)


def test_json_object_grammar_yields_an_object_where_the_model_would_write_prose(engine):
    free, _ = ask(engine, "Tell me about Paris.", None, max_tokens=30)
    assert not free.lstrip().startswith("{")
    text, reason = ask(engine, "Tell me about Paris.", Constraint(json_object_grammar()), max_tokens=200)
    assert text.startswith("{")
    if reason is FinishReason.STOP:
        assert isinstance(json.loads(text), dict)


def test_a_grammar_llama_cpp_cannot_parse_is_refused_before_any_token(engine):
    for bad in ("root ::= undefined-rule", 'root ::= "unterminated', 'other ::= "x"'):
        with pytest.raises(InvalidRequestError, match="grammar"):
            ask(engine, "hi", Constraint(bad))
    text, _ = ask(engine, "Say hello.", None, max_tokens=8)  # the engine still serves
    assert text


def test_a_lazy_grammar_leaves_text_free_until_its_trigger(engine):
    lazy = Constraint('root ::= "<call>" [a-z]{1,8} "</call>"', triggers=("<call>",))
    text, _ = ask(engine, "Say hello to the user in one sentence.", lazy, max_tokens=30)
    assert "<call>" not in text and text.strip()
    forced, _ = ask(
        engine,
        "Reply with <call>, then a lowercase word, then </call>.",
        Constraint('root ::= "<call>" [a-z]{1,8} "</call>"'),
        max_tokens=30,
    )
    assert forced.startswith("<call>") and forced.endswith("</call>")
