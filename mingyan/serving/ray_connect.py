"""Joining a Ray cluster, and the Ray resources a replica asks for (flags to Ray's terms).

Ray is imported only inside `connect`: importing this module needs no Ray.
"""

from __future__ import annotations

import logging

from mingyan.errors import ModelError


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
