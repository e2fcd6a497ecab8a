"""Masked Multimodal Modeling (MMM) masks: block-wise image-patch masks and BERT-style text-token masks.

MMET (Xiang et al., arXiv 2304.09498, abstract) masks both image patches and text tokens, dynamically;
its official code is FLAVA (facebookresearch/multimodal) plus a Re-ID head. FLAVA takes BEiT's block-wise
patch masking (about 40% of the grid, blocks of at least 16 patches, aspect ratio in [0.3, 1/0.3]) and
BERT's token masking (15% of tokens: 80% -> [MASK], 10% -> a random token, 10% kept; special tokens never).
This module implements both from those descriptions, in NumPy, so they run in the data path (dataset or
collator workers), not in the model's forward.

Dynamic and reproducible: :func:`mask_generator` derives a generator from ``(seed, sample index, read
count)``, so a sample read again (next epoch) gets a new mask, the same run gets the same masks, and
processes never share a stream.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["IGNORE_INDEX", "block_patch_mask", "mask_generator", "mask_text_tokens"]

#: ``labels`` value of positions that are not predicted (PyTorch's cross-entropy ``ignore_index``).
IGNORE_INDEX = -100


def mask_generator(seed: int, index: int, read_count: int) -> np.random.Generator:
    """The generator of one read of one sample: ``SeedSequence([seed, index, read_count])``.

    Args:
        seed: the run's seed (``SEED``), >= 0.
        index: the sample's dataset index, >= 0.
        read_count: how many times this sample was read before (0 for the first read), >= 0.

    Raises:
        ValueError: a negative argument (names it).
    """
    for name, value in (("seed", seed), ("index", index), ("read_count", read_count)):
        if value < 0:
            raise ValueError(f"mask_generator: {name}={value}; expected an integer >= 0")
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(read_count)]))


def _check_ratio(ratio: float, what: str) -> None:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"{what}={ratio}: expected a masking ratio in (0, 1)")


def block_patch_mask(grid: tuple[int, int], ratio: float, rng: np.random.Generator, min_block: int = 16,
                     max_aspect: float = 1 / 0.3, max_attempts: int = 10) -> np.ndarray:
    """Block-wise mask over a patch grid (BEiT, Bao et al. 2021, Algorithm 1; FLAVA's image masking).

    Rectangles of area >= ``min_block`` patches and aspect ratio in ``[1 / max_aspect, max_aspect]``
    (log-uniform) are added at random positions until ``round(ratio * H * W)`` patches are masked; a
    rectangle that would overshoot is shrunk to what is still missing (at least one new patch), so the
    count is exact unless ``max_attempts`` draws in a row add nothing (then it may fall short).

    Args:
        grid: ``(H, W)`` patches (e.g. 16 x 8 for 256 x 128 images and 16-pixel patches).
        ratio: fraction of patches to mask, in (0, 1) (FLAVA: 75 / 196, about 0.4).
        rng: from :func:`mask_generator`.
        min_block: smallest rectangle area in patches (FLAVA / BEiT: 16), capped by the number to mask.
        max_aspect: largest height/width ratio of a rectangle (BEiT: 1 / 0.3).
        max_attempts: draws per rectangle before giving up on it.

    Returns:
        bool ``(H, W)``, True = masked.

    Raises:
        ValueError: ``ratio`` outside (0, 1), or an empty grid.
    """
    _check_ratio(ratio, "image mask ratio")
    height, width = int(grid[0]), int(grid[1])
    if height < 1 or width < 1:
        raise ValueError(f"patch grid {grid}: expected positive (H, W)")
    mask = np.zeros((height, width), dtype=bool)
    target = max(1, round(ratio * height * width))
    log_aspect = (math.log(1 / max_aspect), math.log(max_aspect))
    while mask.sum() < target:
        missing = target - int(mask.sum())
        added = 0
        for _ in range(max_attempts):
            area = rng.uniform(min(min_block, missing), missing)
            aspect = math.exp(rng.uniform(*log_aspect))
            h = int(round(math.sqrt(area * aspect)))
            w = int(round(math.sqrt(area / aspect)))
            if not (1 <= h <= height and 1 <= w <= width):
                continue
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            window = mask[top:top + h, left:left + w]
            new = np.argwhere(~window)
            if len(new) == 0:
                continue
            take = new[:missing]  # shrink the rectangle's contribution to what is still missing
            window[take[:, 0], take[:, 1]] = True
            added = len(take)
            break
        if added == 0:
            break
    return mask


def mask_text_tokens(input_ids: np.ndarray, special: np.ndarray, rng: np.random.Generator, mask_token_id: int,
                     vocab_size: int, ratio: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """BERT-style token masking (Devlin et al. 2019, Sec. 3.1; FLAVA's MLM): 80% [MASK], 10% random, 10% kept.

    Each non-special position is chosen with probability ``ratio``; at least one is chosen when the
    sequence has any non-special token. Chosen positions become ``mask_token_id`` (80%), a uniformly
    random token id (10%) or stay as they are (10%); their original ids are the labels.

    Args:
        input_ids: int ``(L,)`` token ids of one description (padding included).
        special: bool ``(L,)``, True for special and padding tokens (never masked, never predicted).
        rng: from :func:`mask_generator`.
        mask_token_id: the tokenizer's [MASK] id.
        vocab_size: number of token ids (random replacements are drawn from ``0 .. vocab_size - 1``).
        ratio: probability that a token is chosen, in (0, 1) (BERT / FLAVA: 0.15).

    Returns:
        ``(masked_ids, labels)``: int64 ``(L,)`` each; ``labels`` is the original id at chosen positions
        and :data:`IGNORE_INDEX` elsewhere.

    Raises:
        ValueError: ``ratio`` outside (0, 1), ``input_ids`` and ``special`` of different shapes, or a
            ``vocab_size`` < 1.
    """
    _check_ratio(ratio, "text mask ratio")
    ids = np.asarray(input_ids, dtype=np.int64)
    special = np.asarray(special, dtype=bool)
    if ids.shape != special.shape or ids.ndim != 1:
        raise ValueError(f"input_ids {ids.shape} and special {special.shape}: expected two (L,) arrays")
    if vocab_size < 1:
        raise ValueError(f"vocab_size={vocab_size}: expected >= 1")
    candidates = np.flatnonzero(~special)
    chosen = candidates[rng.random(len(candidates)) < ratio]
    if len(chosen) == 0 and len(candidates):
        chosen = candidates[[int(rng.integers(len(candidates)))]]
    labels = np.full_like(ids, IGNORE_INDEX)
    labels[chosen] = ids[chosen]
    masked = ids.copy()
    action = rng.random(len(chosen))
    masked[chosen[action < 0.8]] = mask_token_id
    randomised = chosen[(action >= 0.8) & (action < 0.9)]
    masked[randomised] = rng.integers(0, vocab_size, size=len(randomised))
    return masked, labels
