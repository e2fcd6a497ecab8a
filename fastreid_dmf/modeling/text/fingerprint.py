"""Fingerprint of a text encoder: what its token features depend on, hashed; and a cache of file hashes.

DMF (Xiang et al., arXiv 2211.00933) Eq. 5 uses a frozen pre-trained text encoder, so the token features
of a description depend only on the encoder's files and the tokenisation setting. The fingerprint is the
sha256 of :data:`CACHE_FORMAT_VERSION`, the encoder class, ``max_tokens`` and the sha256 of every file
``AutoModel``/``AutoTokenizer`` read from the model folder (:func:`encoder_files`); the persistent feature
cache keeps one folder per fingerprint (:mod:`.shard_store`). Hashing large weights at every start is
avoided by :class:`FileHashCache`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

from ...fileio import atomic_write

__all__ = ["CACHE_FORMAT_VERSION", "encoder_files", "FileHashCache", "encoder_fingerprint"]

logger = logging.getLogger(__name__)

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


class FileHashCache:
    """sha256 of files, remembered by ``(absolute path, size, mtime_ns, inode)`` in a JSON file.

    Hashing the weights at every start costs about 1 s per GB (measured: 0.08 s
    for the 91 MB MiniLM safetensors with a warm page cache; a 440 MB
    data2vec-text-base ~0.4 s warm, several seconds from a cold disk), so the
    hashes are kept in ``<cache root>/file_hashes.json``. A file rewritten in
    place changes its mtime (and usually its inode), so it is hashed again.

    Args:
        path: the JSON file; None = remember in memory only.

    Attributes:
        hashed_bytes: bytes actually read and hashed by this instance (0 when every hash was remembered).

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
        """Hex sha256 (64 chars) of the file at ``path`` (from the cache when size, mtime and inode are unchanged).

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
        """Write the JSON file with :func:`fastreid_dmf.fileio.atomic_write` if new hashes were computed.

        No-op without a path or without new hashes.

        Raises:
            OSError: the folder or file cannot be written (the previous file is kept).
        """
        if not self.path or not self._dirty:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        data = json.dumps(self._entries, indent=0, sort_keys=True).encode("utf-8")
        atomic_write(self.path, lambda handle: handle.write(data))
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
