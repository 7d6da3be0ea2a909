"""JSON schema → GBNF: what the converter accepts, and that it refuses what it cannot enforce."""

from __future__ import annotations

import re

import pytest

from mingyan.formats.grammar import (
    SchemaError,
    gbnf_literal,
    json_object_grammar,
    schema_grammar,
)


def rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.strip().splitlines())


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        ({"type": "string", "pattern": "^a+$"}, "pattern"),
        ({"type": "string", "format": "date-time"}, "format"),
        ({"type": "integer", "minimum": 3}, "minimum"),
        ({"type": "number", "multipleOf": 2}, "multipleOf"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf"),
        ({"allOf": [{"type": "string"}]}, "allOf"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
        ({"type": "object", "properties": {"a": {"type": "string", "maxLength": 3, "pattern": "x"}}}, "pattern"),
    ],
)
def test_a_keyword_the_grammar_cannot_enforce_is_refused_by_name(schema, keyword):
    with pytest.raises(SchemaError, match=re.escape(keyword)):
        schema_grammar(schema)


def test_the_refusal_says_where_the_keyword_is():
    schema = {"type": "object", "properties": {"when": {"type": "string", "format": "date"}}}
    with pytest.raises(SchemaError, match=r"schema\.when"):
        schema_grammar(schema)


def test_an_invalid_schema_is_refused():
    with pytest.raises(SchemaError, match="not a valid JSON schema"):
        schema_grammar({"type": "strnig"})
    with pytest.raises(SchemaError, match="required"):
        schema_grammar({"type": "object", "properties": {"a": {}}, "required": ["b"]})


def test_annotations_are_ignored_and_harmless_flags_accepted():
    grammar = schema_grammar(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "T",
            "description": "d",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "a": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "uniqueItems": False,
                    "default": [],
                    "examples": [[1]],
                }
            },
        }
    )
    assert "root ::=" in grammar


def test_required_properties_come_in_order_and_optional_ones_may_be_left_out():
    g = rules(
        schema_grammar(
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {"type": "boolean"}},
                "required": ["a", "c"],
            }
        )
    )
    body = g[g["root"]]
    assert body.index('"\\"a\\""') < body.index('"\\"c\\""')
    assert '("," sp "\\"b\\"" ":" sp integer)?' in body


def test_an_object_with_no_required_property_can_be_empty_or_start_with_any():
    g = rules(schema_grammar({"type": "object", "properties": {"x": {"type": "null"}, "y": {"type": "null"}}}))
    members = [v for k, v in g.items() if k.endswith("members")]
    assert members and '"\\"y\\"" ":" sp null' in members[0]


def test_refs_and_recursion_become_rules():
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                },
                "required": ["name"],
            }
        },
        "$ref": "#/$defs/node",
    }
    g = rules(schema_grammar(schema))
    ref_rule = next(k for k in g if k.startswith("ref-node"))
    assert any(ref_rule in body for name, body in g.items() if name != ref_rule and name != "root")


def test_enums_const_and_type_unions():
    g = schema_grammar(
        {
            "type": "object",
            "properties": {
                "unit": {"enum": ["摄氏", "fahrenheit"]},
                "v": {"const": 1},
                "n": {"type": ["string", "null"]},
            },
            "required": ["unit", "v", "n"],
        }
    )
    assert '"\\"摄氏\\""' in g and '"1"' in g
    assert "string | null" in g


def test_lengths_and_item_counts_are_bounded_repetitions():
    g = schema_grammar(
        {
            "type": "object",
            "properties": {
                "s": {"type": "string", "minLength": 2, "maxLength": 5},
                "l": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
            },
            "required": ["s", "l"],
        }
    )
    assert "char{2,5}" in g
    assert '("," sp integer){0,2}' in g


def test_literals_escape_quotes_backslashes_and_controls():
    assert gbnf_literal('a"b\\c\nd\x01') == '"a\\"b\\\\c\\nd\\x01"'


def test_json_object_grammar_is_any_object():
    assert rules(json_object_grammar())["root"] == "object"
