"""The llama.cpp engine: one decode thread serving several slots of one shared context.

- `engine`        LlamaCppEngine: admit → place → step (one llama_decode) → sample → finish
- `native`        typed wrappers over llama-cpp-python's low-level ctypes API (model, context, sampler chain)
- `slots`         one sequence of the shared context and the request it serves (sampler, UTF-8, stops)
- `jobs`          a request with its caller's loop and cancel flag; its event stream; the bounded fair queue
- `config`        the engine's settings, and the number of slots chosen from cores and memory
- `prefix_cache`  saved KV states by exact token prefix, in RAM and on disk
"""
