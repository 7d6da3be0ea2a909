"""Joining a Ray cluster, and the Ray resources a replica asks for (flags to Ray's terms).

Ray is imported only inside `connect`: importing this module needs no Ray.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mingyan.errors import ModelError

MAX_REPLICAS = 1024  # as --ray-replicas


def parse_resources(spec: str) -> dict[str, float]:
    """`NAME=AMOUNT[,NAME=AMOUNT...]` (a bare NAME is 1): the Ray resources a replica asks for."""
    resources: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, amount = part.partition("=")
        try:
            resources[name.strip()] = float(amount) if sep else 1.0
        except ValueError:
            raise ModelError(f"a replica's Ray resources are NAME=AMOUNT,..., not {spec!r}") from None
        if not name.strip() or resources[name.strip()] <= 0:
            raise ModelError(f"a replica's Ray resources are NAME=AMOUNT,..., not {spec!r}")
    return resources


def parse_model_replicas(specs: Sequence[str], models: Sequence[str]) -> dict[str, int]:
    """`NAME=N` each: how many replicas model NAME (one of `models`) runs instead of the default."""
    counts: dict[str, int] = {}
    for spec in specs:
        name, _, count = spec.partition("=")
        name = name.strip()
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_REPLICAS:
            raise ModelError(f"--ray-model-replicas is NAME=N with N from 1 to {MAX_REPLICAS}, not {spec!r}")
        if name not in models:
            raise ModelError(
                f"--ray-model-replicas names {name!r}, which is not a model on Ray here ({', '.join(models)})"
            )
        counts[name] = int(count)
    return counts


def connect(address: str) -> None:
    """Join the Ray cluster at `address` ("auto": the one this machine belongs to; "local": start
    one inside this process). Offline: no dashboard, no usage statistics."""
    import os

    try:
        import ray
    except ImportError:
        raise ModelError("--ray needs Ray: pip install 'mingyan[ray]'") from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return
    if address == "local":
        ray.init(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
