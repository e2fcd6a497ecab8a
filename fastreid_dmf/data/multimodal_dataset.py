"""Training set over S_i U S_t: each item's image and its description.

Extends fast-reid's ``CommDataset`` (``fastreid/data/common.py``): index
``i < N`` returns item i's image exactly as ``CommDataset`` does; index
``N + i`` returns item i's description as a text sample. ``len()`` is the
length of one epoch of DMF Algorithm 1 for the training ``text_ratio``
(:func:`~fastreid_dmf.data.samplers.instances_per_epoch`: N for image-only or
text-only training, 2N = |S_i| + |S_t| at the paper's 0.5), because fast-reid's
``DefaultTrainer`` derives its iterations per epoch, LR schedule and periods
from ``len(train_set)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from fastreid.data.common import CommDataset

from .samplers import instances_per_epoch

__all__ = ["MultimodalReIDDataset"]


class MultimodalReIDDataset(CommDataset):
    """Dataset of images and descriptions for mixed-modality training.

    Args:
        img_items: ``(img_path, pid, camid[, description])`` tuples.
        transform: image transform (fast-reid's ``build_transforms``) giving
            float ``(3, H, W)``.
        image_size: (H, W) of transformed images; text samples carry a zero
            image of this size so fast-reid's collator can stack the batch.
        relabel: map pids/camids to 0..n-1 (training).
        text_ratio: ``DATALOADER.TEXT_RATIO`` of the sampler drawing from this set; sets ``len()``
            (one epoch, see module docstring). 0 for fast-reid's image-only samplers.

    Each sample is a dict: ``images`` float ``(3, H, W)``, ``targets`` int,
    ``camids`` int, ``img_paths`` str, ``modalities`` int (0 image, 1 text),
    ``texts`` str (the description; "" if the item has none).

    Raises:
        IndexError: index outside ``0 .. 2N-1``.
        ValueError: a text index for an item without description; ``text_ratio`` outside [0, 1].
    """

    def __init__(self, img_items: Sequence[tuple], transform: Callable | None, image_size: Sequence[int],
                 relabel: bool = True, text_ratio: float = 0.0) -> None:
        super().__init__(list(img_items), transform, relabel)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.epoch_length = instances_per_epoch(len(self.img_items), text_ratio)

    def __len__(self) -> int:
        """Instances per training epoch (not the number of addressable indices, which is 2N)."""
        return self.epoch_length

    def description(self, index: int) -> str:
        """Description of item ``index`` ("" if none)."""
        item = self.img_items[index]
        return item[3] if len(item) > 3 and item[3] else ""

    def __getitem__(self, index: int) -> dict:
        num_items = len(self.img_items)
        if not 0 <= index < 2 * num_items:
            raise IndexError(f"index {index} outside 0..{2 * num_items - 1}")
        if index < num_items:
            sample = super().__getitem__(index)
            sample["modalities"] = 0
            sample["texts"] = self.description(index)
            return sample
        item_index = index - num_items
        text = self.description(item_index)
        if not text:
            raise ValueError(f"text sample requested for {self.img_items[item_index][0]!r}, which has no description")
        img_path, pid, camid = self.img_items[item_index][:3]
        if self.relabel:
            pid, camid = self.pid_dict[pid], self.cam_dict[camid]
        return {
            "images": torch.zeros(3, *self.image_size),
            "targets": pid,
            "camids": camid,
            "img_paths": img_path,
            "modalities": 1,
            "texts": text,
        }
