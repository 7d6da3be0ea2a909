"""Per-family chat and tool formats: render prompts, parse replies."""
