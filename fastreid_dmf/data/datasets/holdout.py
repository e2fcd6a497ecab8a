"""Validation identities held out from the training sets, for choosing recipes without a test set.

Re-ID test sets (query/gallery) must not steer hyper-parameters. With
``DATASETS.HOLDOUT.NUM_IDS`` = k > 0, every dataset in ``DATASETS.NAMES`` (or in
``DATASETS.HOLDOUT.NAMES`` when set) loses k of its training identities (drawn with ``DATASETS.HOLDOUT.SEED``, the same
draw in every run); the registered test set ``HeldOutValidation`` turns those
identities into a query/gallery split that fast-reid's ``ReidEvaluator`` scores
like any other test set (add it to ``DATASETS.TESTS``).

Query/gallery rule (Market-1501 protocol, whose evaluator ignores gallery
images of the query's own identity and camera): for each held-out identity, one
image per camera, drawn at random and visiting the cameras in random order,
becomes a query as long as the identity keeps a gallery image from another
camera; all its other images are gallery. Identities seen by one camera only
are gallery distractors. pids and camids are renumbered to integers (fast-reid's ranker
needs int64 labels); held-out identities of different source datasets never
share a pid.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.datasets.bases import ImageDataset

from .from_config import dataset_kwargs

__all__ = ["HeldOutValidation", "holdout_sources", "split_holdout", "query_gallery_split"]


def split_holdout(items: Sequence[tuple], num_ids: int, seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """Split training items into (train, held-out) by identity.

    Args:
        items: fast-reid train items ``(img_path, pid, camid, ...)``.
        num_ids: k, identities held out (0 = none).
        seed: NumPy seed of the draw; the draw depends only on the sorted pids
            and the seed, not on item order.

    Returns:
        ``(train_items, held_out_items)``, each in the input order.

    Raises:
        ValueError: ``num_ids`` < 0, or not fewer than the identities present
            (names DATASETS.HOLDOUT.NUM_IDS and both counts).
    """
    pids = sorted({item[1] for item in items}, key=str)
    if num_ids < 0 or (num_ids and num_ids >= len(pids)):
        raise ValueError(f"config DATASETS.HOLDOUT.NUM_IDS={num_ids}: expected 0 <= k < {len(pids)}, the number of "
                         "training identities (some must remain for training)")
    if num_ids == 0:
        return list(items), []
    chosen = np.random.default_rng(seed).choice(len(pids), size=num_ids, replace=False)
    held = {pids[i] for i in chosen.tolist()}
    return [it for it in items if it[1] not in held], [it for it in items if it[1] in held]


def query_gallery_split(items: Sequence[tuple], seed: int = 0) -> tuple[list[tuple], list[tuple]]:
    """Query/gallery split of held-out items (rule in the module docstring).

    Args:
        items: ``(img_path, pid, camid, ...)`` of the held-out identities (pid/camid of any hashable type).
        seed: NumPy seed of the query draw.

    Returns:
        ``(query, gallery)`` lists of ``(img_path, int pid, int camid)``; pids
        and camids are numbered 0.. in sorted order of the originals.
    """
    pid_ids = {pid: n for n, pid in enumerate(sorted({it[1] for it in items}, key=str))}
    cam_ids = {cam: n for n, cam in enumerate(sorted({it[2] for it in items}, key=str))}
    by_pid: dict = defaultdict(list)
    for item in items:
        by_pid[item[1]].append((item[0], pid_ids[item[1]], cam_ids[item[2]]))
    rng = np.random.default_rng(seed)
    query, gallery = [], []
    for pid in sorted(by_pid, key=str):
        remaining = sorted(by_pid[pid])
        cameras = sorted({cam for _, _, cam in remaining})
        for cam in (cameras[i] for i in rng.permutation(len(cameras))):
            in_cam = [entry for entry in remaining if entry[2] == cam]
            pick = in_cam[int(rng.integers(len(in_cam)))]
            if any(entry[2] != cam for entry in remaining):
                query.append(pick)
                remaining.remove(pick)
        gallery.extend(remaining)
    return query, gallery


def holdout_sources(cfg) -> tuple[str, ...]:
    """Training datasets that lose ``DATASETS.HOLDOUT.NUM_IDS`` identities: ``DATASETS.HOLDOUT.NAMES``, or all
    of ``DATASETS.NAMES`` when that is empty."""
    return tuple(cfg.DATASETS.HOLDOUT.NAMES) or tuple(cfg.DATASETS.NAMES)


@DATASET_REGISTRY.register()
class HeldOutValidation(ImageDataset):
    """Query/gallery of the identities held out from the training sets (``DATASETS.HOLDOUT``).

    Args:
        root: fast-reid dataset root (``FASTREID_DATASETS``).
        sources: ``[(registered name, constructor kwargs), ...]``: the training datasets
            (``DATASETS.NAMES``) whose held-out identities are used.
        num_ids: k identities held out of each source (``DATASETS.HOLDOUT.NUM_IDS``).
        seed: ``DATASETS.HOLDOUT.SEED`` (identity draw and query draw).

    Raises:
        ValueError: ``num_ids`` is 0 (nothing is held out; the message names
            DATASETS.HOLDOUT.NUM_IDS) or the split leaves no query.
        FileNotFoundError, KeyError: from the source datasets.
    """

    dataset_name = "heldoutvalidation"

    @classmethod
    def kwargs_from_config(cls, cfg) -> dict:
        """Sources (:func:`holdout_sources` with their own config arguments), ``NUM_IDS`` and ``SEED``."""
        return {"sources": [(source, dataset_kwargs(cfg, source)) for source in holdout_sources(cfg)],
                "num_ids": cfg.DATASETS.HOLDOUT.NUM_IDS, "seed": cfg.DATASETS.HOLDOUT.SEED}

    def __init__(self, root: str = "datasets", sources: Sequence[tuple[str, dict]] = (), num_ids: int = 0,
                 seed: int = 0, **kwargs) -> None:
        if num_ids <= 0:
            raise ValueError("HeldOutValidation in DATASETS.TESTS needs DATASETS.HOLDOUT.NUM_IDS > 0 (identities "
                             f"held out of each training set), got {num_ids}")
        held: list[tuple] = []
        for name, source_kwargs in sources:
            source = DATASET_REGISTRY.get(name)(root=root, **source_kwargs)
            # Prefix the source name so identities of different datasets never merge.
            held.extend((it[0], (name, it[1]), (name, it[2])) for it in split_holdout(source.train, num_ids, seed)[1])
        query, gallery = query_gallery_split(held, seed)
        if not query:
            raise ValueError(f"the {num_ids} held-out identities of {[n for n, _ in sources]} give no query "
                             "(each needs images from two cameras); raise DATASETS.HOLDOUT.NUM_IDS")
        super().__init__([], query, gallery, **kwargs)
