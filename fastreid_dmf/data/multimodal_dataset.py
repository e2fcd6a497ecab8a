"""Training set over S_i U S_t: each item's image and its description.

Extends fast-reid's ``CommDataset`` (``fastreid/data/common.py``): index
``i < N`` returns item i's image as ``CommDataset`` does (an image that cannot
be read raises :class:`UnreadableImageError` naming the file or, with
``DATASETS.SKIP_UNREADABLE``, is replaced by another image of the same
identity); index ``N + i`` returns item i's description as a text sample.
Index ``2N + i`` (MMET's visual-textual task) returns the image with its description; indices
carrying a read count (:mod:`fastreid_dmf.multimodal_batch`) address the same samples. With Masked
Multimodal Modeling (``mmm``, MMET pre-training) every sample also carries its patch mask and (masked)
token ids, drawn here, in the loader's worker processes (:mod:`fastreid_dmf.data.mmm`).
``len()`` is the length of one epoch of DMF Algorithm 1 for the training
``text_ratio`` (:func:`~fastreid_dmf.data.samplers.instances_per_epoch`: N for
image-only or text-only training, 2N = |S_i| + |S_t| at the paper's 0.5),
because fast-reid's ``DefaultTrainer`` derives its iterations per epoch, LR
schedule and periods from ``len(train_set)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from fastreid.data.common import CommDataset
from fastreid.data.data_utils import read_image
from PIL import Image

from ..multimodal_batch import IMAGE, PAIR, TEXT, decode_index, encode_index
from .mmm import MaskedMultimodalModeling
from .samplers import instances_per_epoch

__all__ = ["MultimodalReIDDataset", "UnreadableImageError", "IMAGE_READ_ERRORS"]

logger = logging.getLogger(__name__)

#: What opening and decoding an image raises for a missing, truncated or undecodable file: the file system's
#: and PIL's ``OSError`` (``PIL.UnidentifiedImageError`` is one), ``SyntaxError`` and ``ValueError`` from PIL's
#: format plugins, and PIL's ``DecompressionBombError``.
IMAGE_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class UnreadableImageError(OSError):
    """A training image could not be read or decoded while training.

    The constructor takes the message only, so torch's DataLoader can re-create
    the error in the main process when a worker process raises it.

    Args:
        message: what failed; names the file.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class MultimodalReIDDataset(CommDataset):
    """Dataset of images and descriptions for mixed-modality training.

    Args:
        img_items: ``(img_path, pid, camid[, description])`` tuples.
        transform: image transform (fast-reid's ``build_transforms``) giving
            float ``(3, H, W)``.
        image_size: (H, W) of transformed images; text samples carry a zero
            image of this size so fast-reid's collator can stack the batch.
        relabel: map pids/camids to 0..n-1 (training).
        mmm: Masked Multimodal Modeling of MMET pre-training: adds ``patch_mask`` bool ``(rows * columns,)``,
            ``input_ids`` / ``attention_mask`` / ``mlm_labels`` int64 ``(L,)`` to every sample (empty where the
            sample has no image or no text), drawn from the sample and its read count; None = off.
        epoch_length: instances per epoch; None = from ``text_ratio`` (below).
        text_ratio: ``DATALOADER.TEXT_RATIO`` of the sampler drawing from this set; sets ``len()``
            (one epoch, see module docstring). 0 for fast-reid's image-only samplers.
        skip_unreadable: ``DATASETS.SKIP_UNREADABLE``: an image that cannot be
            read (deleted, truncated or corrupted after the pre-training check
            of ``DATASETS.VERIFY_IMAGES``) is replaced by the next readable image
            of the same identity in item order (wrapping round), so a P x K
            batch keeps its identities; the file is logged once, remembered in
            :attr:`skipped_paths` and not read again. False: such an image
            raises :class:`UnreadableImageError`.

    Each sample is a dict: ``images`` float ``(3, H, W)``, ``targets`` int,
    ``camids`` int, ``img_paths`` str, ``modalities`` int (``IMAGE`` / ``TEXT`` of
    :mod:`fastreid_dmf.multimodal_batch`, the index convention's home too),
    ``texts`` str (the description; "" if the item has none). A substitute
    image sample is the substitute item's sample (its path, camera and
    description; same ``targets``).

    Attributes:
        skipped_paths: ``{path: reason}`` of the unreadable images skipped so
            far, in the order met. Each DataLoader worker process keeps its own
            (the logged warnings carry that process's count).

    Raises:
        IndexError: a negative index or an unknown modality.
        ValueError: a text or visual-textual index for an item without description; ``text_ratio`` outside [0, 1].
        UnreadableImageError: an image index whose file cannot be read and
            ``skip_unreadable`` is False, or no image of its identity can be
            read; the message names the file(s).
    """

    def __init__(self, img_items: Sequence[tuple], transform: Callable | None, image_size: Sequence[int],
                 relabel: bool = True, text_ratio: float = 0.0, skip_unreadable: bool = False,
                 mmm: MaskedMultimodalModeling | None = None, epoch_length: int | None = None) -> None:
        super().__init__(list(img_items), transform, relabel)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.epoch_length = instances_per_epoch(len(self.img_items), text_ratio) if epoch_length is None \
            else int(epoch_length)
        self.mmm = mmm
        self.skip_unreadable = bool(skip_unreadable)
        self.skipped_paths: dict[str, str] = {}
        self._indices_of_pid: dict[object, list[int]] | None = None  # built on the first unreadable image

    def __len__(self) -> int:
        """Instances per training epoch (not the number of addressable indices, which is 2N)."""
        return self.epoch_length

    def description(self, index: int) -> str:
        """Description of item ``index`` ("" if none)."""
        item = self.img_items[index]
        return item[3] if len(item) > 3 and item[3] else ""

    def __getitem__(self, index: int) -> dict:
        num_items = len(self.img_items)
        item_index, modality, read_count = decode_index(index, num_items)
        if modality == IMAGE:
            sample = self._image_sample(item_index)
        elif modality in (TEXT, PAIR):
            text = self.description(item_index)
            if not text:
                raise ValueError(f"{'text' if modality == TEXT else 'visual-textual'} sample requested for "
                                 f"{self.img_items[item_index][0]!r}, which has no description")
            sample = self._text_sample(item_index, text) if modality == TEXT else self._image_sample(item_index)
            sample["modalities"] = modality
        else:
            raise IndexError(f"index {index}: unknown modality {modality}")
        if self.mmm is not None:
            first_read = encode_index(item_index, modality, num_items)
            sample.update(self.mmm.sample_masks(modality, sample["texts"], first_read, read_count))
        return sample

    def _text_sample(self, index: int, text: str) -> dict:
        img_path, pid, camid = self.img_items[index][:3]
        if self.relabel:
            pid, camid = self.pid_dict[pid], self.cam_dict[camid]
        return {
            "images": torch.zeros(3, *self.image_size),
            "targets": pid,
            "camids": camid,
            "img_paths": img_path,
            "modalities": TEXT,
            "texts": text,
        }

    def _image_sample(self, index: int) -> dict:
        """Sample of image ``index``, or of its substitute (``skip_unreadable``); see the class docstring."""
        image = self._read(index)
        if image is not None:
            return self._sample_of(index, image)
        for candidate in self._same_identity_after(index):
            image = self._read(candidate)
            if image is not None:
                return self._sample_of(candidate, image)
        pid = self.img_items[index][1]
        paths = [self.img_items[i][0] for i in (index, *self._same_identity_after(index))]
        raise UnreadableImageError(
            f"no image of training identity {pid!r} can be read ({len(paths)} file(s), e.g. {paths[:3]}); "
            "fix or remove these files"
        )

    def _read(self, index: int) -> Image.Image | None:
        """PIL image of item ``index``, fully decoded as fast-reid's ``CommDataset`` reads it; None if skipped.

        Raises:
            UnreadableImageError: the file cannot be read and ``skip_unreadable`` is False.
        """
        img_path = self.img_items[index][0]
        if img_path in self.skipped_paths:
            return None
        try:
            return read_image(img_path)
        except IMAGE_READ_ERRORS as err:
            reason = f"{type(err).__name__}: {err}"
            if not self.skip_unreadable:
                raise UnreadableImageError(
                    f"training image {img_path!r} cannot be read ({reason}); fix or remove the file, or set "
                    "DATASETS.SKIP_UNREADABLE True to train on another image of the same identity instead"
                ) from err
        self.skipped_paths[img_path] = reason
        logger.warning("Skipping unreadable training image %r (%s); the next image of the same identity is used "
                       "instead (DATASETS.SKIP_UNREADABLE; %d unreadable image(s) skipped so far in this process)",
                       img_path, reason, len(self.skipped_paths))
        return None

    def _same_identity_after(self, index: int) -> list[int]:
        """The other items of ``index``'s identity, in item order starting after ``index`` and wrapping round."""
        if self._indices_of_pid is None:
            self._indices_of_pid = {}
            for i, item in enumerate(self.img_items):
                self._indices_of_pid.setdefault(item[1], []).append(i)
        same = self._indices_of_pid[self.img_items[index][1]]
        at = same.index(index)
        return same[at + 1:] + same[:at]

    def _sample_of(self, index: int, image: Image.Image) -> dict:
        """Image sample of item ``index`` from its read ``image`` (PIL), as fast-reid's ``CommDataset`` builds it."""
        img_path, pid, camid = self.img_items[index][:3]
        if self.transform is not None:
            image = self.transform(image)
        if self.relabel:
            pid, camid = self.pid_dict[pid], self.cam_dict[camid]
        return {
            "images": image,
            "targets": pid,
            "camids": camid,
            "img_paths": img_path,
            "modalities": IMAGE,
            "texts": self.description(index),
        }
