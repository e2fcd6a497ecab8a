"""``DMFTrainer``: fast-reid's ``DefaultTrainer`` with DMF data loading and checkpoint transfer.

Everything else (hooks, evaluators, schedulers, checkpoint resume,
``DATASETS.TESTS`` cross-domain testing) is fast-reid's, unchanged
(``fastreid/engine/defaults.py``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Iterator

import torch
from fastreid.config import get_cfg
from fastreid.engine import DefaultTrainer, default_setup
from fastreid.engine import defaults as fastreid_defaults
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.solver import build as fastreid_solver_build
from fastreid.utils import comm
from fastreid.utils.checkpoint import Checkpointer
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..compat import cuda_usable, disable_amp_without_cuda
from ..config import add_dmf_config, check_dmf_config
from ..data.build import build_dmf_test_loader, build_dmf_train_loader

__all__ = ["DMFTrainer", "setup_cfg", "filter_checkpoint_keys", "guard_output_dir", "save_results", "train_or_eval",
           "ddp_with_unused_parameters", "scaled_lr_for"]

logger = logging.getLogger(__name__)


def filter_checkpoint_keys(state: dict, skip_prefixes: tuple[str, ...] | list[str]) -> tuple[dict, list[str]]:
    """Drop keys starting with any of ``skip_prefixes`` (``MODEL.DMF.SKIP_LOAD_KEYS``).

    Returns:
        ``(kept_state, skipped_keys)``.
    """
    prefixes = tuple(skip_prefixes)
    skipped = sorted(k for k in state if prefixes and k.startswith(prefixes))
    return {k: v for k, v in state.items() if k not in skipped}, skipped


@contextlib.contextmanager
def ddp_with_unused_parameters() -> Iterator[None]:
    """Within the block, fast-reid's ``DefaultTrainer`` wraps models in DDP with ``find_unused_parameters=True``.

    A DMF batch with images only (or texts only) leaves the other modality's
    projection, [cls] and position embedding without gradients, which plain
    DDP rejects. Replaces ``fastreid.engine.defaults.DistributedDataParallel``
    (the name ``DefaultTrainer.__init__`` calls) and restores it on exit.
    """
    original = fastreid_defaults.DistributedDataParallel
    fastreid_defaults.DistributedDataParallel = functools.partial(original, find_unused_parameters=True)
    try:
        yield
    finally:
        fastreid_defaults.DistributedDataParallel = original


@contextlib.contextmanager
def scaled_lr_for(parameters: list, factor: float) -> Iterator[None]:
    """Within the block, fast-reid's optimizer parameter groups of ``parameters`` get their LR times ``factor``.

    Wraps ``fastreid.solver.build.get_default_optimizer_params`` (which
    ``build_optimizer`` calls before grouping parameters by LR), so bias and
    heads LR factors still apply on top.
    """
    original = fastreid_solver_build.get_default_optimizer_params
    targets = {id(p) for p in parameters}

    @functools.wraps(original)
    def scaled(*args, **kwargs):
        groups = original(*args, **kwargs)
        base_lr = kwargs.get("base_lr")
        for group in groups:
            if any(id(p) in targets for p in group["params"]):
                group["lr"] = group.get("lr", base_lr) * factor
        return groups

    fastreid_solver_build.get_default_optimizer_params = scaled
    try:
        yield
    finally:
        fastreid_solver_build.get_default_optimizer_params = original


class DMFTrainer(DefaultTrainer):
    """fast-reid ``DefaultTrainer`` for DMF pre-training and fine-tuning.

    * ``build_train_loader``: :func:`fastreid_dmf.data.build.build_dmf_train_loader`
      (mixed image/text batches, ``DATALOADER.SAMPLER_TRAIN = MultimodalIdentitySampler``).
    * ``build_test_loader``: fast-reid's, with config-driven dataset arguments.
    * ``resume_or_load``: when starting from ``MODEL.WEIGHTS`` (not resuming),
      drops ``MODEL.DMF.SKIP_LOAD_KEYS`` (the identity classifier when
      fine-tuning on new identities) and logs every key skipped and why.
    * multi-GPU: DDP with ``find_unused_parameters=True`` (see :func:`ddp_with_unused_parameters`).
    * ``build_optimizer``: fast-reid's, with a fine-tuned text encoder's LR times
      ``MODEL.DMF.TEXT_ENCODER.LR_FACTOR``.
    """

    @classmethod
    def build_optimizer(cls, cfg, model):
        """fast-reid's ``build_optimizer``; returns ``(optimizer, param_wrapper)`` as upstream."""
        encoder = getattr(getattr(model, "backbone", None), "text_encoder", None)
        trainable = [] if encoder is None or encoder.freeze else [
            p for p in encoder.module.parameters() if p.requires_grad]
        factor = cfg.MODEL.DMF.TEXT_ENCODER.LR_FACTOR
        if not trainable or factor == 1.0:
            return super().build_optimizer(cfg, model)
        logger.info("Fine-tuned text encoder: %d parameter tensors at LR x %g (MODEL.DMF.TEXT_ENCODER.LR_FACTOR)",
                    len(trainable), factor)
        with scaled_lr_for(trainable, factor):
            return super().build_optimizer(cfg, model)

    def __init__(self, cfg) -> None:
        with ddp_with_unused_parameters():
            super().__init__(cfg)

    def train(self):
        """fast-reid's ``DefaultTrainer.train``; afterwards the train loader's prefetch thread is stopped.

        fast-reid's ``DataLoaderX`` prefetches from an infinite sampler in a daemon
        thread that nothing stops; left running at interpreter exit it can abort the
        process ("terminate called without an active exception", exit code 134)
        after the results were written.

        Returns:
            fast-reid's last evaluation results (as upstream).
        """
        try:
            return super().train()
        finally:
            loader = getattr(self._trainer, "data_loader", None)
            if getattr(loader, "iter", None) is not None and hasattr(loader, "shutdown"):
                loader.shutdown()

    @classmethod
    def build_train_loader(cls, cfg):
        """See class docstring."""
        logger.info("Prepare training set")
        return build_dmf_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        """See class docstring."""
        return build_dmf_test_loader(cfg, dataset_name)

    def resume_or_load(self, resume: bool = True) -> None:
        """Resume from OUTPUT_DIR's last checkpoint, else load ``MODEL.WEIGHTS`` with key filtering.

        Raises:
            FileNotFoundError: ``MODEL.WEIGHTS`` is set but is not a file.
        """
        weights = self.cfg.MODEL.WEIGHTS
        if (resume and self.checkpointer.has_checkpoint()) or not weights:
            super().resume_or_load(resume=resume)
            return
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"MODEL.WEIGHTS={weights!r} is not a file")
        checkpoint = self.checkpointer._load_file(weights)
        state, skipped = filter_checkpoint_keys(checkpoint["model"], self.cfg.MODEL.DMF.SKIP_LOAD_KEYS)
        for key in skipped:
            logger.info("Not loading '%s' from %s: listed in MODEL.DMF.SKIP_LOAD_KEYS (re-initialised; the "
                        "identity classifier belongs to the source identities)", key, weights)
        incompatible = self.checkpointer._load_model({"model": state})
        # fast-reid logs shape mismatches ("Skip loading parameter ...") and missing/unexpected keys.
        self.checkpointer._log_incompatible_keys(incompatible)
        logger.info("Loaded %d tensors from %s (%d skipped by MODEL.DMF.SKIP_LOAD_KEYS, %d for shape)",
                    len(state) - len(incompatible.incorrect_shapes), weights, len(skipped),
                    len(incompatible.incorrect_shapes))


