"""Per-family chat and tool formats: render prompts, parse replies.

- `template`, `template_limits`  GGUF chat templates in Jinja's sandbox, with CPU and memory limits
- `families`, `family_templates`, `chat_format`  family detection, canonical templates, fallbacks
- `tool_calls`    the OpenAI-side data of tools and calls
- `tool_formats`  a registry, one class per family: render tools and turns, parse calls
- `envelope`      JSON calls between markers: their grammar and incremental parse
- `grammar`       the engine-neutral Constraint, and JSON schema → GBNF for the subset enforced exactly
"""
