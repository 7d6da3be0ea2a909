"""Inference engines. Everything above this package talks to `Engine` from `base`."""
