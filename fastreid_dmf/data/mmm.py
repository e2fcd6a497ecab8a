"""Masked Multimodal Modeling in the data path: each sample's patch mask and masked token ids.

MMET (Xiang et al., arXiv 2304.09498) masks image patches and text tokens "dynamically": a new mask every
time a sample is read. :class:`MaskedMultimodalModeling` runs inside the dataset's ``__getitem__`` (so in
the DataLoader worker processes, not in the model's forward on the main thread) and draws

* a block-wise patch mask (:func:`~fastreid_dmf.data.masking.block_patch_mask`) for image samples, and
* BERT's 80/10/10 token masking (:func:`~fastreid_dmf.data.masking.mask_text_tokens`) of the tokenised
  description for text samples,

both from :func:`~fastreid_dmf.data.masking.mask_generator` of ``(seed, sample, read count)``; the read
count comes from the task sampler's index (:mod:`fastreid_dmf.multimodal_batch`), which counts draws in the
global stream, so masks are the same with any number of workers or processes and differ between reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..multimodal_batch import IMAGE, PAIR, TEXT
from .masking import IGNORE_INDEX, block_patch_mask, mask_generator, mask_text_tokens

__all__ = ["MaskedMultimodalModeling", "patch_grid"]


def patch_grid(image_size: Sequence[int], patch_size: int, stride: Sequence[int] | int) -> tuple[int, int]:
    """``(rows, columns)`` of a ViT patch grid, as fast-reid's ``PatchEmbed_overlap`` counts it.

    Raises:
        ValueError: an image smaller than one patch.
    """
    stride_h, stride_w = (stride, stride) if isinstance(stride, int) else (int(stride[0]), int(stride[1]))
    height, width = int(image_size[0]), int(image_size[1])
    if height < patch_size or width < patch_size:
        raise ValueError(f"image size {height}x{width} is smaller than one {patch_size}-pixel patch")
    return (height - patch_size) // stride_h + 1, (width - patch_size) // stride_w + 1


class MaskedMultimodalModeling:
    """Tokenises descriptions and draws MMM masks for one sample read.

    Args:
        tokenizer: the text encoder's ``transformers`` tokenizer (needs pad and mask tokens).
        max_tokens: L; token tensors are padded to exactly L so fast-reid's collator stacks them (the model
            trims a batch to its longest description).
        grid: ``(rows, columns)`` of the image patch grid (:func:`patch_grid`).
        image_ratio: fraction of patches masked, in (0, 1) (``MODEL.MMET.MASK.IMAGE_RATIO``).
        min_block: smallest masked block in patches (``MODEL.MMET.MASK.MIN_BLOCK``).
        text_ratio: probability a token is chosen for MLM, in (0, 1) (``MODEL.MMET.MASK.TEXT_RATIO``).
        seed: the run's seed (>= 0).

    Raises:
        ValueError: a ratio outside (0, 1), ``max_tokens`` < 2, or a tokenizer without pad/mask token.
    """

    def __init__(self, tokenizer, max_tokens: int, grid: tuple[int, int], image_ratio: float = 0.4,
                 min_block: int = 16, text_ratio: float = 0.15, seed: int = 0) -> None:
        for key, ratio in (("MODEL.MMET.MASK.IMAGE_RATIO", image_ratio), ("MODEL.MMET.MASK.TEXT_RATIO", text_ratio)):
            if not 0.0 < ratio < 1.0:
                raise ValueError(f"config {key}={ratio}: expected a masking ratio in (0, 1)")
        if max_tokens < 2:
            raise ValueError(f"config MODEL.DMF.TEXT_ENCODER.MAX_TOKENS={max_tokens}: expected >= 2")
        if tokenizer.pad_token_id is None or tokenizer.mask_token_id is None:
            raise ValueError("MMET's text masking needs a tokenizer with padding and [MASK] tokens")
        self.tokenizer = tokenizer
        self.max_tokens = int(max_tokens)
        self.grid = (int(grid[0]), int(grid[1]))
        self.image_ratio = float(image_ratio)
        self.min_block = int(min_block)
        self.text_ratio = float(text_ratio)
        self.seed = int(seed)
        self.vocab_size = len(tokenizer)

    def empty_patch_mask(self) -> torch.Tensor:
        """bool ``(rows * columns,)``, nothing masked (text samples, so batches stack)."""
        return torch.zeros(self.grid[0] * self.grid[1], dtype=torch.bool)

    def empty_tokens(self) -> dict[str, torch.Tensor]:
        """All-padding token tensors (image samples, so batches stack): see :meth:`tokens`."""
        length = self.max_tokens
        return {"input_ids": torch.full((length,), self.tokenizer.pad_token_id, dtype=torch.int64),
                "attention_mask": torch.zeros(length, dtype=torch.int64),
                "mlm_labels": torch.full((length,), IGNORE_INDEX, dtype=torch.int64)}

    def generator(self, sample: int, read_count: int) -> np.random.Generator:
        """The masks' generator for one read of one sample (see :func:`~fastreid_dmf.data.masking.mask_generator`)."""
        return mask_generator(self.seed, sample, read_count)

    def patch_mask(self, rng: np.random.Generator) -> torch.Tensor:
        """bool ``(rows * columns,)`` block-wise mask, row-major (True = masked)."""
        mask = block_patch_mask(self.grid, self.image_ratio, rng, min_block=self.min_block)
        return torch.from_numpy(mask.reshape(-1))

    def tokens(self, text: str, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        """Token tensors of one description, masked when ``rng`` is given.

        Returns:
            ``input_ids`` (masked ids), ``attention_mask`` (1 at real tokens) and ``mlm_labels``
            (original id at masked positions, -100 elsewhere): int64 ``(max_tokens,)`` each.

        Raises:
            ValueError: an empty description.
        """
        if not text:
            raise ValueError("MMET text sample without a description")
        encoded = self.tokenizer(text, truncation=True, max_length=self.max_tokens, padding="max_length",
                                 return_special_tokens_mask=True, return_attention_mask=True)
        ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        valid = np.asarray(encoded["attention_mask"], dtype=bool)
        special = np.asarray(encoded["special_tokens_mask"], dtype=bool) | ~valid
        if rng is None:
            labels = np.full_like(ids, IGNORE_INDEX)
        else:
            ids, labels = mask_text_tokens(ids, special, rng, self.tokenizer.mask_token_id, self.vocab_size,
                                           self.text_ratio)
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(valid.astype(np.int64)),
                "mlm_labels": torch.from_numpy(labels)}

    def sample_masks(self, modality: int, text: str, sample: int, read_count: int) -> dict[str, torch.Tensor]:
        """Everything MMM adds to one read of one sample (one generator per sample and read: image mask first).

        Args:
            modality: ``IMAGE``, ``TEXT`` or ``PAIR`` (:mod:`fastreid_dmf.multimodal_batch`).
            text: the sample's description (unused for ``IMAGE``).
            sample: the sample's dataset index at read count 0 (``encode_index(item, modality, N)``).
            read_count: how many times the sampler drew this sample before.

        Returns:
            ``patch_mask`` bool ``(rows * columns,)`` (empty without an image) and ``input_ids`` /
            ``attention_mask`` / ``mlm_labels`` int64 ``(max_tokens,)`` (all padding without a text).

        Raises:
            ValueError: a text or visual-textual sample with an empty description.
        """
        rng = self.generator(sample, read_count)
        masks = {"patch_mask": self.patch_mask(rng) if modality in (IMAGE, PAIR) else self.empty_patch_mask()}
        masks.update(self.tokens(text, rng) if modality in (TEXT, PAIR) else self.empty_tokens())
        return masks
