"""Saved KV states of finished sequences, in RAM and on disk, found by exact token prefix.

A state is reused only for a prompt that starts with exactly the tokens it was computed
from (the engine trims it at the first differing token), so one conversation can never
leak into another. RAM holds the most recently used states within a byte budget; a state
pushed out of RAM is written (by a background thread) to a per-model directory on disk,
within its own budget, and so are all states still in RAM when the engine closes: the
conversations outlive RAM pressure and server restarts. Files record the model's sha256
and a checksum and are ignored when either does not match.

Every state belongs to a scope (the owner whose request computed it: an account, or "local")
and is reused only by requests of the same scope: another user's guesses never reach it, so
neither the count of reused tokens nor the time to first token tells them anything. On disk a
scope's files live in a directory named by a hash of the scope; `forget` removes a scope's (or
one conversation's) states from RAM and disk.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import queue
import shutil
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
MAGIC = b"MINGYAN-KV2\n"
Key = tuple[str, tuple[int, ...]]  # (scope id, tokens)


def scope_id(scope: str) -> str:
    """The name of a scope on disk: a hash, so no account id appears in a path or a file."""
    return hashlib.sha256(b"mingyan-kv-scope\0" + scope.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def label_id(label: str) -> str:
    return (
        hashlib.sha256(b"mingyan-kv-label\0" + label.encode("utf-8", "surrogatepass")).hexdigest()[:32] if label else ""
    )


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix (binary search over C-speed slice compares).

    Works on any mix of sequence types: slices of a list never equal slices of a tuple, so
    both sides are compared as tuples.
    """
    a, b = tuple(a), tuple(b)
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def forget_on_disk(kv_dir: Path, scope: str) -> int:
    """Remove the saved states of `scope` for every model under `kv_dir` (for a process without
    an engine, such as `mingyan users delete`); returns how many scope directories went."""
    folders = [f for f in kv_dir.glob("*/" + scope_id(scope)) if f.is_dir()] if kv_dir.is_dir() else []
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    return len(folders)


@dataclass(eq=False)
class Entry:
    scope: str  # scope_id() of the owner
    tokens: tuple[int, ...]
    size: int
    label: str = ""  # label_id() of the conversation, if the request named one
    state: bytes | None = None  # in RAM
    path: Path | None = None  # on disk (written)
    writing: bool = False  # queued for the disk writer

    @property
    def key(self) -> Key:
        return (self.scope, self.tokens)


