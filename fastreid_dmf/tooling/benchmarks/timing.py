"""Shared parts of the speed benchmarks: per-round sample summaries, device synchronisation, the run's
environment and checked configs."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence

import numpy as np

__all__ = ["summarize", "sync_device", "run_environment", "load_checked_config"]


def summarize(samples: Sequence[float]) -> dict[str, object]:
    """Median, quartiles and interquartile range (seconds) of a measurement's per-round samples.

    Args:
        samples: per-round times in seconds (at least one).

    Returns:
        ``{"median_s", "q1_s", "q3_s", "iqr_s", "rounds", "samples_s"}``.
    """
    values = np.asarray(samples, dtype=np.float64)
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return {"median_s": median, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "rounds": len(values),
            "samples_s": [float(v) for v in values]}


def sync_device(device) -> None:
    """Wait for the queued kernels of a CUDA ``torch.device`` (timing boundary); nothing on a CPU."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def run_environment(device: str) -> dict[str, object]:
    """Python / torch versions, device, torch threads, CPU count and load average of this run."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"python": platform.python_version(), "torch": torch.__version__, "device": device,
            "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in load] if load else None}


def load_checked_config(path: str, opts: Sequence[str], extra: Sequence[str] = ()):
    """fast-reid config of ``path`` with ``opts`` then ``extra`` (``KEY VALUE`` lists) merged, checked.

    Raises:
        ValueError: a bad key or value (:func:`~fastreid_dmf.config.defaults.check_dmf_config`).
    """
    from ...config import load_config
    from ...config.defaults import check_dmf_config

    cfg = load_config(path, [*opts, *extra])
    check_dmf_config(cfg)
    return cfg
