"""llama-cpp-python's high-level `Llama`, its weights loaded as mingyan loads them.

The engine itself uses the low-level API (native.py). Benchmarks and tests compare it with the
high-level `Llama` on the same file; where the CPU has Intel AMX, that `Llama` must load the
weights as `NativeModel` does there, without the extra buffer types (llama.cpp's AMX matrix
multiply crashes, llama.cpp #20824), or the comparison crashes the process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mingyan.engine.llamacpp.native import has_amx, load_llama_cpp


def load_llama(path: Path | str, *, verbose: bool = False, **kwargs: Any) -> Any:
    """`llama_cpp.Llama(model_path=path, **kwargs)`; without extra buffer types where AMX is present."""
    llama_cpp = load_llama_cpp(verbose)
    native = llama_cpp.llama_cpp
    if not has_amx(llama_cpp):
        return llama_cpp.Llama(model_path=str(path), verbose=verbose, **kwargs)
    # `Llama` takes its model parameters from `llama_model_default_params()` and has no argument
    # for this field, so the default is replaced for the duration of the load (not thread-safe:
    # load one model at a time).
    defaults = native.llama_model_default_params

    def model_params() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = model_params
    try:
        return llama_cpp.Llama(model_path=str(path), verbose=verbose, **kwargs)
    finally:
        native.llama_model_default_params = defaults
