"""The multimodal batch contract between the samplers, the training set and the meta-architectures.

A training set of N image/description pairs (S_i and S_t of DMF Algorithm 1) is addressed by indices that
say which item, which modality and, for MMET's dynamic masking, how many times the sampler drew that
(item, modality) before:

``index = (read_count * NUM_MODALITIES + modality) * N + item``   (:func:`encode_index`, :func:`decode_index`)

so ``i`` is item i's image, ``N + i`` its description (:func:`text_index`), ``2N + i`` the image with its
description (an MMET visual-textual sample, :data:`PAIR`); a read count > 0 adds multiples of 3N. DMF's
sampler only writes read count 0 and the first two modalities. A sample, and after fast-reid's collator a
batch, is a dict with fast-reid's keys ``images``, ``targets``, ``camids``, ``img_paths`` plus

* ``modalities``: :data:`IMAGE`, :data:`TEXT` or :data:`PAIR` (int; a batch holds an int ``(B,)`` tensor);
* ``texts``: the description (str; a batch holds a list of B strings; "" where an image has none);
* with Masked Multimodal Modeling on (MMET pre-training, ``data/mmm.py``): token ids, masks and labels.

A text sample carries a zero image so the batch stacks. The samplers (``data/samplers.py``) write indices
with :func:`encode_index`, the dataset (``data/multimodal_dataset.py``) reads them with
:func:`decode_index` and the meta-architectures select branches with the modality values.
"""

from __future__ import annotations

__all__ = ["IMAGE", "TEXT", "PAIR", "MODALITY_NAMES", "NUM_MODALITIES", "decode_index", "encode_index",
           "text_index"]

#: ``modalities`` value of an image sample (S_i; MMET's visual task).
IMAGE = 0
#: ``modalities`` value of a description sample (S_t; MMET's textual task).
TEXT = 1
#: ``modalities`` value of an image together with its description (MMET's visual-textual task).
PAIR = 2
#: Number of modality values; the index stride of one read count is ``NUM_MODALITIES * N``.
NUM_MODALITIES = 3
#: Names of the modality values, for logs and errors.
MODALITY_NAMES = {IMAGE: "visual", TEXT: "textual", PAIR: "visual-textual"}


def encode_index(item: int, modality: int, num_items: int, read_count: int = 0) -> int:
    """Dataset index of ``item`` in ``modality``, drawn for the ``read_count``-th time before.

    Args:
        item: ``0 .. N - 1``.
        modality: :data:`IMAGE`, :data:`TEXT` or :data:`PAIR`.
        num_items: N, the number of image/description pairs (>= 1).
        read_count: how many times the sampler drew this (item, modality) before (>= 0).

    Raises:
        ValueError: an argument out of range (names it).
    """
    if num_items < 1 or not 0 <= item < num_items:
        raise ValueError(f"item {item} outside 0..{num_items - 1}")
    if modality not in MODALITY_NAMES:
        raise ValueError(f"modality {modality}: expected one of {sorted(MODALITY_NAMES)}")
    if read_count < 0:
        raise ValueError(f"read_count {read_count}: expected >= 0")
    return (read_count * NUM_MODALITIES + modality) * num_items + item


def decode_index(index: int, num_items: int) -> tuple[int, int, int]:
    """``(item, modality, read_count)`` addressed by a dataset index (inverse of :func:`encode_index`).

    Raises:
        IndexError: a negative ``index`` or ``num_items`` < 1.
    """
    if index < 0 or num_items < 1:
        raise IndexError(f"index {index} of a set of {num_items} items: expected index >= 0 and items >= 1")
    slot, item = divmod(int(index), num_items)
    read_count, modality = divmod(slot, NUM_MODALITIES)
    return item, modality, read_count


def text_index(item: int, num_items: int) -> int:
    """Dataset index of item ``item``'s description, first read: ``num_items + item``."""
    return encode_index(item, TEXT, num_items)

