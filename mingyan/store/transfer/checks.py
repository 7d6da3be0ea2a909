"""Checks shared by the importers: safe JSON loading, text, ids, timestamps, and readable errors.

Every problem becomes an `ImportFormatError` whose message starts with where it is
(`conversations[0].messages[3].role: ...`), never holds a traceback, and shows at most a short
excerpt of the offending value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import String

from mingyan.store.errors import ImportFormatError
from mingyan.store.tables import Conversation, Message

MAX_CONVERSATIONS = 1_000  # per file
MAX_MESSAGES = 10_000  # per conversation
MAX_TEXT = 1_000_000  # characters in a content, system prompt or error text
MAX_INT_DIGITS = 100  # a JSON integer longer than this is refused (Python's int() stops at 4,300)
MAX_DEPTH = 64  # nesting of JSON arrays and objects, settings and sampling included
ID_PATTERN = re.compile(r"[0-9A-Za-z_-]{1,32}")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
INT32 = (-(2**31), 2**31 - 1)  # the range of an Integer column on PostgreSQL
MAX_PROBLEMS_SHOWN = 3
EXCERPT = 40


def column_length(table: type[Conversation | Message], column: str) -> int:
    """The declared length of a String column, so the limits follow tables.py."""
    column_type = table.__table__.c[column].type
    assert isinstance(column_type, String) and column_type.length is not None, column
    return column_type.length


def load_json(data: bytes) -> Any:
    """Parse UTF-8 JSON strictly: no NaN/Infinity or overflowing numbers, no duplicate keys, bounded nesting."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImportFormatError(f"expected the file's bytes, got {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"the file is not UTF-8 text (bad byte at offset {error.start})") from None
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_short_int,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ImportFormatError("the JSON is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ImportFormatError(
            f"the file is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except _JSONProblem as problem:
        raise ImportFormatError(str(problem)) from None
    check_nesting(value)
    return value


class _JSONProblem(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _JSONProblem(f"the file is not valid JSON: {name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _JSONProblem(f"the number {excerpt(literal)} is too large")
    return value


def _short_int(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INT_DIGITS:
        raise _JSONProblem(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(literal)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JSONProblem(f"the file repeats the key {excerpt(key)} in one JSON object")
        result[key] = value
    return result


def check_nesting(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse arrays and objects nested deeper than `max_depth` (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise ImportFormatError(f"the JSON is nested more than {max_depth} levels deep")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def check_strings(value: Any, where: str) -> None:
    """Every string (and object key) inside `value` must be storable: no NUL, no unpaired surrogate."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            check_storable(item, loc)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_storable(key, loc)
                stack.append((child, location(loc, [key])))
        elif isinstance(item, list):
            stack.extend((child, f"{loc}[{i}]") for i, child in enumerate(item))


def check_storable(text: str, where: str) -> None:
    where = where or "the file"
    if "\x00" in text:
        raise ImportFormatError(f"{where}: contains a NUL character, which the database cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ImportFormatError(f"{where}: contains an unpaired UTF-16 surrogate (not valid text)") from None


# ---- values -------------------------------------------------------------------------------------


def check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError("must be 1-32 characters of 0-9, a-z, A-Z, '_' and '-'")
    return value


def max_chars(limit: int):
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"must be at most {limit:,} characters (has {len(value):,})")
        return value

    return check


def one_of(allowed: Sequence[str]):
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return check


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 string (a missing offset means UTC) as an aware UTC datetime within range."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 40:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 timestamp like 2024-05-01T12:00:00.000000Z") from None
    else:
        raise ValueError("must be an ISO 8601 timestamp string like 2024-05-01T12:00:00.000000Z")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return in_range(moment)


def from_epoch(seconds: float, where: str) -> datetime:
    """Epoch seconds (ChatGPT's create_time) as an aware UTC datetime within range."""
    if not math.isfinite(seconds):
        raise ImportFormatError(f"{where}: must be a finite number of seconds")
    try:
        return in_range(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        raise ImportFormatError(f"{where}: must be a time between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}") from None


def in_range(moment: datetime) -> datetime:
    problem = f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(problem) from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(problem)
    return moment


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and Z, the same for SQLite's naive and PostgreSQL's aware values."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # SQLite: stored as UTC wall time
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---- messages for people ------------------------------------------------------------------------

_PLAIN = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be a list",
    "none_required": "must be null",
}


def describe(error: ValidationError, prefix: str = "") -> ImportFormatError:
    """One readable ImportFormatError from a pydantic error: location, problem, short excerpt."""
    problems = [_problem(item, prefix) for item in error.errors(include_url=False)]
    message = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
    if len(problems) > MAX_PROBLEMS_SHOWN:
        message += f" (and {len(problems) - MAX_PROBLEMS_SHOWN} more problems)"
    return ImportFormatError(message)


def _problem(item: ErrorDetails, prefix: str) -> str:
    kind = item["type"]
    if kind == "value_error":
        text = str(item.get("ctx", {}).get("error", item["msg"]))
    elif kind == "too_long":
        text = f"has too many items (at most {item['ctx']['max_length']:,})"
    elif kind in _BOUNDS:
        text = _bound(kind, item.get("ctx", {}), settings="settings" in item["loc"])
    else:
        text = _PLAIN.get(kind, item["msg"])
    where = location(prefix, item["loc"])
    shown = "" if kind in {"missing", "too_long"} else _shown(item.get("input"))
    return f"{where or 'the file'}: {text}{shown}"


_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "less_than_equal": ("le", "at most"),
    "greater_than": ("gt", "greater than"),
    "less_than": ("lt", "less than"),
}


def _bound(kind: str, ctx: dict[str, Any], *, settings: bool) -> str:
    key, words = _BOUNDS[kind]
    bound = ctx.get(key)
    if bound in INT32 and not settings:  # a stored count or time: the column's whole range
        return f"must be between {INT32[0]:,} and {INT32[1]:,}"
    return f"must be {words} {bound:,}" if isinstance(bound, int) else f"must be {words} {bound}"


def _shown(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return f" (got {'an object' if isinstance(value, dict) else 'a list'})"
    if value is None or isinstance(value, (str, int, float, bool)):
        return f" (got {excerpt(value)})"
    return ""


def location(prefix: str, parts: Iterable[Any]) -> str:
    """`conversations[0].messages[3].role`; keys that are not plain names as `["..."]`, shortened."""
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", str(part)):
            text += f".{part}" if text else str(part)
        else:
            text += f"[{excerpt(str(part))}]"
    return text


def excerpt(value: Any, limit: int = EXCERPT) -> str:
    """A JSON-ish, length-capped rendering of a scalar for an error message."""
    if isinstance(value, str):
        shortened = value if len(value) <= limit else value[:limit] + "…"
        text = json.dumps(shortened, ensure_ascii=False)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates, escaped
    text = json.dumps(value) if isinstance(value, (bool, int, float)) or value is None else type(value).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def cycle_node(parents: dict[str, str | None]) -> str | None:
    """A node on a cycle of the `parents` links, or None when they form a forest."""
    acyclic: set[str] = set()
    for start in parents:
        walked: set[str] = set()
        node: str | None = start
        while node is not None and node not in acyclic:
            if node in walked:
                return node
            walked.add(node)
            node = parents[node]
        acyclic.update(walked)
    return None
