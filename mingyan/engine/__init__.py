"""Inference engines. Everything above this package talks to `Engine` (and `Embedder`) from `base`.

- `base`          the Engine and Embedder protocols and the plain data crossing them
- `llamacpp/`     the llama.cpp engine (one decode thread, slots, KV-cache reuse per owner, sampler chains)
- `embedding`     the Embedder over llama.cpp's embedding mode; `turns` takes its requests in turns
- `special_text`  finding special-token text in one pass (the injection guard, linear in the input)
- `fake`          a deterministic engine for fast unit tests of the layers above
- `text`          incremental UTF-8 decoding and stop strings that never leak
"""
