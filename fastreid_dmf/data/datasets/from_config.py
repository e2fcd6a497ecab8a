"""Constructor arguments of a registered dataset, read from the config by the dataset class itself.

A dataset class that needs config values defines ``kwargs_from_config(cfg) -> dict`` (a classmethod);
fast-reid's own datasets need none. The loaders call :func:`dataset_kwargs` for every name in
``DATASETS.NAMES`` and ``DATASETS.TESTS``, so a new dataset adds its keys in its own file.
"""

from __future__ import annotations

from fastreid.data.datasets import DATASET_REGISTRY

__all__ = ["dataset_kwargs"]


def dataset_kwargs(cfg, name: str) -> dict:
    """Keyword arguments for ``DATASET_REGISTRY.get(name)(root=..., **kwargs)`` from the config.

    Args:
        cfg: the merged config.
        name: a registered dataset name.

    Returns:
        ``cls.kwargs_from_config(cfg)`` when the class defines it, else ``{}``.

    Raises:
        KeyError: ``name`` is not registered (``check_dmf_config`` refuses such names earlier).
    """
    reader = getattr(DATASET_REGISTRY.get(name), "kwargs_from_config", None)
    return reader(cfg) if reader is not None else {}
