"""JSON schema → GBNF (llama.cpp's grammar format), for the subset mingyan enforces exactly.

A grammar built here accepts only JSON that validates against its schema: a schema keyword
the grammar cannot enforce is refused (`SchemaError` names it and where it is), never
dropped, because a silently looser grammar produces replies that fail validation later.
The output is compact JSON (at most one space after `{`, `[`, `:` and `,`, and before `}`
and `]`): small models left free to emit whitespace sometimes never stop.

Supported: `type` (one or a list), `enum`, `const`, `anyOf`, `$ref` to `#`, `#/$defs/...`
or `#/definitions/...` (recursion allowed); objects with `properties`, `required`,
`additionalProperties` (an object with `properties` gets exactly the declared ones, which
validates whatever `additionalProperties` says; without `properties` it is a map whose
values follow `additionalProperties`); arrays with `items`, `minItems`, `maxItems`; strings
with `minLength`, `maxLength`. Annotations (`title`, `description`, `default`, ...) are
ignored. Refused, for example: `pattern`, `format`, `minimum`/`maximum`, `multipleOf`,
`oneOf`, `allOf`, `not`, `prefixItems`, `uniqueItems: true`, `patternProperties`.

The GBNF syntax is documented in llama.cpp's grammars/README.md; the primitive rules below
follow JSON's grammar (RFC 8259) with bounded digit runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Constraint:
    """What the generated text must look like: a GBNF grammar (llama.cpp's grammar syntax).

    With `triggers`, the grammar is lazy: text is free until one of these strings appears in
    the output, and from the start of that string on the output must follow the grammar
    (a tool call after some prose). Without them the whole reply follows it. Engines refuse a
    grammar they cannot parse with InvalidRequestError, before any token.
    """

    grammar: str
    root: str = "root"
    triggers: tuple[str, ...] = ()


ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$defs",
        "definitions",
    }
)
STRUCTURAL = frozenset(
    {
        "type",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
    }
)
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
MAX_RULES = 2000
MAX_REPEAT = 10_000  # GBNF repetition bounds beyond this make huge grammars

# Primitive rules shared by every grammar (JSON's own syntax).
PRIMITIVES = {
    "sp": '" "?',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})',
    "string": r'"\"" char* "\""',
    "integer": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": 'integer ("." [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "value": "object | array | string | number | boolean | null",
    "object": '"{" sp (string ":" sp value ("," sp string ":" sp value)*)? sp "}"',
    "array": '"[" sp (value ("," sp value)*)? sp "]"',
}


class SchemaError(ValueError):
    """A schema that cannot become an exact grammar; the message names the keyword and path."""


def gbnf_literal(text: str) -> str:
    """`text` as a GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_literal(value: Any) -> str:
    """The compact JSON spelling of `value` as a GBNF literal."""
    return gbnf_literal(json.dumps(value, ensure_ascii=False, separators=(", ", ": ")))


class GrammarBuilder:
    """Collects named rules; `add_schema` turns a JSON schema into rules and returns a rule name.

    Values are spelled as JSON; a subclass may spell them otherwise (`primitives`, `literal`,
    `quoted`), as formats/python_literals.py does for Python literals."""

    primitives: dict[str, str] = PRIMITIVES

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self._refs: dict[tuple[int, str], str] = {}
        self._roots: list[Any] = []

    def add(self, hint: str, body: str) -> str:
        """Add a rule with a fresh name based on `hint`; returns the name."""
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-").lower() or "r"
        name, n = base, 1
        while name in self.rules or name in self.primitives or name == "root":
            n += 1
            name = f"{base}-{n}"
        if len(self.rules) >= MAX_RULES:
            raise SchemaError(f"the schema is too large (over {MAX_RULES} grammar rules)")
        self.rules[name] = body
        return name

    def render(self, root_body: str) -> str:
        """The whole grammar: `root ::= root_body`, our rules, then the primitives."""
        lines = [f"root ::= {root_body}"]
        lines += [f"{name} ::= {body}" for name, body in self.rules.items()]
        lines += [f"{name} ::= {body}" for name, body in self.primitives.items()]
        return "\n".join(lines) + "\n"

    # -- schemas ---------------------------------------------------------------------

    def add_schema(self, schema: Any, path: str = "schema") -> str:
        """Rules for `schema`; returns the rule name (or a primitive's name) to refer to."""
        self._roots.append(schema)  # what `$ref: "#..."` inside it refers to
        return self._visit(schema, path, len(self._roots) - 1)

    def _visit(self, schema: Any, path: str, root: int) -> str:
        if schema is True or schema == {}:
            return "value"
        if not isinstance(schema, dict):
            raise SchemaError(f"{path}: a schema must be an object (or true), got {schema!r}")
        unknown = sorted(k for k in schema if k not in STRUCTURAL and k not in ANNOTATIONS)
        unknown = [k for k in unknown if not (k == "uniqueItems" and schema[k] is False)]
        if unknown:
            raise SchemaError(
                f"{path}: unsupported JSON-schema keyword(s) {', '.join(unknown)} "
                "(grammar-constrained output cannot enforce them)"
            )
        if "$ref" in schema:
            return self._ref(schema, path, root)
        if "anyOf" in schema:
            return self._any_of(schema, path, root)
        if "enum" in schema or "const" in schema:
            return self._enum(schema, path)
        kind = schema.get("type", _implied_type(schema))
        if kind is None:
            return "value"
        if isinstance(kind, list):
            if not kind:
                raise SchemaError(f"{path}.type: an empty list of types accepts nothing")
            alts = [self._visit({**schema, "type": k}, f"{path}.{k}", root) for k in kind]
            return self.add(path, " | ".join(alts))
        if kind not in TYPES:
            raise SchemaError(f"{path}.type: unknown type {kind!r}")
        if kind == "object":
            return self._object(schema, path, root)
        if kind == "array":
            return self._array(schema, path, root)
        if kind == "string":
            return self._string(schema, path)
        return kind  # number, integer, boolean, null: primitives

    def _ref(self, schema: dict, path: str, root: int) -> str:
        ref = schema["$ref"]
        extra = [k for k in schema if k not in ANNOTATIONS and k != "$ref"]
        if extra:
            raise SchemaError(f"{path}: keywords beside $ref are not supported ({', '.join(extra)})")
        key = (root, ref)
        if key in self._refs:
            return self._refs[key]
        target = _resolve(self._roots[root], ref, path)
        name = self.add(f"ref-{ref.rsplit('/', 1)[-1]}", "")  # reserved first: recursion
        self._refs[key] = name
        self.rules[name] = self._visit(target, f"{path}($ref {ref})", root)
        return name

    def _any_of(self, schema: dict, path: str, root: int) -> str:
        options = schema["anyOf"]
        extra = [k for k in schema if k not in ANNOTATIONS and k != "anyOf"]
        if extra:
            raise SchemaError(f"{path}: keywords beside anyOf are not supported ({', '.join(extra)})")
        if not isinstance(options, list) or not options:
            raise SchemaError(f"{path}.anyOf: must be a non-empty list of schemas")
        alts = [self._visit(s, f"{path}.anyOf[{i}]", root) for i, s in enumerate(options)]
        return self.add(path, " | ".join(alts))

    def _enum(self, schema: dict, path: str) -> str:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaError(f"{path}.enum: must be a non-empty list")
        kind = schema.get("type")
        kinds = set(kind if isinstance(kind, list) else [kind] if kind else [])
        if kinds:
            values = [v for v in values if _json_type(v) in kinds or (_json_type(v) == "integer" and "number" in kinds)]
            if not values:
                raise SchemaError(f"{path}: no enum value has the declared type")
        return self.add(path, " | ".join(self.literal(v) for v in values))

    def _object(self, schema: dict, path: str, root: int) -> str:
        props = schema.get("properties")
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if props is None:
            if required:
                raise SchemaError(f"{path}.required: names properties the schema does not declare")
            if extra is False:
                return self.add(path, '"{" sp "}"')
            value = self._visit(extra, f"{path}.additionalProperties", root)
            pair = f'string ":" sp {value}'
            return self.add(path, f'"{{" sp ({pair} ("," sp {pair})*)? sp "}}"')
        if not isinstance(props, dict) or not isinstance(required, list):
            raise SchemaError(f"{path}: properties must be an object and required a list")
        missing = [r for r in required if r not in props]
        if missing:
            raise SchemaError(f"{path}.required: {', '.join(map(str, missing))} not in properties")
        pairs = {
            key: f'{json_literal(key)} ":" sp {self._visit(sub, f"{path}.{key}", root)}' for key, sub in props.items()
        }
        req = [pairs[k] for k in props if k in required]
        opt = [pairs[k] for k in props if k not in required]
        return self.add(path, f'"{{" sp {self._members(req, opt, path)} sp "}}"')

    def _members(self, req: list[str], opt: list[str], path: str) -> str:
        """Required pairs in order, then each optional pair or not, commas right."""
        tail = " ".join(f'("," sp {p})?' for p in opt)
        if req:
            return " ".join([' "," sp '.join(req), tail]).strip()
        if not opt:
            return ""
        # No required pair: the first pair present carries no comma.
        firsts = []
        for i, pair in enumerate(opt):
            rest = " ".join(f'("," sp {p})?' for p in opt[i + 1 :])
            firsts.append(f"{pair} {rest}".strip())
        return "(" + self.add(f"{path}-members", " | ".join(firsts)) + ")?"

    def _array(self, schema: dict, path: str, root: int) -> str:
        item = self._visit(schema.get("items", True), f"{path}[]", root)
        low, high = _bounds(schema, "minItems", "maxItems", path)
        if high == 0:
            return self.add(path, '"[" sp "]"')
        more = _repeat(f'("," sp {item})', max(low - 1, 0), None if high is None else high - 1)
        body = f"{item} {more}".strip()
        if low == 0:
            body = f"({body})?"
        return self.add(path, f'"[" sp {body} sp "]"')

    def _string(self, schema: dict, path: str) -> str:
        low, high = _bounds(schema, "minLength", "maxLength", path)
        if low == 0 and high is None:
            return "string"
        return self.add(path, self.quoted(low, high))

    def literal(self, value: Any) -> str:
        """`value` as a GBNF literal of its spelling in the output."""
        return json_literal(value)

    def quoted(self, low: int, high: int | None) -> str:
        """A string of `low` to `high` characters (None: no upper bound)."""
        return f'"\\"" {_repeat("char", low, high)} "\\""'


def _repeat(item: str, low: int, high: int | None) -> str:
    if high is None:
        return f"{item}*" if low == 0 else f"{item}{{{low},}}"
    if high == 0:
        return ""
    return f"{item}{{{low},{high}}}"


def _bounds(schema: dict, lo_key: str, hi_key: str, path: str) -> tuple[int, int | None]:
    low, high = schema.get(lo_key, 0), schema.get(hi_key)
    for key, value in ((lo_key, low), (hi_key, high)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SchemaError(f"{path}.{key}: must be a non-negative integer")
        if value is not None and value > MAX_REPEAT:
            raise SchemaError(f"{path}.{key}: at most {MAX_REPEAT} is supported")
    if high is not None and high < low:
        raise SchemaError(f"{path}: {hi_key} is below {lo_key}")
    return low, high


def _implied_type(schema: dict) -> str | None:
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return "object"
    if any(k in schema for k in ("items", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minLength", "maxLength")):
        return "string"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _resolve(root: Any, ref: str, path: str) -> Any:
    if ref == "#":
        return root
    match = re.fullmatch(r"#/(\$defs|definitions)/([^/]+)", ref)
    if not match or not isinstance(root, dict):
        raise SchemaError(f"{path}.$ref: only local references #/$defs/NAME are supported, got {ref!r}")
    target = root.get(match.group(1), {}).get(match.group(2).replace("~1", "/").replace("~0", "~"))
    if target is None:
        raise SchemaError(f"{path}.$ref: {ref!r} does not exist in the schema")
    return target


def schema_grammar(schema: Any, path: str = "schema") -> str:
    """A whole grammar whose root is one JSON value valid against `schema` (errors name
    keywords by their place under `path`)."""
    check_schema(schema)
    builder = GrammarBuilder()
    return builder.render(builder.add_schema(schema, path))


def json_object_grammar() -> str:
    """Any JSON object (OpenAI's `response_format: json_object`)."""
    return GrammarBuilder().render("object")


def check_schema(schema: Any) -> None:
    """Refuse a schema that is not valid JSON Schema (draft 2020-12) at all."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError as InvalidSchema

    try:
        Draft202012Validator.check_schema(schema)
    except InvalidSchema as exc:
        raise SchemaError(f"not a valid JSON schema: {exc.message}") from exc
