"""Exact resume: the sampler position and the random-number states saved with every checkpoint.

fast-reid's checkpoints hold the model, optimizer, LR schedulers and epoch. A resumed run therefore
restarts the training sampler from its seed (replaying epoch 0's batches) and the Python / NumPy / torch
generators from wherever construction left them, so the final model differs from an uninterrupted run.
:class:`TrainingProgress` is registered as one more ``Checkpointer`` checkpointable; it saves

* ``batches_done``: training batches the loop has consumed (fast-reid's ``trainer.iter`` when the
  ``PeriodicCheckpointer`` hook saves, at the end of an epoch), and the per-process batch size;
* ``rng``: the Python ``random``, NumPy global and torch (CPU and CUDA) generator states at that moment.

Saving also writes the frozen text encoder's pending description features to its persistent cache
(``MODEL.DMF.TEXT_ENCODER.CACHE_DIR``, on by default under OUTPUT_DIR): a description's feature depends
slightly (float rounding) on the padding of the encoder call that computed it, so the resumed run must
reuse the stored features rather than recompute them in other groupings.

On resume (:meth:`TrainingProgress.restore`) the train loader's sampler skips the ``batches_done`` batches
of its deterministic stream, the loader's iterator is rebuilt, then the generator states are restored.
With ``SEED`` set and ``DATALOADER.NUM_WORKERS 0`` (data loaded in the training thread, see
``compat`` patch 3) every random draw of the resumed run equals the uninterrupted run's, so
``model_final.pth`` is bit-identical. With worker processes the batches (identities, modalities, order)
are still exact, but the workers' augmentation generators are re-seeded when the iterator is rebuilt, so
flips, crops and erasing differ from the uninterrupted run from the resumed epoch on.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["SkipFirst", "TrainingProgress", "capture_rng_states", "restore_rng_states"]

logger = logging.getLogger(__name__)


def capture_rng_states() -> dict:
    """The Python ``random``, NumPy global and torch generator states, in ``weights_only``-loadable types.

    Returns:
        ``{"python": (version, tuple of 625 ints, gauss), "numpy": {"keys": int64 (624,) tensor, "pos",
        "has_gauss", "cached_gaussian"}, "torch": uint8 tensor, "cuda": list of uint8 tensors}``.
    """
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_states(states: dict) -> None:
    """Set the generators to states from :func:`capture_rng_states` (CUDA only where devices match)."""
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = states["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    cuda_states = states.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)


class SkipFirst(torch.utils.data.Sampler):
    """A sampler that drops the first ``count`` indices of another (deterministically seeded) sampler.

    Args:
        sampler: the train sampler (fast-reid's identity samplers, :class:`MultimodalIdentitySampler`);
            each iteration must replay the same stream, as seeded infinite samplers do.
        count: indices to drop (batches done x per-process batch size).
    """

    def __init__(self, sampler: Any, count: int) -> None:
        self.sampler = sampler
        self.count = int(count)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.sampler), self.count, None)


class TrainingProgress:
    """Checkpointable (``state_dict`` / ``load_state_dict``) holding the sampler position and RNG states.

    Args:
        trainer: fast-reid's ``DefaultTrainer`` (its ``iter``, ``_trainer.data_loader`` and
            ``_trainer._data_loader_iter`` are read and, on restore, replaced).

    ``load_state_dict`` only keeps the state; :meth:`restore` applies it, so the caller controls the
    order (the loader's iterator must be rebuilt before the generators are set, because building it draws
    a seed from torch's generator).
    """

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer
        self.loaded: dict | None = None

    def _batch_sampler(self) -> Any:
        return getattr(self.trainer._trainer.data_loader, "batch_sampler", None)

    def state_dict(self) -> dict:
        """``{"batches_done": int, "batch_size": int, "rng": capture_rng_states()}``; flushes text caches.

        Raises:
            OSError: a text-feature cache folder cannot be written.
        """
        from ..modeling.text import TextTokenEncoder  # lazy: engine must not load modeling at import

        for module in self.trainer.model.modules():
            if isinstance(module, TextTokenEncoder):
                module.flush()
        batch_sampler = self._batch_sampler()
        return {"batches_done": int(self.trainer.iter),
                "batch_size": int(getattr(batch_sampler, "batch_size", 0) or 0),
                "rng": capture_rng_states()}

    def load_state_dict(self, state: dict) -> None:
        """Keep ``state`` for :meth:`restore`."""
        self.loaded = state

    def restore(self) -> bool:
        """Fast-forward the train loader past the batches done and restore the generators.

        Returns:
            False when nothing was loaded (a checkpoint written before this existed): the sampler then
            restarts from its seed, as in fast-reid, and a warning says so.
        """
        if not self.loaded:
            logger.warning("The checkpoint holds no sampler position or random states: the resumed run "
                           "restarts the sampler from its seed and will not equal an uninterrupted run")
            return False
        loader = self.trainer._trainer.data_loader
        batch_sampler = self._batch_sampler()
        batches_done, batch_size = self.loaded["batches_done"], self.loaded["batch_size"]
        if batch_sampler is not None and batches_done:
            if batch_size != batch_sampler.batch_size:
                logger.warning("Resuming with %d samples per batch per process, the checkpoint was written with "
                               "%d: the sampler skips %d batches of the new size", batch_sampler.batch_size,
                               batch_size, batches_done)
            inner = batch_sampler.sampler
            while isinstance(inner, SkipFirst):
                inner = inner.sampler
            batch_sampler.sampler = SkipFirst(inner, batches_done * batch_sampler.batch_size)
            if getattr(loader, "iter", None) is not None and hasattr(loader, "shutdown"):
                loader.shutdown()
            self.trainer._trainer._data_loader_iter = iter(loader)
            logger.info("Resumed the training sampler after %d batches", batches_done)
        restore_rng_states(self.loaded["rng"])
        return True
