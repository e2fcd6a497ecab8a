"""The multimodal batch contract between the sampler, the training set and the meta-architectures.

A training set of N image/description pairs (S_i and S_t of DMF Algorithm 1) is addressed by 2N indices:
``i`` is item i's image, ``N + i`` its description (:func:`text_index`, :func:`split_index`). A sample,
and after fast-reid's collator a batch, is a dict with fast-reid's keys ``images``, ``targets``,
``camids``, ``img_paths`` plus

* ``modalities``: :data:`IMAGE` or :data:`TEXT` (int; a batch holds an int ``(B,)`` tensor);
* ``texts``: the description (str; a batch holds a list of B strings; "" where an image has none).

A text sample carries a zero image so the batch stacks. The sampler (``data/samplers.py``) writes indices
with :func:`text_index`, the dataset (``data/multimodal_dataset.py``) reads them with :func:`split_index`
and the meta-architectures select branches with :data:`IMAGE` / :data:`TEXT`.
"""

from __future__ import annotations

__all__ = ["IMAGE", "TEXT", "split_index", "text_index"]

#: ``modalities`` value of an image sample (S_i).
IMAGE = 0
#: ``modalities`` value of a description sample (S_t).
TEXT = 1


def text_index(item: int, num_items: int) -> int:
    """Dataset index of item ``item``'s description: ``num_items + item``."""
    return num_items + item


def split_index(index: int, num_items: int) -> tuple[int, int]:
    """``(item, modality)`` addressed by a dataset index.

    Args:
        index: ``0 .. 2 * num_items - 1``.
        num_items: N, the number of image/description pairs.

    Returns:
        ``(index, IMAGE)`` for ``index < N``, ``(index - N, TEXT)`` otherwise.

    Raises:
        IndexError: ``index`` outside ``0 .. 2N - 1``.
    """
    if not 0 <= index < 2 * num_items:
        raise IndexError(f"index {index} outside 0..{2 * num_items - 1}")
    return (index, IMAGE) if index < num_items else (index - num_items, TEXT)
