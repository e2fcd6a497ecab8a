"""Mixed-modality PK sampler (DMF Algorithm 1).

Each batch holds P identities x K instances; every instance is, with
probability ``text_ratio``, the description of one of the identity's images
(a sample of S_t) and otherwise the image itself (a sample of S_i), so a batch
is drawn from S_i U S_t as in Algorithm 1, line 3. Indices ``0..N-1`` address
images and ``N..2N-1`` their descriptions (:mod:`fastreid_dmf.multimodal_batch`).

An epoch follows Algorithm 1 too (:func:`instances_per_epoch`): at the paper's
``text_ratio`` 0.5 it is |S_i| + |S_t| = 2N instances, so every image and every
description is seen once per epoch in expectation, and text + image pre-training
shows as many images per epoch as image-only pre-training (an epoch over S_i,
N instances); text-only pre-training is an epoch over S_t (N instances).

Identity selection and multi-GPU sharding mirror fast-reid's
``NaiveIdentitySampler`` (``fastreid/data/samplers/triplet_sampler.py``): one
global batch of ``mini_batch_size x world_size`` is drawn from a shared seed,
reordered with fast-reid's ``reorder_index`` so each process gets whole
identities, and process ``r`` takes every ``world_size``-th index from ``r``.

:class:`TaskIdentitySampler` is MMET's task sampler (Xiang et al., arXiv 2304.09498, whose code picks the
image, text or image+text loader uniformly at random at every step): the same P x K identity batches, but
each global batch belongs to one task (visual, textual or visual-textual) drawn per batch from
``DATALOADER.TASK_WEIGHTS``, and every index carries how many times its (item, task) was drawn before so
that MMET's dynamic masks are reproducible and distinct per read (:func:`~fastreid_dmf.multimodal_batch.encode_index`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence

import numpy as np
from fastreid.data.samplers.triplet_sampler import reorder_index
from fastreid.utils import comm
from torch.utils.data.sampler import Sampler

from ..multimodal_batch import NUM_MODALITIES, PAIR, TEXT, encode_index, text_index

__all__ = ["FASTREID_TRAIN_SAMPLERS", "MultimodalIdentitySampler", "TaskIdentitySampler", "instances_per_epoch"]

#: ``DATALOADER.SAMPLER_TRAIN`` names fast-reid's ``build_reid_train_loader`` builds (``fastreid/data/build.py``).
FASTREID_TRAIN_SAMPLERS = ("TrainingSampler", "NaiveIdentitySampler", "BalancedIdentitySampler",
                           "SetReWeightSampler", "ImbalancedDatasetSampler")


def instances_per_epoch(num_pairs: int, text_ratio: float) -> int:
    """Number of instances in one training epoch of DMF Algorithm 1.

    An epoch shows every sample of the more frequently drawn modality once in
    expectation: ``round(N / max(r, 1 - r))``. At r = 0.5 (a uniform draw over
    S_i U S_t, the paper's setting) that is 2N, each image and each description
    once; r = 0 is an epoch over S_i (N images), r = 1 over S_t (N texts); in
    between, e.g. r = 0.25 gives 4N/3 instances: N images and N/3 texts.

    Args:
        num_pairs: N, the number of image/description pairs (training items).
        text_ratio: r = ``DATALOADER.TEXT_RATIO``, the probability that an instance is a text.

    Returns:
        The epoch length in instances (fast-reid's ``DefaultTrainer`` divides it by
        ``SOLVER.IMS_PER_BATCH`` to get iterations per epoch).

    Raises:
        ValueError: ``num_pairs`` < 0 or ``text_ratio`` outside [0, 1] (names DATALOADER.TEXT_RATIO).
    """
    if num_pairs < 0:
        raise ValueError(f"number of training items must be >= 0, got {num_pairs}")
    if not 0.0 <= text_ratio <= 1.0:
        raise ValueError(f"DATALOADER.TEXT_RATIO={text_ratio}: expected a probability in [0, 1]")
    return round(num_pairs / max(text_ratio, 1.0 - text_ratio))


class _IdentityBatchSampler(Sampler):
    """Infinite P x K identity sampler: the parts DMF's and MMET's samplers share.

    Identity selection and sharding mirror fast-reid's ``NaiveIdentitySampler``: each round walks all
    identities in a fresh random order, P x world_size at a time (last partial batch dropped), K instances
    each (with replacement only when an identity has fewer than K items); a global batch is reordered
    with fast-reid's ``reorder_index`` so each process gets whole identities, and process ``r`` takes every
    ``world_size``-th index from ``r``. Subclasses turn each global batch's items into indices
    (:meth:`_global_batch`).

    Raises:
        ValueError: batch size not a positive multiple of K (names DATALOADER.NUM_INSTANCE), or fewer
            identities than P (names SOLVER.IMS_PER_BATCH).
    """

    def __init__(self, data_source: Sequence[tuple], mini_batch_size: int, num_instances: int,
                 seed: int | None = None, rank: int | None = None, world_size: int | None = None) -> None:
        if mini_batch_size < 1 or num_instances < 1 or mini_batch_size % num_instances:
            raise ValueError(f"batch size {mini_batch_size} must be a positive multiple of "
                             f"DATALOADER.NUM_INSTANCE={num_instances}")
        self.num_items = len(data_source)
        self.num_instances = num_instances
        self.num_pids_per_batch = mini_batch_size // num_instances
        self._rank = comm.get_rank() if rank is None else rank
        self._world_size = comm.get_world_size() if world_size is None else world_size
        self.batch_size = mini_batch_size * self._world_size
        self.pid_index: dict = defaultdict(list)
        for index, item in enumerate(data_source):
            self.pid_index[item[1]].append(index)
        self.pids = sorted(self.pid_index)
        if len(self.pids) < self.num_pids_per_batch:
            raise ValueError(f"{len(self.pids)} identities cannot fill a batch of {self.num_pids_per_batch} "
                             f"identities x {num_instances} instances; lower SOLVER.IMS_PER_BATCH")
        self._seed = int(comm.shared_random_seed() if seed is None else seed)

    def __iter__(self) -> Iterator[int]:
        yield from itertools.islice(self._infinite_indices(), self._rank, None, self._world_size)

    def _infinite_indices(self) -> Iterator[int]:
        """The global stream (before process slicing), restarted by every ``iter()``."""
        rng = np.random.default_rng(self._seed)
        state = self._new_stream_state()
        pids_per_global_batch = self.num_pids_per_batch * self._world_size
        while True:
            order = rng.permutation(len(self.pids))
            for start in range(0, len(order) - pids_per_global_batch + 1, pids_per_global_batch):
                pids = [self.pids[pos] for pos in order[start:start + pids_per_global_batch]]
                yield from reorder_index(self._global_batch(rng, pids, state), self._world_size)

    def _instances(self, rng: np.random.Generator, pid) -> list[int]:
        indices = self.pid_index[pid]
        replace = len(indices) < self.num_instances
        return rng.choice(indices, size=self.num_instances, replace=replace).tolist()

    def _new_stream_state(self):
        """Per-stream state handed to every :meth:`_global_batch` call (None here)."""
        return None

    def _global_batch(self, rng: np.random.Generator, pids: list, state) -> list[int]:
        """Dataset indices of one global batch of the identities ``pids`` (K instances each, :meth:`_instances`)."""
        raise NotImplementedError


def _require_descriptions(data_source: Sequence[tuple], message: str) -> None:
    """Raise ``ValueError(message.format(path=...))`` for the first item without a description."""
    for item in data_source:
        if len(item) < 4 or not item[3]:
            raise ValueError(message.format(path=repr(item[0])))


class MultimodalIdentitySampler(_IdentityBatchSampler):
    """Infinite P x K identity sampler over images and their descriptions.

    Args:
        data_source: train items ``(img_path, pid, camid[, description])``.
        mini_batch_size: batch size per process (P x K).
        num_instances: K, instances per identity in a batch.
        text_ratio: probability that an instance is the description, in [0, 1].
        seed: random seed; None = fast-reid's seed shared by all processes.
        rank, world_size: process index and count (default: fast-reid's comm).

    Yields:
        int indices: ``i`` (image of item i) or ``len(data_source) + i`` (its description).

    Raises:
        ValueError: batch size not a multiple of K, fewer identities than P,
            ``text_ratio`` outside [0, 1], or ``text_ratio > 0`` while an item
            has no description (message names the first such image).
    """

    def __init__(self, data_source: Sequence[tuple], mini_batch_size: int, num_instances: int,
                 text_ratio: float = 0.5, seed: int | None = None, rank: int | None = None,
                 world_size: int | None = None) -> None:
        if not 0.0 <= text_ratio <= 1.0:
            raise ValueError(f"DATALOADER.TEXT_RATIO={text_ratio}: expected a probability in [0, 1]")
        if text_ratio > 0:
            _require_descriptions(data_source, f"DATALOADER.TEXT_RATIO={text_ratio} needs a description for every "
                                  "training image, but {path} has none (use a text dataset such as FineGPR, or "
                                  "TEXT_RATIO 0)")
        super().__init__(data_source, mini_batch_size, num_instances, seed, rank, world_size)
        self.text_ratio = float(text_ratio)

    def _global_batch(self, rng: np.random.Generator, pids: list, state) -> list[int]:
        """Each instance is its item's description with probability ``text_ratio``, else its image.

        Random draws per identity: its K instances, then K modality draws (the stream of the released demo
        and ablation numbers).
        """
        batch = []
        for pid in pids:
            for index in self._instances(rng, pid):
                batch.append(text_index(index, self.num_items) if rng.random() < self.text_ratio else index)
        return batch


class TaskIdentitySampler(_IdentityBatchSampler):
    """Infinite P x K identity sampler whose every global batch is one MMET task.

    Identities and instances are drawn as in :class:`MultimodalIdentitySampler` (a fresh permutation of the
    identities per round, K instances per identity, with replacement only when an identity has fewer than
    K items, fast-reid's ``reorder_index`` over the global batch of ``mini_batch_size x world_size``), but
    the modality is drawn once per global batch from ``task_probabilities``, so every process trains the
    same task at a step, as in MMET (arXiv 2304.09498), whose official code draws the image, text or
    image+text loader uniformly at every step (the default weights here).

    The stream is a pure function of (seed, data, arguments): every ``iter()`` restarts it, and the read
    counts are kept over the global stream before process slicing, so they agree on every process and for
    any number of DataLoader workers.

    Args:
        data_source: train items ``(img_path, pid, camid[, description])``.
        mini_batch_size: batch size per process (P x K).
        num_instances: K, instances per identity in a batch.
        task_weights: ``DATALOADER.TASK_WEIGHTS``, non-negative weights of the (visual, textual,
            visual-textual) tasks, i.e. of the modalities ``IMAGE``, ``TEXT``, ``PAIR`` of
            :mod:`fastreid_dmf.multimodal_batch`; normalised to probabilities.
        seed: random seed; None = fast-reid's seed shared by all processes.
        rank, world_size: process index and count (default: fast-reid's comm).

    Attributes:
        task_probabilities: tuple of 3 floats, the normalised ``task_weights``.

    Yields:
        int indices ``encode_index(item, task, len(data_source), read_count)``
        (:mod:`fastreid_dmf.multimodal_batch`), ``read_count`` = how many times this (item, task) was drawn
        before in the global stream.

    Raises:
        ValueError: batch size not a positive multiple of K (names DATALOADER.NUM_INSTANCE), fewer
            identities than P, ``task_weights`` not 3 finite numbers >= 0 with a positive sum, or a
            textual / visual-textual weight > 0 while an item has no description (names
            DATALOADER.TASK_WEIGHTS and the first such image).
    """

    def __init__(self, data_source: Sequence[tuple], mini_batch_size: int, num_instances: int,
                 task_weights: Sequence[float] = (1.0, 1.0, 1.0), seed: int | None = None,
                 rank: int | None = None, world_size: int | None = None) -> None:
        weights = _task_weights(task_weights)
        if weights[TEXT] > 0 or weights[PAIR] > 0:
            _require_descriptions(data_source, f"DATALOADER.TASK_WEIGHTS={tuple(task_weights)} draws textual or "
                                  "visual-textual batches, which need a description for every training image, "
                                  "but {path} has none (use a dataset with descriptions such as FineGPR, or set "
                                  "the textual and visual-textual weights of DATALOADER.TASK_WEIGHTS to 0)")
        super().__init__(data_source, mini_batch_size, num_instances, seed, rank, world_size)
        total = sum(weights)
        self.task_probabilities: tuple[float, float, float] = tuple(w / total for w in weights)

    def _new_stream_state(self) -> np.ndarray:
        """``reads[task, item]``: how many times (item, task) was drawn so far in this stream."""
        return np.zeros((NUM_MODALITIES, self.num_items), dtype=np.int64)

    def _global_batch(self, rng: np.random.Generator, pids: list, reads: np.ndarray) -> list[int]:
        """One task for the whole global batch (drawn after its instances); indices carry their read counts."""
        items = [self._instances(rng, pid) for pid in pids]
        task = int(rng.choice(NUM_MODALITIES, p=np.asarray(self.task_probabilities)))
        batch = []
        for instances in items:
            for index in instances:
                batch.append(encode_index(index, task, self.num_items, int(reads[task, index])))
                reads[task, index] += 1
        return batch


def _task_weights(task_weights: Sequence[float]) -> tuple[float, float, float]:
    """``task_weights`` as 3 floats indexed by modality value (``IMAGE``, ``TEXT``, ``PAIR``), validated.

    Raises:
        ValueError: not 3 finite numbers >= 0 with a positive sum (names DATALOADER.TASK_WEIGHTS).
    """
    problem = (f"DATALOADER.TASK_WEIGHTS={task_weights!r}: expected 3 finite weights >= 0 with a positive sum "
               f"for the (visual, textual, visual-textual) tasks")
    if isinstance(task_weights, (str, bytes)):
        raise ValueError(problem)
    try:
        weights = tuple(float(w) for w in task_weights)
    except (TypeError, ValueError):
        raise ValueError(problem) from None
    if (len(weights) != NUM_MODALITIES or not all(math.isfinite(w) and w >= 0 for w in weights)
            or not 0 < sum(weights) < math.inf):
        raise ValueError(problem)
    return weights