class StateCache:
    def __init__(
        self,
        *,
        model_sha256: str,
        ram_bytes: int,
        disk_dir: Path | None,
        disk_bytes: int,
        min_tokens: int = 32,
    ) -> None:
        self.model_sha256 = model_sha256
        self.ram_bytes = ram_bytes
        self.disk_bytes = disk_bytes
        self.min_tokens = min_tokens
        self._entries: OrderedDict[Key, Entry] = OrderedDict()  # LRU first
        self._ram_used = 0
        self._lock = threading.Lock()
        self._disk_lock = threading.Lock()  # a file write and a scope's removal never interleave
        self._dir = disk_dir / model_sha256[:32] if disk_dir and disk_bytes > 0 and model_sha256 else None
        self._writes: queue.Queue[Entry | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        if self._dir is not None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._index_disk()
            self._writer = threading.Thread(target=self._write_loop, name="kv-writer", daemon=True)
            self._writer.start()

    # -- lookup ---------------------------------------------------------------------

    def best(self, scope: str, prompt: Sequence[int], limit: int) -> tuple[Entry | None, int]:
        """The entry of `scope` sharing the longest prefix with `prompt` (at most `limit` tokens)."""
        best, best_n = None, 0
        prompt, sid = tuple(prompt), scope_id(scope)
        with self._lock:
            for entry in self._entries.values():
                if entry.scope == sid and entry.tokens and prompt and entry.tokens[0] == prompt[0]:
                    n = min(common_prefix(entry.tokens, prompt), limit)
                    if n > best_n:
                        best, best_n = entry, n
        return best, best_n

    def load(self, entry: Entry) -> bytes | None:
        """The state of `entry` (read from disk into RAM if needed); None if unreadable."""
        with self._lock:
            if entry.state is not None:
                self._entries.move_to_end(entry.key)
                return entry.state
            path = entry.path
        state = self._read(path) if path is not None else None
        with self._lock:
            if state is None:
                self._drop_locked(entry)
            elif self._entries.get(entry.key) is entry and entry.state is None:
                entry.state = state
                self._ram_used += entry.size
                self._entries.move_to_end(entry.key)
                self._evict_ram_locked()
        return state

    # -- storing --------------------------------------------------------------------

    def put(self, scope: str, tokens: Sequence[int], state: bytes, *, label: str = "") -> None:
        tokens, sid = tuple(tokens), scope_id(scope)
        if len(tokens) < self.min_tokens or not state:
            return
        with self._lock:
            for old in [e for (s, t), e in self._entries.items() if s == sid and tokens[: len(t)] == t]:
                self._drop_locked(old)  # superseded: `tokens` extends it
            entry = Entry(scope=sid, tokens=tokens, size=len(state), label=label_id(label), state=state)
            self._entries[entry.key] = entry
            self._ram_used += len(state)
            self._evict_ram_locked()

    def forget(self, scope: str, label: str | None = None) -> int:
        """Remove the states of `scope` (only those of conversation `label`, if given) from RAM and
        disk; returns how many. Without a label the scope's directory goes too."""
        sid, lid = scope_id(scope), label_id(label) if label is not None else None
        with self._disk_lock:
            with self._lock:
                gone = [e for e in self._entries.values() if e.scope == sid and (lid is None or e.label == lid)]
                for entry in gone:
                    self._drop_locked(entry)
            if self._dir is not None and lid is None:
                shutil.rmtree(self._dir / sid, ignore_errors=True)
        return len(gone)

    def stats(self) -> tuple[int, int, int]:
        """(entries, bytes in RAM, entries on disk)."""
        with self._lock:
            on_disk = sum(1 for e in self._entries.values() if e.path is not None)
            return len(self._entries), self._ram_used, on_disk

    def close(self) -> None:
        """Write every state still only in RAM to disk, then stop the writer."""
        if self._writer is None:
            return
        with self._lock:
            for entry in self._entries.values():
                if entry.state is not None and entry.path is None and not entry.writing:
                    entry.writing = True
                    self._writes.put(entry)
        self._writes.put(None)
        self._writer.join()
        self._writer = None

    # -- internals ------------------------------------------------------------------

    def _evict_ram_locked(self) -> None:
        """Push least recently used states out of RAM: to disk, or away without a disk."""
        excess = self._ram_used - self.ram_bytes
        for entry in list(self._entries.values()):
            if excess <= 0:
                break
            if entry.state is None or entry.writing:
                continue
            excess -= entry.size
            if entry.path is not None:  # already on disk
                entry.state = None
                self._ram_used -= entry.size
            elif self._dir is not None:
                entry.writing = True  # RAM is released once the file is written
                self._writes.put(entry)
            else:
                self._drop_locked(entry)

    def _drop_locked(self, entry: Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        if entry.state is not None:
            self._ram_used -= entry.size
            entry.state = None
        if entry.path is not None:
            entry.path.unlink(missing_ok=True)
            entry.path = None

    def _write_loop(self) -> None:
        while (entry := self._writes.get()) is not None:
            try:
                with self._disk_lock:
                    self._write(entry)
                self._enforce_disk_budget()
            except OSError as exc:  # a full disk, above all: skip this state rather than keep it in RAM
                log.warning("KV state not saved (the next turn of its conversation prefills again): %s", exc)
                with self._lock:
                    entry.writing = False
                    if self._ram_used > self.ram_bytes:
                        self._drop_locked(entry)

    def _write(self, entry: Entry) -> None:
        assert self._dir is not None
        with self._lock:
            state = entry.state
            if state is None or self._entries.get(entry.key) is not entry:  # forgotten or superseded
                entry.writing = False
                return
        folder = self._dir / entry.scope
        folder.mkdir(exist_ok=True)
        path = folder / (hashlib.sha256(array("i", entry.tokens).tobytes()).hexdigest()[:40] + ".kv")
        header = (
            json.dumps(
                {
                    "model_sha256": self.model_sha256,
                    "scope": entry.scope,
                    "label": entry.label,
                    "n_tokens": len(entry.tokens),
                    "state_sha256": hashlib.sha256(state).hexdigest(),
                    "state_bytes": len(state),
                }
            ).encode()
            + b"\n"
        )
        body = MAGIC + header + array("i", entry.tokens).tobytes()
        free = shutil.disk_usage(folder).free
        if free < len(body) + len(state):  # the space is better left to the database
            raise OSError(errno.ENOSPC, f"no space left on device for a {len(state)}-byte state ({free} bytes free)")
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(body)
                f.write(state)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # never leave half a file behind
            raise
        with self._lock:
            entry.writing = False
            if self._entries.get(entry.key) is not entry:  # superseded meanwhile
                path.unlink(missing_ok=True)
                return
            entry.path = path
            if self._ram_used > self.ram_bytes and entry.state is not None:
                entry.state = None
                self._ram_used -= entry.size

    def _read(self, path: Path, *, header_only: bool = False):
        """The state (or, with header_only, the header and the token tuple) of a file; None if invalid."""
        try:
            with open(path, "rb") as f:
                if f.readline() != MAGIC:
                    return None
                header = json.loads(f.readline())
                if header.get("model_sha256") != self.model_sha256 or header.get("scope") != path.parent.name:
                    return None
                tokens = array("i")
                tokens.frombytes(f.read(4 * int(header["n_tokens"])))
                if header_only:
                    return header, tuple(tokens)
                state = f.read()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if len(state) != header["state_bytes"] or hashlib.sha256(state).hexdigest() != header["state_sha256"]:
            return None
        return state

    def _index_disk(self) -> None:
        """Index the scopes' files; remove unfinished writes and files of no scope (older versions)."""
        assert self._dir is not None
        for stray in [*self._dir.glob("*.kv"), *self._dir.glob("*.tmp"), *self._dir.glob("*/*.tmp")]:
            stray.unlink(missing_ok=True)
        for path in sorted(self._dir.glob("*/*.kv"), key=lambda p: p.stat().st_mtime):
            found = self._read(path, header_only=True)
            if isinstance(found, tuple) and found[1]:
                header, tokens = found
                entry = Entry(
                    scope=path.parent.name,
                    tokens=tokens,
                    size=path.stat().st_size,
                    label=str(header.get("label") or ""),
                    path=path,
                )
                self._entries[entry.key] = entry
            else:
                path.unlink(missing_ok=True)

    def _enforce_disk_budget(self) -> None:
        with self._lock:
            on_disk = [e for e in self._entries.values() if e.path is not None]
            total = sum(e.size for e in on_disk)
            for entry in on_disk:  # least recently used first
                if total <= self.disk_bytes:
                    break
                total -= entry.size
                assert entry.path is not None  # on_disk: the entries with a file
                entry.path.unlink(missing_ok=True)
                entry.path = None
                if entry.state is None:
                    del self._entries[entry.key]
