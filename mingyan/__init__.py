"""mingyan (明言): a self-hosted, bilingual chat assistant on open-weight models."""

__version__ = "0.1.0"
