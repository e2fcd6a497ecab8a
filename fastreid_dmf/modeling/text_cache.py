"""Persistent, restart-proof cache of a frozen text encoder's token features.

Used by :class:`fastreid_dmf.modeling.text_encoder.TextTokenEncoder` (DMF Eq. 5:
the frozen encoder's features of a description never change, so they are
computed once per encoder and description).

Persistent cache layout (``MODEL.DMF.TEXT_ENCODER.CACHE_DIR``)::

    <cache root>/
      file_hashes.json              sha256 of encoder files by (path, size, mtime, inode)
      <encoder slug>-<fp[:16]>/     one folder per encoder fingerprint
        manifest.json               what the folder is: encoder, files, max_tokens, counts, dates
        shard-r<rank>-<time_ns>-<pid>.pt   append-only shards, each written once (tmp file + os.replace)

The fingerprint is the sha256 of the cache format version, the encoder class,
``max_tokens`` and the sha256 of every file ``AutoModel``/``AutoTokenizer``
read from the model folder (config, weights, tokenizer files). A different
encoder or setting therefore uses a different folder; other folders are never
touched. Within a folder a description is keyed by the sha256 of its exact
text and the text is stored with it, so an edited description simply misses.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import torch

from ..fileio import atomic_write

__all__ = [
    "CACHE_DIR_KEY",
    "CACHE_FORMAT_VERSION",
    "TextCacheStats",
    "encoder_files",
    "FileHashCache",
    "encoder_fingerprint",
    "PersistentTextFeatureCache",
    "open_feature_cache",
    "resolve_text_cache_dir",
]

logger = logging.getLogger(__name__)

#: Config key named in this module's error messages.
CACHE_DIR_KEY = "MODEL.DMF.TEXT_ENCODER.CACHE_DIR"

#: Version of the on-disk cache layout and of the tokenisation call; part of the fingerprint, so bumping it
#: makes every run start a fresh folder (old folders are kept).
CACHE_FORMAT_VERSION = 1

#: Weight files of other frameworks that ``AutoModel`` (PyTorch) does not read; not hashed.
_FOREIGN_WEIGHTS = (".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".gguf", ".mlmodel")


def encoder_files(folder: str) -> list[str]:
    """Names of the files in a model folder that define the encoder and its tokenizer (sorted).

    Every regular top-level file, except: hidden files, ``README*``,
    ``LICENSE*``/``NOTICE*``, ``*.md``, weights of other frameworks (``.h5``,
    ``.msgpack``, ``.onnx``, ...), and ``*.bin`` weights when ``*.safetensors``
    exist (``transformers`` then reads the safetensors). Sub-folders (e.g.
    sentence-transformers' ``1_Pooling``, ``onnx/``) are not read by ``AutoModel``.

    Raises:
        FileNotFoundError: ``folder`` is not a directory or has no ``config.json``.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"text-encoder folder {folder!r} does not exist")
    names = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n)))
    if "config.json" not in names:
        raise FileNotFoundError(f"text-encoder folder {folder!r} has no config.json")
    has_safetensors = any(n.endswith(".safetensors") for n in names)
    kept = []
    for name in names:
        lower = name.lower()
        if name.startswith(".") or lower.startswith(("readme", "license", "notice")) or lower.endswith(".md"):
            continue
        if lower.endswith(_FOREIGN_WEIGHTS):
            continue
        if has_safetensors and (lower.endswith(".bin") or lower.endswith(".bin.index.json")):
            continue
        kept.append(name)
    return kept


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write_bytes(path: str, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


class FileHashCache:
    """sha256 of files, remembered by ``(absolute path, size, mtime_ns, inode)`` in a JSON file.

    Hashing the weights at every start costs about 1 s per GB (measured: 0.08 s
    for the 91 MB MiniLM safetensors with a warm page cache; a 440 MB
    data2vec-text-base ~0.4 s warm, several seconds from a cold disk), so the
    hashes are kept in ``<cache root>/file_hashes.json``. A file rewritten in
    place changes its mtime (and usually its inode), so it is hashed again.

    Args:
        path: the JSON file; None = remember in memory only.

    Unreadable JSON is ignored with a warning (the file is rewritten on the next
    :meth:`save`, it only holds derived data).
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._entries: dict[str, list] = {}
        self._dirty = False
        self.hashed_bytes = 0
        if path and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    data = json.load(handle)
                if not isinstance(data, dict):
                    raise ValueError("expected a JSON object")
                self._entries = data
            except (OSError, ValueError) as err:
                logger.warning("text feature cache: ignoring unreadable file-hash cache %s (%s); files are re-hashed",
                               path, err)

    def sha256(self, path: str) -> str:
        """Hex sha256 of the file at ``path`` (from the cache when size, mtime and inode are unchanged).

        Raises:
            OSError: the file cannot be read.
        """
        full = os.path.abspath(path)
        stat = os.stat(full)
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        entry = self._entries.get(full)
        if isinstance(entry, list) and len(entry) == 4 and entry[:3] == signature:
            return str(entry[3])
        digest = _sha256_file(full)
        self.hashed_bytes += stat.st_size
        self._entries[full] = [*signature, digest]
        self._dirty = True
        return digest

    def save(self) -> None:
        """Write the JSON file atomically if new hashes were computed (no-op without a path).

        Raises:
            OSError: the folder or file cannot be written (the previous file is kept).
        """
        if not self.path or not self._dirty:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        _atomic_write_bytes(self.path, json.dumps(self._entries, indent=0, sort_keys=True).encode("utf-8"))
        self._dirty = False


def encoder_fingerprint(folder: str, model_class: str, max_tokens: int,
                        hash_cache: FileHashCache | None = None) -> tuple[str, dict[str, str]]:
    """Fingerprint of an encoder folder + setting; changes whenever the features could change.

    Args:
        folder: local ``transformers`` model folder.
        model_class: class name of the loaded model (e.g. ``Data2VecTextModel``).
        max_tokens: tokenizer truncation length.
        hash_cache: where file hashes are remembered (default: hash every file).

    Returns:
        ``(fingerprint, files)``: 64 hex chars (sha256 of a JSON document of
        :data:`CACHE_FORMAT_VERSION`, ``model_class``, ``max_tokens`` and the
        files' sha256) and ``{file name: sha256}`` of :func:`encoder_files`.

    Raises:
        FileNotFoundError, OSError: the folder or a file cannot be read.
    """
    cache = hash_cache or FileHashCache(None)
    files = {name: cache.sha256(os.path.join(folder, name)) for name in encoder_files(folder)}
    document = {"format": CACHE_FORMAT_VERSION, "model_class": model_class, "max_tokens": int(max_tokens),
                "files": files}
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()
    return digest, files


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _rank() -> int:
    from fastreid.utils import comm

    return comm.get_rank()


# ---------------------------------------------------------------------------------------------------------------
# Persistent cache
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TextCacheStats:
    """Counters of a :class:`TextTokenEncoder` cache (unique descriptions per call).

    Attributes:
        hits: descriptions served from the cache (memory or disk).
        disk_hits: the part of ``hits`` whose features were read from shard files.
        misses: descriptions the encoder had to run on.
        loaded_from_disk: descriptions read from shard files at start.
        written: descriptions written to shard files by this process.
        skipped_files: shard files that could not be used (warned).
    """

    hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    loaded_from_disk: int = 0
    written: int = 0
    skipped_files: int = 0


class PersistentTextFeatureCache:
    """Append-only on-disk store of token features for one encoder fingerprint.

    Shard file (``torch.save``, read with ``weights_only=True, mmap=True``):
    ``{"format": int, "fingerprint": str, "keys": [sha256(text)], "texts": [str],
    "offsets": int64 (n + 1,), "features": float32 (sum of lengths, D)}``; entry
    i is ``features[offsets[i]:offsets[i + 1]]``, the valid tokens of text i,
    bit-identical to what the encoder returned.

    Multi-process: every process writes only its own shard files, named
    ``shard-r<rank>-<time_ns>-<pid>.pt`` (DDP ranks and concurrent runs sharing
    a folder never write the same file); ``manifest.json`` and
    ``file_hashes.json`` are written by rank 0 only. A description written by
    two processes appears twice; the first one read wins.

    Args:
        root: cache root folder (created on the first write).
        fingerprint: see :func:`encoder_fingerprint`.
        hidden_size: D, width of the stored features.
        info: extra manifest fields (encoder name, path, files, ...).
        slug: readable prefix of the folder name.
        flush_every: write a shard whenever this many new descriptions are pending.

    Raises:
        ValueError: ``flush_every`` < 1.
    """

    def __init__(self, root: str, fingerprint: str, hidden_size: int, info: dict | None = None, slug: str = "encoder",
                 flush_every: int = 1000) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every={flush_every}: expected an integer >= 1")
        self.root = root
        self.fingerprint = fingerprint
        self.hidden_size = int(hidden_size)
        self.info = dict(info or {})
        self.folder = os.path.join(root, f"{slug}-{fingerprint[:16]}")
        self.flush_every = int(flush_every)
        self.stats = TextCacheStats()
        self._pending: list[tuple[str, torch.Tensor]] = []
        self._on_disk = 0
        self._write_failed = False

    @property
    def pending(self) -> int:
        """Number of descriptions not yet written to disk."""
        return len(self._pending)

    def _warn_skip(self, path: str, reason: str) -> None:
        self.stats.skipped_files += 1
        logger.warning("text feature cache: skipping shard file %s (%s); its descriptions are recomputed. "
                       "The file is left in place.", path, reason)

    def _read_shard(self, path: str) -> Iterable[tuple[str, torch.Tensor]]:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001  (any unreadable file is skipped, never fatal)
            self._warn_skip(path, f"unreadable: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            return []
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            self._warn_skip(path, f"format {found!r}, expected {CACHE_FORMAT_VERSION}")
            return []
        if data.get("fingerprint") != self.fingerprint:
            self._warn_skip(path, "written for another encoder fingerprint")
            return []
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
            return []
        entries, bad = [], 0
        for i, (key, text) in enumerate(zip(keys, texts)):
            if not isinstance(text, str) or _text_key(text) != key:
                bad += 1
                continue
            entries.append((text, feats[bounds[i]:bounds[i + 1]]))
        if bad:
            logger.warning("text feature cache: %d entries of %s do not match their text hash; skipped", bad, path)
        return entries

    def load(self) -> dict[str, torch.Tensor]:
        """Read every shard of this fingerprint's folder.

        Returns:
            ``{text: float32 (L_text, D)}`` (memory-mapped, read-only use).
            Unreadable or inconsistent shard files are skipped with a warning
            naming the file; nothing is deleted.
        """
        loaded: dict[str, torch.Tensor] = {}
        if not os.path.isdir(self.folder):
            self._note_other_folders()
            return loaded
        self._check_manifest()
        shards = sorted(n for n in os.listdir(self.folder) if n.startswith("shard-") and n.endswith(".pt"))
        for name in shards:
            for text, feats in self._read_shard(os.path.join(self.folder, name)):
                loaded.setdefault(text, feats)
        self._on_disk = len(loaded)
        self.stats.loaded_from_disk = len(loaded)
        logger.info("text feature cache %s: %d descriptions loaded from %d shard files (%d skipped)",
                    self.folder, len(loaded), len(shards), self.stats.skipped_files)
        self._note_other_folders()
        return loaded

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
        """Queue one description's float32 ``(L, D)`` CPU features; writes a shard every ``flush_every`` texts.

        A failed automatic write is logged once and disables further writes of
        this instance (features stay in memory; training goes on).
        """
        if self._write_failed:
            return
        self._pending.append((text, feats))
        if len(self._pending) >= self.flush_every:
            try:
                self.flush()
            except OSError as err:
                self._write_failed = True
                logger.warning("text feature cache: could not write to %s (%s); persistent caching is off for this "
                               "run, features stay in memory", self.folder, err)

    def flush(self) -> int:
        """Write pending descriptions to a new shard file (tmp file + ``os.replace``); update the manifest.

        Returns:
            the number of descriptions written (0 when nothing was pending).

        Raises:
            OSError: the folder or file cannot be written (message names it);
                pending entries are kept for a later try.
        """
        if not self._pending:
            return 0
        pending = self._pending
        rank = _rank()
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
        self.stats.written += len(pending)
        if rank == 0:
            self._write_manifest()
        logger.info("text feature cache %s: wrote %d descriptions to %s; %s", self.folder, len(pending), name,
                    self.summary())
        return len(pending)

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
        _atomic_write_bytes(path, json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8"))

    def flush_quietly(self) -> None:
        """:meth:`flush` for finalizers (interpreter exit / garbage collection): warns instead of raising."""
        try:
            self.flush()
        except Exception as err:  # noqa: BLE001  (interpreter shutdown: report, do not raise)
            logger.warning("text feature cache: %d pending descriptions could not be written at exit (%s); they are "
                           "recomputed next run", self.pending, err)

    def summary(self) -> str:
        """One line: hits, misses, loaded from disk, written, pending."""
        s = self.stats
        return (f"hits {s.hits} (from disk {s.disk_hits}), misses {s.misses}, loaded from disk {s.loaded_from_disk}, "
                f"written {s.written}, pending {len(self._pending)}, skipped files {s.skipped_files}")


def open_feature_cache(cache_dir: str, folder: str, model_class: str, max_tokens: int, hidden_size: int,
                       info: dict, slug: str, flush_every: int = 1000) -> PersistentTextFeatureCache:
    """Fingerprint the encoder folder and open its :class:`PersistentTextFeatureCache` under ``cache_dir``.

    File hashes are remembered in ``<cache_dir>/file_hashes.json`` (written by
    rank 0 only; a write failure is warned about, not raised).

    Args:
        cache_dir: cache root (``MODEL.DMF.TEXT_ENCODER.CACHE_DIR`` resolved).
        folder: local ``transformers`` model folder of the encoder.
        model_class, max_tokens: see :func:`encoder_fingerprint`.
        hidden_size: D_t of the stored token features.
        info: what the manifest records about the encoder (``files`` is added).
        slug: readable prefix of the fingerprint folder name.
        flush_every: see :class:`PersistentTextFeatureCache`.

    Raises:
        FileNotFoundError, OSError: an encoder file cannot be read.
    """
    start = time.perf_counter()
    hashes = FileHashCache(os.path.join(cache_dir, "file_hashes.json"))
    fingerprint, files = encoder_fingerprint(folder, model_class, max_tokens, hashes)
    if _rank() == 0:
        try:
            hashes.save()
        except OSError as err:
            logger.warning("text feature cache: cannot write %s (%s)", hashes.path, err)
    logger.info("Text encoder %s: fingerprint %s in %.2f s (%d MB hashed)", info.get("encoder", folder),
                fingerprint[:16], time.perf_counter() - start, hashes.hashed_bytes // 2**20)
    return PersistentTextFeatureCache(cache_dir, fingerprint, hidden_size, {**info, "files": files}, slug=slug,
                                      flush_every=flush_every)


def resolve_text_cache_dir(cache_dir: str, output_dir: str) -> str | None:
    """Folder of the persistent text cache from ``MODEL.DMF.TEXT_ENCODER.CACHE_DIR``.

    ``""`` -> ``<output_dir>/text_feature_cache``; ``"none"`` (any case) -> None
    (in memory only); anything else -> that path (``~`` expanded). Raises
    nothing; a path that is not a folder is rejected by :class:`TextTokenEncoder`.
    """
    value = str(cache_dir).strip()
    if value.lower() == "none":
        return None
    if value == "":
        return os.path.join(output_dir or ".", "text_feature_cache")
    return os.path.expanduser(value)
