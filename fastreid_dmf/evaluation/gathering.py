"""The features an evaluator collected, gathered from every process (fast-reid's ``ReidEvaluator.evaluate`` idiom).

Each process's evaluator keeps ``{"feats", "pids", "camids"}`` per batch; under ``torch.distributed`` the main
process gathers all of them (``fastreid.utils.comm.gather``) and the others return nothing.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from fastreid.utils import comm

__all__ = ["gathered_predictions"]


def gathered_predictions(predictions: list[dict]) -> tuple[torch.Tensor, np.ndarray, np.ndarray] | None:
    """Concatenate every process's batches: ``(features (N, D) float, pids (N,) int, camids (N,) int)``.

    Returns:
        The tuple on the main process (in rank order, as fast-reid's ``comm.gather``), None on the others.
    """
    if comm.get_world_size() > 1:
        comm.synchronize()
        predictions = list(itertools.chain(*comm.gather(predictions, dst=0)))
        if not comm.is_main_process():
            return None
    features = torch.cat([p["feats"] for p in predictions], dim=0)
    pids = torch.cat([p["pids"] for p in predictions], dim=0).numpy()
    camids = torch.cat([p["camids"] for p in predictions], dim=0).numpy()
    return features, pids, camids
