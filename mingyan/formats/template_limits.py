"""CPU and memory limits for chat templates, on top of Jinja's sandbox.

The sandbox stops a model file's template from running code, but not from running forever
(nested `range` loops) or allocating gigabytes (`'a' * 10**9`, folded when the template is
compiled; `messages[0].content * 10**9` on every request). Here:

- operators that can grow a value (`*`, `**`, `+`, `%`, `~`) and calls and filters that take a size
  (`center(10**9)`, `replace`, `join`, ...) are checked *before* they run, against `MAX_TEXT`;
  intercepting them also keeps Jinja from folding them at compile time;
- `range` is capped at `MAX_RANGE` items, and `lipsum` is gone;
- a render runs under a wall-clock budget: past it, a watchdog raises `RenderBudgetExceeded`
  inside the rendering thread (CPython's asynchronous exception), which ends any Python loop.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Self

from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_TEXT = 4 * 1024 * 1024  # characters (or items) any one value of a template may have
MAX_RANGE = 100_000
MAX_INT_BITS = 1 << 16
_BIG_WIDTH = re.compile(r"\d{7,}|\*")  # a format width of millions, or one taken from an argument


class RenderLimitError(Exception):
    """A template went past a size limit."""


class RenderBudgetExceeded(Exception):
    """A template ran past its time budget (raised asynchronously in the rendering thread)."""


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple | bytes) else None


def _check_size(size: int, what: str) -> None:
    if size > MAX_TEXT:
        raise RenderLimitError(f"{what} would hold {size} items (the limit is {MAX_TEXT})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if _size(seq) is not None and _is_int(n):
                _check_size(_size(seq) * max(n, 0), "a repeated value")
        if _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise RenderLimitError("a product of huge numbers")
    elif op == "**" and _is_int(left) and _is_int(right) and abs(left) > 1:
        if right > 0 and right * left.bit_length() > MAX_INT_BITS:
            raise RenderLimitError("a power of huge size")
    elif op == "+" and (left_size := _size(left)) is not None and (right_size := _size(right)) is not None:
        _check_size(left_size + right_size, "a concatenation")
    elif op == "%" and isinstance(left, str) and _BIG_WIDTH.search(left):
        raise RenderLimitError("a format with a huge width")


def _check_call(function: Any, args: tuple, kwargs: dict) -> None:
    """Size arguments of calls (methods such as str.center, and filters)."""
    for value in (*args, *kwargs.values()):
        if _is_int(value) and abs(value) > MAX_TEXT:
            raise RenderLimitError(f"a size argument of {value}")
    name = getattr(function, "__name__", "")
    owner = getattr(function, "__self__", None)
    if name in ("replace", "do_replace"):
        strings = [a for a in (owner, *args) if isinstance(a, str)]
        if len(strings) >= 3:
            text, old, new = strings[-3:]
            grows = max(0, len(new) - len(old)) * (text.count(old) if old else len(text) + 1)
            _check_size(len(text) + grows, "a replacement")
    elif name in ("join", "do_join") and args:
        items = args[-1] if isinstance(owner, str) else args[1] if len(args) > 1 else None
        sep = owner if isinstance(owner, str) else args[2] if len(args) > 2 else kwargs.get("d", "")
        if isinstance(items, list | tuple) and isinstance(sep, str):
            _check_size(len(sep) * len(items) + sum(_size(i) or 0 for i in items), "a join")
    elif name == "format" and isinstance(owner, str) and _BIG_WIDTH.search(owner):
        raise RenderLimitError("a format with a huge width")


def _bounded_filter(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)  # keeps jinja's pass_context / pass_eval_context marks
    def run(*args: Any, **kwargs: Any) -> Any:
        _check_call(function, args, kwargs)
        result = function(*args, **kwargs)
        if (size := _size(result)) is not None:
            _check_size(size, f"the result of the filter {function.__name__}")
        return result

    return run


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimitError(f"a range of {len(numbers)} numbers (the limit is {MAX_RANGE})")
    return numbers


class _Generator(CodeGenerator):
    def visit_Concat(self, node, frame) -> None:  # `a ~ b`: checked like `+`
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with size limits on everything that can grow."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _Generator

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)

    def bound_filters(self) -> None:
        """Check every filter's size arguments and result (call once, after adding filters)."""
        self.filters = {name: _bounded_filter(f) for name, f in self.filters.items()}

    def call_binop(self, context, op: str, left: Any, right: Any) -> Any:
        _check_binop(op, left, right)
        return self.binop_table[op](left, right)

    def call(self, context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if (size := _size(result)) is not None:
            _check_size(size, "a call's result")
        return result

    @staticmethod
    def bounded_concat(parts: Iterable[Any]) -> str:
        texts = [str(p) for p in parts]
        _check_size(sum(map(len, texts)), "a concatenation")
        return "".join(texts)


class Watchdog:
    """Raises RenderBudgetExceeded in the calling thread if it is still inside `with` after
    `seconds`. The exception is delivered at the next Python instruction of that thread."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._armed = False
        self._thread_id = 0
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Self:
        self._thread_id = threading.get_ident()
        self._armed = True
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _fire(self) -> None:
        with self._lock:
            if self._armed:
                self.fired = True
                _async_raise(self._thread_id, RenderBudgetExceeded)

    def __exit__(self, *exc: object) -> None:
        assert self._timer is not None
        self._timer.cancel()
        with self._lock:
            self._armed = False
            if self.fired:
                _async_raise(self._thread_id, None)  # withdraw it if not yet delivered
        if self.fired and exc[0] is None:
            raise RenderBudgetExceeded()


def _async_raise(thread_id: int, exc_type: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type is not None else None
    )
