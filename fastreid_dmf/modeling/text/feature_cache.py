"""The token-feature cache of a frozen text encoder: in memory, optionally backed by shard files on disk.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: a frozen encoder's token features of a description
never change, so they are computed once, kept in memory and, with a cache folder, written to disk so that
a restarted or a second run does not run the encoder again.

:class:`TextFeatureCache` is the one object that owns all of it: the in-memory features, the persistent
:class:`.shard_store.ShardStore` (opened by :func:`open_feature_cache` from the encoder's
:mod:`.fingerprint`), when pending features are written, the store's lifetime (a ``weakref.finalize``
writes what is pending when the cache is collected or the interpreter exits) and the statistics
(:class:`TextCacheStats`).
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from dataclasses import asdict, dataclass

import torch

from . import shard_store
from .fingerprint import FileHashCache, encoder_fingerprint
from .shard_store import CACHE_DIR_KEY, ShardStore

__all__ = ["CACHE_DIR_KEY", "TextCacheStats", "TextFeatureCache", "open_feature_cache", "resolve_text_cache_dir"]

logger = logging.getLogger(__name__)


@dataclass
class TextCacheStats:
    """Counters of a :class:`TextFeatureCache` (a :meth:`TextFeatureCache.get` counts one description).

    Attributes:
        hits: descriptions served from the cache (memory or disk).
        disk_hits: the part of ``hits`` whose features were read from shard files.
        misses: descriptions not in the cache (the encoder had to run on them).
        loaded_from_disk: descriptions read from shard files at start.
        written: descriptions written to shard files by :meth:`TextFeatureCache.flush` (and automatic writes).
        skipped_files: shard files that could not be used (warned).
        write_seconds: wall time spent writing shard files and manifests (float seconds).
    """

    hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    loaded_from_disk: int = 0
    written: int = 0
    skipped_files: int = 0
    write_seconds: float = 0.0


class TextFeatureCache:
    """Per-description token features of one frozen encoder, in memory and optionally on disk.

    Public API: :meth:`get` / :meth:`put` one description's features, :meth:`load` the shard files
    (done by the first :meth:`get` / :meth:`put`), :meth:`flush` pending features to a new shard,
    :attr:`stats`, :meth:`summary`, :meth:`close`; ``len()`` and ``in`` (these count nothing).

    Features are float32 ``(L, D)`` CPU tensors, the valid tokens of one description (L <= max_tokens);
    those read from disk are memory-mapped, so callers must not modify returned tensors in place.

    With a ``store``, every :meth:`put` is queued for disk and a shard is written every ``flush_every``
    queued descriptions; a failed automatic write is warned about once and turns persistent writing off
    for this cache (features stay in memory; training goes on). What is still pending when the cache is
    garbage-collected or the interpreter exits is written then (``weakref.finalize``; the finaliser holds
    the store, never the cache; a failure there is a warning).

    Args:
        store: the persistent store, or None for a cache in memory only.
        flush_every: descriptions per shard file (checked only with a store).

    Raises:
        ValueError: a store and ``flush_every`` < 1.
    """

    def __init__(self, store: ShardStore | None = None, flush_every: int = 1000) -> None:
        if store is not None and flush_every < 1:
            raise ValueError(f"flush_every={flush_every}: expected an integer >= 1")
        self._store = store
        self.flush_every = int(flush_every)
        self._features: dict[str, torch.Tensor] = {}
        self._from_disk: set[str] = set()
        self._stats = TextCacheStats()
        self._loaded = False
        self._write_failed = False
        self._closed = False
        self._finalizer = weakref.finalize(self, store.flush_quietly) if store is not None else None

    @property
    def folder(self) -> str | None:
        """Folder of the persistent shards (None: in memory only)."""
        return self._store.folder if self._store is not None else None

    @property
    def fingerprint(self) -> str | None:
        """sha256 fingerprint (64 hex chars) of the encoder behind the persistent store (None without one)."""
        return self._store.fingerprint if self._store is not None else None

    @property
    def stats(self) -> TextCacheStats:
        """A copy of the counters (see :class:`TextCacheStats`)."""
        return TextCacheStats(**asdict(self._stats))

    def __len__(self) -> int:
        """Descriptions held in memory (including those read from disk)."""
        return len(self._features)

    def __contains__(self, text: object) -> bool:
        return text in self._features

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"text feature cache {self.folder or '(memory)'} is closed")

    def load(self) -> int:
        """Read the store's shard files into memory, once (later calls do nothing).

        Returns:
            The number of descriptions read from disk by this call (0 without a store or when already loaded).
            Unusable shard files are warned about and counted in ``stats.skipped_files``, never raised.

        Raises:
            RuntimeError: the cache is closed.
        """
        self._check_open()
        if self._loaded:
            return 0
        self._loaded = True
        if self._store is None:
            return 0
        result = self._store.load()
        self._stats.loaded_from_disk = len(result.features)
        self._stats.skipped_files += result.skipped_files
        for text, feats in result.features.items():
            if text not in self._features:
                self._features[text] = feats
                self._from_disk.add(text)
        return len(result.features)

    def get(self, text: str) -> torch.Tensor | None:
        """Cached features of one description, counted as a hit (and a disk hit) or a miss.

        Returns:
            float32 ``(L, D)`` CPU tensor (shared: do not modify), or None when not cached.

        Raises:
            RuntimeError: the cache is closed.
        """
        self.load()
        feats = self._features.get(text)
        if feats is None:
            self._stats.misses += 1
            return None
        self._stats.hits += 1
        if text in self._from_disk:
            self._stats.disk_hits += 1
        return feats

    def put(self, text: str, feats: torch.Tensor) -> None:
        """Keep one description's float32 ``(L, D)`` CPU features; with a store also queue them for disk.

        Writes a shard when ``flush_every`` descriptions are queued (a failure there is warned about once
        and turns persistent writing off, see the class docstring).

        Raises:
            RuntimeError: the cache is closed.
        """
        self.load()
        self._features[text] = feats
        if self._store is None or self._write_failed:
            return
        self._store.add(text, feats)
        if self._store.pending >= self.flush_every:
            try:
                self.flush()
            except OSError as err:
                self._write_failed = True
                logger.warning("text feature cache: could not write to %s (%s); persistent caching is off for this "
                               "run, features stay in memory", self._store.folder, err)

    def flush(self) -> int:
        """Write pending features to a new shard file now.

        Returns:
            How many descriptions were written (0 without a store or with nothing pending).

        Raises:
            OSError: the cache folder cannot be written (pending features are kept for a later try).
        """
        if self._store is None:
            return 0
        start = time.perf_counter()
        written, name = self._store.flush()
        if not written:
            return 0
        self._stats.written += written
        self._stats.write_seconds += time.perf_counter() - start
        logger.info("text feature cache %s: wrote %d descriptions to %s; %s", self._store.folder, written, name,
                    self._counts())
        return written

    def close(self) -> int:
        """Write pending features (as :meth:`flush`), stop the exit finaliser and drop the in-memory features.

        Afterwards :meth:`get`, :meth:`put` and :meth:`load` raise ``RuntimeError``; :meth:`flush` and
        :meth:`close` return 0. Memory-mapped shard data is released once no caller holds a returned tensor.

        Returns:
            How many descriptions were written.

        Raises:
            OSError: the cache folder cannot be written (the cache then stays open).
        """
        if self._closed:
            return 0
        written = self.flush()
        if self._finalizer is not None:
            self._finalizer.detach()
        self._features.clear()
        self._from_disk.clear()
        self._closed = True
        return written

    def _counts(self) -> str:
        s = self._stats
        pending = self._store.pending if self._store is not None else 0
        return (f"hits {s.hits} (from disk {s.disk_hits}), misses {s.misses}, loaded from disk {s.loaded_from_disk}, "
                f"written {s.written}, pending {pending}, skipped files {s.skipped_files}")

    def summary(self) -> str:
        """One line: the folder (or ``memory``), hits, misses, loaded from disk, written, pending, skipped files."""
        if self._store is not None:
            return f"text feature cache {self._store.folder}: {self._counts()}"
        s = self._stats
        return f"text feature cache (memory): hits {s.hits}, misses {s.misses}, {len(self._features)} descriptions"


def open_feature_cache(cache_dir: str, folder: str, model_class: str, max_tokens: int, hidden_size: int,
                       info: dict, slug: str, flush_every: int = 1000) -> TextFeatureCache:
    """Fingerprint the encoder folder and open its persistent :class:`TextFeatureCache` under ``cache_dir``.

    File hashes are remembered in ``<cache_dir>/file_hashes.json`` (written by
    rank 0 only; a write failure is warned about, not raised). Nothing is read from the shard
    folder yet (see :meth:`TextFeatureCache.load`).

    Args:
        cache_dir: cache root (``MODEL.DMF.TEXT_ENCODER.CACHE_DIR`` resolved).
        folder: local ``transformers`` model folder of the encoder.
        model_class, max_tokens: see :func:`.fingerprint.encoder_fingerprint`.
        hidden_size: D_t of the stored token features.
        info: what the manifest records about the encoder (``files`` is added).
        slug: readable prefix of the fingerprint folder name.
        flush_every: see :class:`TextFeatureCache`.

    Raises:
        FileNotFoundError, OSError: an encoder file cannot be read.
        ValueError: ``flush_every`` < 1.
    """
    start = time.perf_counter()
    hashes = FileHashCache(os.path.join(cache_dir, "file_hashes.json"))
    fingerprint, files = encoder_fingerprint(folder, model_class, max_tokens, hashes)
    if shard_store.current_rank() == 0:
        try:
            hashes.save()
        except OSError as err:
            logger.warning("text feature cache: cannot write %s (%s)", hashes.path, err)
    logger.info("Text encoder %s: fingerprint %s in %.2f s (%d MB hashed)", info.get("encoder", folder),
                fingerprint[:16], time.perf_counter() - start, hashes.hashed_bytes // 2**20)
    store = ShardStore(cache_dir, fingerprint, hidden_size, {**info, "files": files}, slug=slug)
    return TextFeatureCache(store, flush_every=flush_every)


def resolve_text_cache_dir(cache_dir: str, output_dir: str) -> str | None:
    """Folder of the persistent text cache from ``MODEL.DMF.TEXT_ENCODER.CACHE_DIR``.

    ``""`` -> ``<output_dir>/text_feature_cache``; ``"none"`` (any case) -> None
    (in memory only); anything else -> that path (``~`` expanded). Raises
    nothing; a path that is not a folder is rejected by
    :class:`.text_encoder.TextTokenEncoder`.
    """
    value = str(cache_dir).strip()
    if value.lower() == "none":
        return None
    if value == "":
        return os.path.join(output_dir or ".", "text_feature_cache")
    return os.path.expanduser(value)
