"""MMET's text encoder: a trainable ``transformers`` encoder with its tokenizer.

MMET (Xiang et al., arXiv 2304.09498) trains its text encoder (MLM needs it trainable); the official
code is FLAVA, whose text encoder is ``FlavaTextModel`` (BERT embeddings, pre-norm layers, final
LayerNorm). Here the encoder is any encoder-only ``transformers`` model from a local folder (BERT,
RoBERTa, data2vec-text, the shipped MiniLM; loaded and checked by
:func:`~fastreid_dmf.modeling.text.loader.load_text_encoder`) or FLAVA's own ``FlavaTextModel``
(:mod:`.flava`). As in ``FlavaModel``, the fusion encoder reads the last hidden states *before* a final
LayerNorm (``hidden_states[-1]``; identical to ``last_hidden_state`` for post-norm BERT), the Re-ID head
and MLM read ``last_hidden_state``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MMETTextEncoder", "load_mmet_tokenizer"]

logger = logging.getLogger(__name__)


class MMETTextEncoder(nn.Module):
    """Tokenizer + trainable ``transformers`` text encoder (state-dict keys ``encoder.*``).

    Args:
        tokenizer: the model's ``transformers`` tokenizer; must have padding and [MASK] tokens.
        model: an encoder-only ``transformers`` model (its pooler is dropped: unused).
        max_tokens: L, tokenizer truncation length (special tokens included).
        name: where the model came from, for messages.

    Attributes:
        hidden_size: D_t. vocab_size: rows of the model's word embedding (MLM classes).

    Raises:
        ValueError: a tokenizer without padding or [MASK] token (names ``name``).
    """

    def __init__(self, tokenizer, model: nn.Module, max_tokens: int, name: str = "") -> None:
        super().__init__()
        for token in ("pad_token", "mask_token"):
            if getattr(tokenizer, token, None) is None:
                raise ValueError(f"text encoder {name!r}: its tokenizer has no {token}; MMET needs padding and a "
                                 "[MASK] token (BERT / RoBERTa / data2vec-text / FLAVA tokenizers have both)")
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # only the token states are used
        tokenizer.padding_side = "right"
        self.tokenizer = tokenizer
        self.encoder = model
        self.name = name
        self.max_tokens = int(max_tokens)
        self.hidden_size = int(model.config.hidden_size)
        self.vocab_size = int(model.config.vocab_size)
        self._takes_token_types = "token_type_ids" in inspect.signature(model.forward).parameters

    def tokenize(self, texts: Sequence[str], device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """int64 ``(B, L)`` ``input_ids`` and ``attention_mask`` (right-padded, L <= ``max_tokens``) on ``device``.

        Raises:
            ValueError: no text or an empty text.
        """
        if len(texts) == 0 or any(not t for t in texts):
            raise ValueError("MMET text encoder: got no descriptions or an empty one (a text sample without text?)")
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_tokens,
                               return_attention_mask=True, return_tensors="pt")
        return {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode token ids.

        Args:
            input_ids: int64 ``(B, L)`` (masked ids during MLM).
            attention_mask: int/bool ``(B, L)``, 1 at real tokens.

        Returns:
            ``(hidden, output)``: float ``(B, L, D_t)``; ``hidden`` = last layer before a final LayerNorm
            (fusion input, FLAVA), ``output`` = ``last_hidden_state`` (first token = [CLS]).
        """
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask.long(), "output_hidden_states": True,
                  "return_dict": True}
        if self._takes_token_types:
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        result = self.encoder(**inputs)
        return result.hidden_states[-1], result.last_hidden_state


def load_mmet_tokenizer(cfg):
    """The tokenizer MMET's data path masks with: the FLAVA folder's or ``MODEL.DMF.TEXT_ENCODER.NAME``'s.

    Raises:
        FileNotFoundError: the folder is missing or has no tokenizer files (names the key).
        OSError: ``transformers`` could not read the tokenizer.
    """
    from transformers import AutoTokenizer

    from ..text.loader import check_tokenizer_files, local_model_folder, resolve_text_encoder_path

    flava = cfg.MODEL.MMET.FLAVA_PATH
    if flava:
        from .flava import check_flava_folder

        check_flava_folder(flava)
        path = folder = flava
    else:
        path = resolve_text_encoder_path(cfg.MODEL.DMF.TEXT_ENCODER.NAME)
        folder = local_model_folder(path)
    if folder is not None:
        check_tokenizer_files(flava or cfg.MODEL.DMF.TEXT_ENCODER.NAME, folder)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.padding_side = "right"
    return tokenizer