def guard_output_dir(cfg, resume: bool, eval_only: bool) -> None:
    """Refuse to train into an OUTPUT_DIR that already holds checkpoints (unless resuming).

    Raises:
        FileExistsError: names the folder and the options (``--resume`` or another ``OUTPUT_DIR``).
    """
    out = cfg.OUTPUT_DIR
    if eval_only or resume or not out or not os.path.isdir(out):
        return
    existing = sorted(f for f in os.listdir(out) if f.endswith(".pth") or f == "last_checkpoint")
    if existing:
        raise FileExistsError(
            f"OUTPUT_DIR={out!r} already holds checkpoints ({', '.join(existing[:5])}); training would overwrite "
            "them. Pass --resume to continue that run, or choose another OUTPUT_DIR"
        )


def _cpu_without_cuda(cfg):
    """``MODEL.DEVICE`` cuda on a machine without a usable GPU -> cpu, with a warning (paper configs say cuda)."""
    if cfg.MODEL.DEVICE.startswith("cuda") and not cuda_usable():
        logger.warning("MODEL.DEVICE=%s but no GPU is usable here: running on the CPU", cfg.MODEL.DEVICE)
        cfg = cfg.clone()
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def setup_cfg(args):
    """Build the config from ``args`` (fast-reid's ``default_argument_parser``) and run fast-reid's setup.

    Order: fast-reid defaults -> :func:`add_dmf_config` -> ``--config-file``
    -> trailing ``KEY VALUE`` overrides -> checks (before any data or model is built).

    Raises:
        ValueError, FileExistsError: bad keys/values or an output folder holding checkpoints.
    """
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    check_dmf_config(cfg)
    cfg = disable_amp_without_cuda(cfg)
    cfg = _cpu_without_cuda(cfg)
    guard_output_dir(cfg, args.resume, args.eval_only)
    cfg.freeze()
    default_setup(cfg, args)
    # fast-reid's default_setup logs the "fastreid" logger only; ours goes to the same OUTPUT_DIR/log.txt.
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fastreid_dmf")
    if cfg.SEED >= 0:
        seed_all_rng(cfg.SEED)
    return cfg


