"""On-disk, restart-proof store of a frozen text encoder's token features: shard files of one fingerprint.

DMF (Xiang et al., arXiv 2211.00933) Eq. 5: the frozen encoder's features of a description never change,
so they are computed once per encoder and description and kept here. :class:`ShardStore` only reads and
writes files; the in-memory cache, the write policy, the statistics and the store's lifetime belong to
:class:`.feature_cache.TextFeatureCache`.

Layout (``MODEL.DMF.TEXT_ENCODER.CACHE_DIR``)::

    <cache root>/
      file_hashes.json              sha256 of encoder files by (path, size, mtime, inode) (.fingerprint)
      <encoder slug>-<fp[:16]>/     one folder per encoder fingerprint (.fingerprint.encoder_fingerprint)
        manifest.json               what the folder is: encoder, files, max_tokens, counts, dates
        shard-r<rank>-<time_ns>-<pid>.pt   append-only shards, each written once (fastreid_dmf.fileio.atomic_write)

A different encoder or setting therefore uses a different folder; other folders are never touched.
Within a folder a description is keyed by the sha256 of its exact text and the text is stored with it,
so an edited description simply misses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from datetime import datetime, timezone
from typing import NamedTuple

import torch

from ...fileio import atomic_write
from .fingerprint import CACHE_FORMAT_VERSION

__all__ = ["CACHE_DIR_KEY", "ShardLoad", "ShardStore", "current_rank"]

logger = logging.getLogger(__name__)

#: Config key named in this package's cache error messages.
CACHE_DIR_KEY = "MODEL.DMF.TEXT_ENCODER.CACHE_DIR"


def current_rank() -> int:
    """This process's distributed rank (fast-reid's ``comm.get_rank()``; 0 without ``torch.distributed``)."""
    from fastreid.utils import comm

    return comm.get_rank()


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ShardLoad(NamedTuple):
    """What :meth:`ShardStore.load` read.

    Attributes:
        features: ``{text: float32 (L_text, D)}``, memory-mapped (read-only use).
        shard_files: shard files found.
        skipped_files: shard files that could not be used (each warned about by name).
    """

    features: dict[str, torch.Tensor]
    shard_files: int
    skipped_files: int


class ShardStore:
    """Append-only on-disk store of token features for one encoder fingerprint (no statistics, no policy).

    Shard file (``torch.save``, read with ``weights_only=True, mmap=True``):
    ``{"format": int, "fingerprint": str, "keys": [sha256(text)], "texts": [str],
    "offsets": int64 (n + 1,), "features": float32 (sum of lengths, D)}``; entry
    i is ``features[offsets[i]:offsets[i + 1]]``, the valid tokens of text i,
    bit-identical to what the encoder returned.

    Multi-process: every process writes only its own shard files, named
    ``shard-r<rank>-<time_ns>-<pid>.pt`` (DDP ranks and concurrent runs sharing
    a folder never write the same file); ``manifest.json`` is written by rank 0
    only. A description written by two processes appears twice; the first one read wins.

    Args:
        root: cache root folder (created on the first write).
        fingerprint: see :func:`.fingerprint.encoder_fingerprint`.
        hidden_size: D, width of the stored features.
        info: extra manifest fields (encoder name, path, files, ...).
        slug: readable prefix of the folder name.
    """

    def __init__(self, root: str, fingerprint: str, hidden_size: int, info: dict | None = None,
                 slug: str = "encoder") -> None:
        self.root = root
        self.fingerprint = fingerprint
        self.hidden_size = int(hidden_size)
        self.info = dict(info or {})
        self.folder = os.path.join(root, f"{slug}-{fingerprint[:16]}")
        self._pending: list[tuple[str, torch.Tensor]] = []
        self._on_disk = 0

    @property
    def pending(self) -> int:
        """Number of descriptions queued by :meth:`add` and not yet written."""
        return len(self._pending)

    def _warn_skip(self, path: str, reason: str) -> None:
        logger.warning("text feature cache: skipping shard file %s (%s); its descriptions are recomputed. "
                       "The file is left in place.", path, reason)

    def _read_shard(self, path: str) -> list[tuple[str, torch.Tensor]] | None:
        """Entries of one shard file, or None (warned) when the file cannot be used."""
        try:
            # Not fastreid_dmf.engine.checkpoint.read_checkpoint: it cannot memory-map (mmap=True keeps the
            # features on disk until used); weights_only=True keeps the same no-pickled-code guarantee.
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001  (any unreadable file is skipped, never fatal)
            self._warn_skip(path, f"unreadable: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            return None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            self._warn_skip(path, f"format {found!r}, expected {CACHE_FORMAT_VERSION}")
            return None
        if data.get("fingerprint") != self.fingerprint:
            self._warn_skip(path, "written for another encoder fingerprint")
            return None
        keys, texts = data.get("keys"), data.get("texts")
        feats, offsets = data.get("features"), data.get("offsets")
        ok = (isinstance(keys, list) and isinstance(texts, list) and isinstance(feats, torch.Tensor)
              and isinstance(offsets, torch.Tensor) and feats.dtype == torch.float32 and feats.dim() == 2
              and offsets.dtype == torch.int64 and offsets.dim() == 1 and len(keys) == len(texts) == len(offsets) - 1)
        if ok:
            bounds = offsets.tolist()
            ok = (feats.shape[1] == self.hidden_size and bounds[0] == 0 and bounds[-1] == feats.shape[0]
                  and all(a <= b for a, b in zip(bounds, bounds[1:])))
        if not ok:
            self._warn_skip(path, f"inconsistent content (expected float32 features of width {self.hidden_size} "
                                  "and matching keys/texts/offsets)")
            return None
        entries, bad = [], 0
        for i, (key, text) in enumerate(zip(keys, texts)):
            if not isinstance(text, str) or _text_key(text) != key:
                bad += 1
                continue
            entries.append((text, feats[bounds[i]:bounds[i + 1]]))
        if bad:
            logger.warning("text feature cache: %d entries of %s do not match their text hash; skipped", bad, path)
        return entries

    def load(self) -> ShardLoad:
        """Read every shard of this fingerprint's folder.

        Returns:
            :class:`ShardLoad`: ``{text: float32 (L_text, D)}`` (memory-mapped, read-only use) and the
            file counts. Unreadable or inconsistent shard files are skipped with a warning naming the
            file; nothing is deleted. Raises nothing for bad files.
        """
        loaded: dict[str, torch.Tensor] = {}
        if not os.path.isdir(self.folder):
            self._note_other_folders()
            return ShardLoad(loaded, 0, 0)
        self._check_manifest()
        shards = sorted(n for n in os.listdir(self.folder) if n.startswith("shard-") and n.endswith(".pt"))
        skipped = 0
        for name in shards:
            entries = self._read_shard(os.path.join(self.folder, name))
            if entries is None:
                skipped += 1
                continue
            for text, feats in entries:
                loaded.setdefault(text, feats)
        self._on_disk = len(loaded)
        logger.info("text feature cache %s: %d descriptions loaded from %d shard files (%d skipped)",
                    self.folder, len(loaded), len(shards), skipped)
        self._note_other_folders()
        return ShardLoad(loaded, len(shards), skipped)

    def _note_other_folders(self) -> None:
        if not os.path.isdir(self.root):
            return
        others = [n for n in os.listdir(self.root) if os.path.join(self.root, n) != self.folder
                  and os.path.isfile(os.path.join(self.root, n, "manifest.json"))]
        if others:
            logger.info("text feature cache %s: %d folder(s) of other encoders/settings are kept (%s); delete them "
                        "by hand if no longer needed", self.root, len(others), ", ".join(sorted(others)[:5]))

    def _check_manifest(self) -> None:
        path = os.path.join(self.folder, "manifest.json")
        if not os.path.isfile(path):
            return
        try:
            with open(path, encoding="utf-8") as handle:
                manifest = json.load(handle)
        except (OSError, ValueError) as err:
            logger.warning("text feature cache: unreadable manifest %s (%s)", path, err)
            return
        if isinstance(manifest, dict) and manifest.get("fingerprint") not in (None, self.fingerprint):
            logger.warning("text feature cache: manifest %s names fingerprint %s, expected %s; only shards with the "
                           "expected fingerprint are used", path, manifest.get("fingerprint"), self.fingerprint)

    def add(self, text: str, feats: torch.Tensor) -> None:
        """Queue one description's float32 ``(L, D)`` CPU features for the next :meth:`flush` (writes nothing)."""
        self._pending.append((text, feats))

    def flush(self) -> tuple[int, str]:
        """Write the queued descriptions to a new shard file (atomic write); rank 0 then updates the manifest.

        Returns:
            ``(written, shard file name)``; ``(0, "")`` when nothing was queued.

        Raises:
            OSError: the folder or file cannot be written (message names it);
                queued entries are kept for a later try.
        """
        if not self._pending:
            return 0, ""
        pending = self._pending
        rank = current_rank()
        name = f"shard-r{rank:03d}-{time.time_ns()}-{os.getpid()}.pt"
        path = os.path.join(self.folder, name)
        lengths = [feats.shape[0] for _, feats in pending]
        offsets = torch.zeros(len(pending) + 1, dtype=torch.int64)
        offsets[1:] = torch.tensor(lengths, dtype=torch.int64).cumsum(0)
        shard = {"format": CACHE_FORMAT_VERSION, "fingerprint": self.fingerprint,
                 "keys": [_text_key(t) for t, _ in pending], "texts": [t for t, _ in pending], "offsets": offsets,
                 "features": torch.cat([f.to(torch.float32) for _, f in pending], dim=0)}
        try:
            os.makedirs(self.folder, exist_ok=True)
            atomic_write(path, lambda handle: torch.save(shard, handle))
        except OSError as err:
            raise OSError(f"text feature cache: cannot write shard {path!r} ({CACHE_DIR_KEY}): {err}") from err
        self._pending = []
        self._on_disk += len(pending)
        if rank == 0:
            self._write_manifest()
        return len(pending), name

    def _write_manifest(self) -> None:
        path = os.path.join(self.folder, "manifest.json")
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        created = now
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    created = json.load(handle).get("created", now)
            except (OSError, ValueError, AttributeError):
                pass
        import transformers

        manifest = {"format": CACHE_FORMAT_VERSION, "fingerprint": self.fingerprint, **self.info,
                    "hidden_size": self.hidden_size, "entries": self._on_disk, "created": created, "updated": now,
                    "torch": torch.__version__, "transformers": transformers.__version__,
                    "note": "token features of a frozen text encoder (fastreid-dmf); entries counts this writer's "
                            "view. Safe to delete when no run uses this encoder any more."}
        data = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
        atomic_write(path, lambda handle: handle.write(data))

    def flush_quietly(self) -> None:
        """:meth:`flush` for finalizers (interpreter exit / garbage collection): warns instead of raising."""
        try:
            written, name = self.flush()
        except Exception as err:  # noqa: BLE001  (interpreter shutdown: report, do not raise)
            logger.warning("text feature cache: %d pending descriptions could not be written at exit (%s); they are "
                           "recomputed next run", self.pending, err)
            return
        if written:
            logger.info("text feature cache %s: wrote %d descriptions to %s at exit", self.folder, written, name)
