"""Tool calls written as a JSON object `{"name": ..., "<args key>": {...}}` between markers.

Most families spell a call this way and differ only in the markers around it and the key of
the arguments: Qwen2.5 and the Hermes format (`<tool_call>\\n{json}\\n</tool_call>`), Llama 3.x
(a bare `{"name": ..., "parameters": ...}` reply), ERNIE 4.5 and mingyan's generic envelope.
`Envelope` holds that spelling; it builds the grammar that forces a call and parses replies,
also while they stream in (`parse(text, final=False)` returns only text that can no longer
change, so streamed pieces always add up to the final parse).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from mingyan.errors import InvalidRequestError
from mingyan.formats.grammar import Constraint, GrammarBuilder, SchemaError, gbnf_literal
from mingyan.formats.tool_calls import ToolRequest


@dataclass
class PartialCall:
    name: str | None  # None while the name is still being written
    arguments: str  # the JSON text of the arguments so far (final once `done`)
    done: bool = False


@dataclass
class PartialReply:
    content: str
    calls: list[PartialCall]


@dataclass(frozen=True)
class Envelope:
    """How one call is spelled: open + {"name": "N", "<args_key>": ARGS} + close."""

    open: str  # text before the JSON object ("" for a bare object)
    close: str  # text after it ("" when the call runs to the end of the reply)
    args_key: str = "arguments"
    separator: str = "\n"  # between parallel calls
    marker: str = ""  # what starts a call in free text (defaults to `open`)
    lazy_auto: bool = False  # `auto`: a lazy grammar from the marker, rather than calls | prose

    @property
    def start(self) -> str:
        return self.marker or self.open

    def call_prefix(self, name: str) -> str:
        return f'{self.open}{{"name": {json.dumps(name, ensure_ascii=False)}, "{self.args_key}": '

    def call_suffix(self) -> str:
        return "}" + self.close

    def render_call(self, name: str, arguments: str) -> str:
        """A call as the model would write it (for assistant turns in the history)."""
        return self.call_prefix(name) + arguments + self.call_suffix()

    # -- the grammar -----------------------------------------------------------------

    def constraint(self, request: ToolRequest) -> Constraint:
        """A grammar forcing well-formed calls to the callable tools, each with arguments valid
        against its schema; lazy (starting at the call marker) when the choice is `auto`."""
        builder = GrammarBuilder()
        alternatives = []
        for index, tool in enumerate(request.tools):
            if tool not in request.callable_tools:
                continue
            try:
                args = builder.add_schema(tool.parameters, f"tool-{index}")
            except SchemaError as exc:
                raise InvalidRequestError(
                    f"tools[{index}].function.parameters: {exc}",
                    param=f"tools[{index}].function.parameters",
                ) from exc
            alternatives.append(
                f"{gbnf_literal(self.call_prefix(tool.name))} {args} {gbnf_literal(self.call_suffix())}"
            )
        call = builder.add("call", " | ".join(alternatives))
        # Parallel calls: at most one per callable tool. Unbounded, small models repeat a call
        # until max_tokens cuts the reply (and a cut reply holds no valid call).
        most = len(request.callable_tools)
        parallel = request.parallel and most > 1
        root = f"{call} ({gbnf_literal(self.separator)} {call}){{0,{most - 1}}}" if parallel else call
        if request.choice.mode != "auto":
            return Constraint(builder.render(root))
        if self.lazy_auto:
            return Constraint(builder.render(root), triggers=self.triggers(request))
        # `auto`: the reply is either calls or prose that does not open like JSON, a code fence,
        # a tag or a quoted/bracketed object, so a model that would write a call in some other
        # spelling (```json {...}```, a bare object, `({...})`) writes it in the family's own
        # spelling, or answers in words. Small models otherwise leak calls as text.
        calls = builder.add("calls", root)
        prose = builder.add("prose", r"[^{\[(`<\"'\x00-\x20] [^\x00]*")
        return Constraint(builder.render(f"{calls} | {prose}"))

    def triggers(self, request: ToolRequest) -> tuple[str, ...]:
        """Text that starts a call when the model may also answer in prose."""
        return (self.start,)

    # -- parsing ---------------------------------------------------------------------

    def header(self) -> re.Pattern[str]:
        return re.compile(
            re.escape(self.open.strip())
            + r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"'
            + re.escape(self.args_key)
            + r'"\s*:\s*'
        )

    def parse(self, text: str, final: bool) -> PartialReply:
        """Split `text` into content and calls. Not `final`: leave out what may still change."""
        first = text.find(self.start)
        if first > 0 and not self.lazy_auto and text[:first].strip():
            first = -1  # calls open the reply; later on, the marker is only text
        if first < 0:
            return PartialReply(_settled_text(text, self.start, final), [])
        calls: list[PartialCall] = []
        pos, header = first, self.header()
        while pos >= 0:
            match = header.match(text, pos)
            if match is None:
                if final:  # not a call after all (only without a grammar): all of it is text
                    return PartialReply(text.strip(), [])
                calls.append(PartialCall(None, ""))
                break
            name = json.loads('"' + match.group(1) + '"')
            call, pos = self._arguments(text, match.end(), final)
            calls.append(PartialCall(name, call, done=pos >= 0 or final))
            if pos >= 0:
                pos = text.find(self.start, pos)
        if final and not all(_is_object(c.arguments) for c in calls):
            return PartialReply(text.strip(), [])
        return PartialReply(text[:first].strip(), calls)

    def _arguments(self, text: str, begin: int, final: bool) -> tuple[str, int]:
        """The arguments starting at `begin`, and where the call ends (-1: not yet ended)."""
        close = self.close.strip()
        end = text.find(close, begin) if close else -1
        region = text[begin:] if end < 0 else text[begin:end]
        if end >= 0 or final:
            body = region.rstrip()
            body = body.removesuffix("}")  # the call object's own brace
            return body.strip(), (end + len(close) if end >= 0 else -1)
        brace = region.rfind("}")
        if brace >= 0 and close.startswith(region[brace + 1 :].strip()):
            return region[:brace].strip(), -1
        return region.strip(), -1


def _settled_text(text: str, marker: str, final: bool) -> str:
    """Text without a tail that could still turn into `marker` or be trailing whitespace."""
    if final:
        return text.strip()
    for n in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-n:]):
            text = text[:-n]
            break
    return text.strip()


def _is_object(arguments: str) -> bool:
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False
