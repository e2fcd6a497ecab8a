"""Descriptions -> tokens -> per-token features of a pre-trained text encoder, trainable or frozen.

DMF (Xiang et al., arXiv 2211.00933) Sec. 3.3, Eq. 5 embeds a description as
``text_proj(encoder(tokenize(description)))``. This module is the ``tokens -> encoder`` part,
:class:`TokenEncoder`: it tokenises a batch of descriptions (right-padded, truncated to
``max_tokens``) and runs the ``transformers`` encoder on them, giving ``(B, L, D_t)`` token features
and a ``(B, L)`` mask of real tokens. The projection is the method's own (``DMFBackbone.text_proj``).

The model comes from :func:`.loader.load_text_encoder`; caching the features of a frozen encoder is
:class:`.feature_cache.TextFeatureCache`; :class:`.text_encoder.TextTokenEncoder` puts the three together.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["TokenEncoder"]

logger = logging.getLogger(__name__)

_ENCODER_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TokenEncoder(nn.Module):
    """Tokeniser + ``transformers`` encoder giving padded token features (DMF Eq. 5, before the projection).

    Works with any encoder-only ``AutoModel``: BERT family (WordPiece,
    ``token_type_ids``), RoBERTa family and data2vec-text (byte-level BPE,
    position ids offset by ``pad_token_id``; right padding with an attention
    mask gives every real token the same position as unpadded). Features are
    the encoder's ``last_hidden_state``; its pooler is removed (unused, and
    when trained it would be a parameter without gradient). The tokenizer's
    padding side is set to right (in memory).

    ``freeze=True`` (paper): the encoder is kept out of this module's
    parameters and state dict (checkpoints stay small; it is re-loaded from its
    path), has ``requires_grad=False``, and runs in eval mode in float32 with
    autocast off on the requested device.

    ``freeze=False``: the encoder is the sub-module ``encoder`` (state-dict keys
    ``encoder.*``), trained with the model and saved in its state dict; it runs
    where its parameters are, in the caller's autocast, with gradients.

    Args:
        tokenizer: the model's ``transformers`` tokenizer (must have a padding token).
        model: an encoder-only ``transformers`` model (checked by :func:`.loader.check_text_encoder`).
        max_tokens: tokenizer truncation length (special tokens included).
        freeze: keep the encoder frozen (see above).
        name: ``MODEL.DMF.TEXT_ENCODER.NAME``, for log messages.

    Raises nothing itself; :func:`.loader.check_text_encoder` does the checks.
    """

    def __init__(self, tokenizer, model: nn.Module, max_tokens: int, freeze: bool = True, name: str = "") -> None:
        super().__init__()
        if tokenizer.padding_side != "right":
            logger.info("Text encoder %s: tokenizer padding side %r changed to 'right' (in memory)", name,
                        tokenizer.padding_side)
            tokenizer.padding_side = "right"
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # only last_hidden_state is used
        self.name = name
        self.max_tokens = int(max_tokens)
        self.freeze = bool(freeze)
        self.tokenizer = tokenizer
        self.hidden_size = int(model.config.hidden_size)
        accepted = inspect.signature(model.forward).parameters
        self._input_names = tuple(k for k in _ENCODER_INPUTS if k in accepted)
        if self.freeze:
            model.requires_grad_(False)
            model.eval()
            # A list hides the frozen encoder from parameters()/state_dict().
            self._frozen: list[nn.Module] = [model]
        else:
            self.encoder = model

    @property
    def module(self) -> nn.Module:
        """The underlying ``transformers`` model (frozen or trained)."""
        return self._frozen[0] if self.freeze else self.encoder

    def tokenize(self, texts: Sequence[str]) -> Mapping[str, torch.Tensor]:
        """Tokenise descriptions, right-padded to the longest one and truncated to ``max_tokens``.

        Args:
            texts: B strings.

        Returns:
            The tokenizer's CPU tensors: int64 ``(B, L)`` ``input_ids`` and ``attention_mask`` (1 at
            real tokens), and ``token_type_ids`` for models that have them; L <= ``max_tokens``.
        """
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                              return_attention_mask=True, return_tensors="pt")

    def encode_tokens(self, batch: Mapping[str, torch.Tensor],
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the encoder on a :meth:`tokenize` batch.

        Args:
            batch: see :meth:`tokenize` (``attention_mask`` required).
            device: where the result goes; a frozen encoder is moved there and runs there.

        Returns:
            ``(features, valid)``: float32 ``(B, L, D_t)`` ``last_hidden_state``, zero at padding, and
            bool ``(B, L)``, True at real tokens; both on ``device``.
        """
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

    def encode(self, texts: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`tokenize` then :meth:`encode_tokens` (no input checks, no cache).

        Returns:
            float32 ``(B, L, D_t)`` features (zero at padding) and bool ``(B, L)`` valid mask, on ``device``.
        """
        return self.encode_tokens(self.tokenize(texts), device)

    def _checked_device(self, texts: Sequence[str], device: torch.device | str | None) -> torch.device:
        """Refuse an empty batch or an empty description; the output device (default: CPU)."""
        if len(texts) == 0:
            raise ValueError(f"{type(self).__name__}: got no descriptions")
        if any(not t for t in texts):
            raise ValueError(f"{type(self).__name__}: got an empty description (a text sample without text?)")
        return torch.device("cpu") if device is None else torch.device(device)

    def forward(self, texts: Sequence[str],
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode descriptions (DMF Eq. 5 up to the text projection).

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
        return self.encode(texts, self._checked_device(texts, device))
