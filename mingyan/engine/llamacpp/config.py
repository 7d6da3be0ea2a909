"""How the llama.cpp engine is sized: its settings, and the number of slots chosen from cores and memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EngineConfig:
    n_ctx: int = 4096  # per slot: the longest conversation one request can have
    n_slots: int = 0  # 0: chosen from cores and memory (see auto_slots)
    n_threads: int = 2
    n_batch: int = 512
    prefill_chunk: int = 128  # prompt tokens per step while other slots are generating
    max_queue: int = 64
    cache_ram_bytes: int = 512 << 20
    cache_disk_bytes: int = 4 << 30
    cache_dir: Path | None = None
    speculative: bool = True  # prompt-lookup drafts, verified in the same decode (speculation.py)
    max_draft: int = 16  # drafted tokens per stream and step, at most


MAX_AUTO_SLOTS = 8
KV_MEMORY_SHARE = 0.25  # of available memory, at most, for the KV cache of all slots


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 << 30


def auto_slots(kv_bytes_per_slot: int, cores: int) -> int:
    """Two slots per core (batching pays off beyond the core count), 2..8, within memory."""
    slots = min(MAX_AUTO_SLOTS, max(2, 2 * cores))
    budget = available_memory() * KV_MEMORY_SHARE
    while slots > 1 and slots * kv_bytes_per_slot > budget:
        slots -= 1
    return slots
