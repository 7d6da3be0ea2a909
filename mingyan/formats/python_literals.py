"""Tool calls spelled as a Python call, `tool_call(city='北京', days=3)` (ChatGLM3's spelling).

Three pieces, each the mirror of the JSON side:
- `python_call(arguments)`: JSON arguments → the call text, values as Python literals in the
  style of `ast.unparse` / `repr` (strings in single quotes, `True`, `False`, `None`), as
  ChatGLM3's fine-tuning code (finetune_chatmodel_demo/preprocess_utils.py,
  `format_function_call`) writes calls into its training conversations;
- `call_arguments(text)`: the call text → JSON arguments, read with `ast` (never `eval`);
- `PythonGrammar`: the grammar of such a call whose arguments validate against the tool's
  JSON schema (the JSON-schema grammar of formats/grammar.py with Python spellings:
  either quote for strings, `True`/`False`/`None`, keyword arguments at the top).
"""

from __future__ import annotations

import ast
import json
import keyword
import math
from typing import Any

from mingyan.formats.grammar import ANNOTATIONS, PRIMITIVES, STRUCTURAL, GrammarBuilder, SchemaError, gbnf_literal

FUNCTION = "tool_call"
HEX = '"u" [0-9a-fA-F]{4}'
ESCAPE = f'"\\\\" (["\'\\\\bfnrt] | {HEX})'  # escapes JSON and Python read alike (no `\\/`)
PYTHON_PRIMITIVES = {
    **PRIMITIVES,
    "char": '[^"\\\\\\x7F\\x00-\\x1F] | ' + ESCAPE,
    "schar": "[^'\\\\\\x7F\\x00-\\x1F] | " + ESCAPE,
    "string": '"\\"" char* "\\"" | "\'" schar* "\'"',
    "boolean": '"True" | "False"',
    "null": '"None"',
    "ident": "[a-zA-Z_] [a-zA-Z0-9_]{0,63}",
}


def python_literal(value: Any) -> str:
    """A JSON value as a Python literal (`repr` style: '北京', True, None, {'a': [1, 2.5]})."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    return repr(value)


def python_call(arguments: str) -> str:
    """`tool_call(k=v, ...)` for a call's JSON arguments (names that cannot be Python keywords
    go last as `**{'name': v}`, which Python reads the same way)."""
    args = json.loads(arguments or "{}")
    if not isinstance(args, dict):
        args = {}
    plain = [f"{k}={python_literal(v)}" for k, v in args.items() if is_keyword_name(k)]
    other = {k: v for k, v in args.items() if not is_keyword_name(k)}
    if other:
        plain.append("**" + python_literal(other))
    return f"{FUNCTION}({', '.join(plain)})"


def is_keyword_name(name: str) -> bool:
    return name.isidentifier() and name.isascii() and not keyword.iskeyword(name)


def call_arguments(text: str) -> str | None:
    """The JSON arguments of `tool_call(...)` in `text`, or None when it is not such a call
    with literal values that JSON can hold."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
        call = tree.body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == FUNCTION):
            return None
        if call.args:
            return None
        out: dict[str, Any] = {}
        for kw in call.keywords:
            value = _json_value(ast.literal_eval(kw.value))
            if kw.arg is not None:
                out[kw.arg] = value
            elif isinstance(value, dict):
                out.update(value)
            else:
                return None
        return json.dumps(out, ensure_ascii=False, allow_nan=False)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def _json_value(value: Any) -> Any:
    """`value` as JSON data (tuples become lists); ValueError for what JSON cannot hold."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v) for k, v in value.items()}
    raise ValueError(f"not JSON data: {type(value).__name__}")


class PythonGrammar(GrammarBuilder):
    """JSON-schema grammars spelled as Python literals; `add_kwargs` for the call's arguments."""

    primitives = PYTHON_PRIMITIVES

    def literal(self, value: Any) -> str:
        return gbnf_literal(python_literal(value))

    def quoted(self, low: int, high: int | None) -> str:
        if high == 0:
            return '("\\"\\"" | "\'\'")'
        count = f"{{{low},}}" if high is None else f"{{{low},{high}}}"
        return f'("\\"" char{count} "\\"" | "\'" schar{count} "\'")'

    def add_kwargs(self, schema: Any, path: str) -> str:
        """A rule for the keyword arguments `k=v, ...` (without the parentheses) of an object
        schema ("" when it declares no property)."""
        if schema is True or schema == {}:
            schema = {"type": "object"}
        if not isinstance(schema, dict):
            raise SchemaError(f"{path}: a schema must be an object, got {schema!r}")
        _check_top(schema, path)
        self._roots.append(schema)
        root = len(self._roots) - 1
        props = schema.get("properties")
        if props is None:  # any names (Python identifiers), each value valid against additionalProperties
            if schema.get("required"):
                raise SchemaError(f"{path}.required: names properties the schema does not declare")
            extra = schema.get("additionalProperties", True)
            if extra is False:
                return ""
            value = self._visit(extra, f"{path}.additionalProperties", root)
            pair = f'ident "=" {value}'
            return self.add(f"{path}-kwargs", f'({pair} ("," sp {pair})*)?')
        if not isinstance(props, dict):
            raise SchemaError(f"{path}.properties: must be an object")
        required = schema.get("required", [])
        missing = [r for r in required if r not in props]
        if missing:
            raise SchemaError(f"{path}.required: {', '.join(map(str, missing))} not in properties")
        bad = [k for k in props if not is_keyword_name(k)]
        if bad:
            raise SchemaError(
                f"{path}.properties: {', '.join(bad)} cannot be a Python keyword argument, "
                "and this model family writes calls as tool_call(name=value)"
            )
        pairs = {k: f"{gbnf_literal(k + '=')} {self._visit(sub, f'{path}.{k}', root)}" for k, sub in props.items()}
        members = self._members(
            [pairs[k] for k in props if k in required], [pairs[k] for k in props if k not in required], path
        )
        return self.add(f"{path}-kwargs", members) if members else ""  # "": no arguments


def _check_top(schema: dict, path: str) -> None:
    kind = schema.get("type", "object")
    if kind != "object":
        raise SchemaError(f"{path}.type: the parameters of a tool must be an object schema")
    allowed = {"type", "properties", "required", "additionalProperties"} | ANNOTATIONS
    unknown = sorted(k for k in schema if k not in allowed and k in STRUCTURAL)
    unsupported = sorted(k for k in schema if k not in allowed and k not in STRUCTURAL)
    if unknown:
        raise SchemaError(f"{path}: {', '.join(unknown)} cannot describe keyword arguments")
    if unsupported:
        raise SchemaError(
            f"{path}: unsupported JSON-schema keyword(s) {', '.join(unsupported)} "
            "(grammar-constrained output cannot enforce them)"
        )
