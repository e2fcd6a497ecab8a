"""The text branch's input of DMF Eq. 5 from the config: a named pre-trained encoder, its features cached.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: a description is tokenised and passed through a
pre-trained text encoder (data2vec-text in the paper) giving one D_t-dimensional vector per token, which
the method then projects (``tokens -> encoder -> projection``). :class:`TextTokenEncoder` composes the
parts of this package:

* :func:`.loader.load_text_encoder`: ``MODEL.DMF.TEXT_ENCODER.NAME`` -> checked tokenizer and model;
* :class:`.encoder.TokenEncoder` (its base class): descriptions -> tokens -> ``(B, L, D_t)`` features;
* :class:`.feature_cache.TextFeatureCache`: a frozen encoder's features, per description, in memory and
  (with ``CACHE_DIR``) on disk, so that a restarted or a second run does not run the encoder again.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

from .encoder import TokenEncoder
from .feature_cache import CACHE_DIR_KEY, TextCacheStats, TextFeatureCache, open_feature_cache, resolve_text_cache_dir
from .loader import LoadedTextEncoder, load_text_encoder

__all__ = ["TextTokenEncoder", "build_text_encoder"]

logger = logging.getLogger(__name__)


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    return slug[-40:].lstrip("._-") or "encoder"


class TextTokenEncoder(TokenEncoder):
    """A named pre-trained text encoder giving padded token features, cached when frozen (DMF Eq. 5).

    A :class:`.encoder.TokenEncoder` (tokenisation, encoder-only ``transformers`` model, frozen or
    trained; state-dict keys ``encoder.*`` when trained) whose model is loaded and checked by
    :func:`.loader.load_text_encoder` and whose frozen outputs go through a
    :class:`.feature_cache.TextFeatureCache` (:attr:`feature_cache`).

    ``freeze=True`` (paper): features are cached per description on the CPU;
    with ``cache_dir`` also on disk, in a folder named by the encoder's
    fingerprint (:func:`.feature_cache.open_feature_cache`). Pending features
    are written every ``flush_every`` new descriptions, by :meth:`flush`, and
    when the cache is garbage-collected with the encoder or the interpreter exits.

    ``freeze=False``: nothing is cached (every call runs the encoder, with gradients).

    Args:
        name: see :func:`.loader.resolve_text_encoder_path`.
        max_tokens: tokenizer truncation length (special tokens included).
        freeze: keep the encoder frozen and cache its outputs.
        cache_dir: root of the persistent cache (frozen encoder only); None = in memory only.
        flush_every: descriptions per shard file.
        encode_batch_size: descriptions per encoder call when many are missing.

    Raises:
        FileNotFoundError: see :func:`.loader.resolve_text_encoder_path`; or the model
            folder has no tokenizer files (:func:`.loader.check_tokenizer_files`).
        OSError: ``transformers`` could not load a model from the resolved
            path/id (message names the config key).
        ValueError: a tokenizer vocabulary implausibly small for the model
            (:func:`.loader.check_tokenizer_vocabulary`; checked before the weights
            are read), an encoder-decoder model, a tokenizer without padding
            token, or ``max_tokens`` beyond the model's position embeddings
            (message names the key and the limit); ``flush_every`` < 1 with a persistent cache.
        NotADirectoryError: ``cache_dir`` exists and is not a folder.
    """

    def __init__(self, name: str, max_tokens: int = 64, freeze: bool = True, cache_dir: str | None = None,
                 flush_every: int = 1000, encode_batch_size: int = 256) -> None:
        loaded = load_text_encoder(name, int(max_tokens))
        super().__init__(loaded.tokenizer, loaded.model, int(max_tokens), freeze=freeze, name=name)
        self.path = loaded.path
        self.encode_batch_size = int(encode_batch_size)
        if cache_dir is not None and os.path.exists(cache_dir) and not os.path.isdir(cache_dir):
            raise NotADirectoryError(f"{CACHE_DIR_KEY}={cache_dir!r}: exists and is not a folder; expected a folder "
                                     "for the text-feature cache, 'none' or ''")
        if not self.freeze:
            logger.info("Text encoder %s: FREEZE=False, the encoder is fine-tuned; token features are recomputed "
                        "every step (no in-memory or persistent cache%s)", name,
                        f", {CACHE_DIR_KEY}={cache_dir!r} unused" if cache_dir else "")
        if self.freeze and cache_dir is not None:
            self.feature_cache = self._open_cache(loaded, cache_dir, flush_every)
        else:
            self.feature_cache = TextFeatureCache()  # in memory (unused when not frozen)
        logger.info("Text encoder %s (%s): %s, hidden size %d, frozen=%s, cache=%s", name, self.path,
                    type(loaded.model).__name__, self.hidden_size, self.freeze,
                    self.feature_cache.folder or ("memory" if self.freeze else "off"))

    def _open_cache(self, loaded: LoadedTextEncoder, cache_dir: str, flush_every: int) -> TextFeatureCache:
        if loaded.folder is None:
            logger.warning("Text encoder %s: no local model folder to fingerprint; persistent text cache %s is off "
                           "(in-memory cache only)", self.name, cache_dir)
            return TextFeatureCache()
        model_class = type(loaded.model).__name__
        info = {"encoder": self.name, "path": os.path.abspath(loaded.folder), "model_class": model_class,
                "max_tokens": self.max_tokens}
        return open_feature_cache(cache_dir, loaded.folder, model_class, self.max_tokens, self.hidden_size, info,
                                  slug=_slug(self.name), flush_every=flush_every)

    @property
    def fingerprint(self) -> str | None:
        """sha256 fingerprint of the encoder behind the persistent cache (None without one)."""
        return self.feature_cache.fingerprint

    @property
    def cache_size(self) -> int:
        """Number of descriptions whose token features are cached (in memory, including those read from disk)."""
        return len(self.feature_cache)

    @property
    def cache_folder(self) -> str | None:
        """Folder of this encoder's persistent cache (None: no persistent cache)."""
        return self.feature_cache.folder

    @property
    def cache_stats(self) -> TextCacheStats:
        """A copy of the cache counters (see :class:`.feature_cache.TextCacheStats`)."""
        return self.feature_cache.stats

    def summary(self) -> str:
        """One-line cache summary (hits, misses, loaded from disk, written)."""
        return self.feature_cache.summary()

    def flush(self) -> int:
        """Write pending features to the persistent cache now; returns how many (0 without a persistent cache).

        Raises:
            OSError: the cache folder cannot be written.
        """
        return self.feature_cache.flush()

    def forward(self, texts: Sequence[str],
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`.encoder.TokenEncoder.forward` (same arguments, result and errors), through the cache when frozen.

        A frozen encoder runs only on the descriptions not cached yet, ``encode_batch_size`` at a time;
        the result, float32 ``(B, L, D_t)`` features (zero at padding) and bool ``(B, L)`` valid mask on
        ``device``, is bit-identical for cached and fresh descriptions (float32, autocast off).

        Raises:
            ValueError: ``texts`` is empty or holds an empty string.
        """
        device = self._checked_device(texts, device)
        if not self.freeze:
            return self.encode(texts, device)
        cache = self.feature_cache
        rows_by_text = {text: cache.get(text) for text in dict.fromkeys(texts)}  # stats count unique descriptions
        missing = sorted(text for text, row in rows_by_text.items() if row is None)
        for start in range(0, len(missing), self.encode_batch_size):
            chunk = missing[start:start + self.encode_batch_size]
            hidden, valid = self.encode(chunk, device)
            for text, feats, mask in zip(chunk, hidden, valid):
                row = feats[mask].cpu()
                cache.put(text, row)
                rows_by_text[text] = row
        rows = [rows_by_text[t] for t in texts]
        tokens = pad_sequence(rows, batch_first=True)  # a new tensor: cached rows are never handed out
        lengths = torch.tensor([r.shape[0] for r in rows])
        valid = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return tokens.to(device), valid.to(device)


def build_text_encoder(cfg) -> TextTokenEncoder | None:
    """:class:`TextTokenEncoder` from ``cfg.MODEL.DMF.TEXT_ENCODER`` and ``cfg.OUTPUT_DIR``.

    Returns None when ``NAME`` is empty (no text branch). The persistent cache
    folder is :func:`.feature_cache.resolve_text_cache_dir` of ``CACHE_DIR`` (frozen encoder only).

    Raises:
        FileNotFoundError, OSError, ValueError, NotADirectoryError: see :class:`TextTokenEncoder`.
    """
    encoder_cfg = cfg.MODEL.DMF.TEXT_ENCODER
    if not encoder_cfg.NAME:
        return None
    cache_dir = resolve_text_cache_dir(encoder_cfg.CACHE_DIR, cfg.OUTPUT_DIR)
    return TextTokenEncoder(encoder_cfg.NAME, max_tokens=encoder_cfg.MAX_TOKENS, freeze=encoder_cfg.FREEZE,
                            cache_dir=cache_dir)