def save_results(results: dict, output_dir: str, name: str) -> str | None:
    """Write fast-reid's result dict (``{dataset: {metric: value}}``) as JSON; returns the path."""
    if not output_dir:
        return None
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, name)

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return float(value) if isinstance(value, (int, float, torch.Tensor)) or hasattr(value, "item") else value

    with open(path, "w") as handle:
        json.dump(plain(results), handle, indent=2)
    return path


def train_or_eval(args) -> dict:
    """What ``tools/train_net.py`` runs in each process: train (or ``--eval-only``), then write ``results.json``.

    Args:
        args: fast-reid's ``default_argument_parser()`` namespace.

    Returns:
        fast-reid's test results ``{dataset: {metric: value in percent}}`` (also for a single test set).

    Raises:
        FileNotFoundError: ``--eval-only`` with a ``MODEL.WEIGHTS`` that is not a file.
        RuntimeError: training (no ``--eval-only``) a META_ARCH whose class sets ``trainable = False``
            (``ColorHistogramMatcher``), before any data is loaded.
        ValueError, FileExistsError: from :func:`setup_cfg`.
    """
    cfg = setup_cfg(args)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        if cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS):
            raise FileNotFoundError(f"MODEL.WEIGHTS={cfg.MODEL.WEIGHTS!r} is not a file")
        model = DMFTrainer.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
        results = DMFTrainer.test(cfg, model)
    else:
        if not getattr(META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE), "trainable", True):
            raise RuntimeError(f"MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE!r} has nothing to train; "
                               "run tools/train_net.py with --eval-only")
        trainer = DMFTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()
    if results and not all(isinstance(v, dict) for v in results.values()):
        # fast-reid unwraps the dict of a single test set; keep {dataset: metrics} for every run.
        results = {cfg.DATASETS.TESTS[0]: {k: v for k, v in results.items() if k != "dataset"}}
    save_results(results, cfg.OUTPUT_DIR, "results.json")
    return results
