"""Inference engines. Everything above this package talks to `Engine` from `base`.

- `base`      the Engine protocol and the plain data crossing it (requests, sampling, events, usage)
- `llamacpp/` the llama.cpp engine (one decode thread, slots, KV-cache reuse, sampler chains)
- `fake`      a deterministic engine for fast unit tests of the layers above
- `text`      incremental UTF-8 decoding and stop strings that never leak
"""
