"""An MCP tool's input schema as the model's grammar can take it.

MCP servers write full JSON Schema (`format`, `minimum`, `pattern`, `oneOf`, ...); the grammar
enforces a subset exactly and refuses the rest (mingyan.formats.grammar). For a tool from a
server, the keywords outside that subset are left out of the grammar's schema: the model writes
arguments of the right shape, and the server checks the rest (an invalid call becomes an error
result the model sees).
"""

from __future__ import annotations

from typing import Any

from mingyan.formats.grammar import ANNOTATIONS, STRUCTURAL

KEPT = ANNOTATIONS | STRUCTURAL
NESTED_MAPS = ("properties", "$defs", "definitions")


def grammar_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in KEPT:
            continue
        if key in NESTED_MAPS and isinstance(value, dict):
            out[key] = {name: grammar_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf"):
            out[key] = grammar_schema(value)
        else:
            out[key] = value
    if "type" not in out and "properties" in out:
        out["type"] = "object"
    return out
