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
from collections import OrderedDict
from collections.abc import Iterator

import torch
from fastreid.engine import DefaultTrainer, default_setup
from fastreid.engine import defaults as fastreid_defaults
from fastreid.evaluation import inference_on_dataset, print_csv_format
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.solver import build as fastreid_solver_build
from fastreid.utils import comm
from fastreid.utils.env import seed_all_rng
from fastreid.utils.logger import setup_logger

from ..compat import attribute_replaced, cuda_usable, disable_amp_without_cuda
from ..config import check_dmf_config, load_config
from ..config.defaults import check_lr_schedule
from ..data.build import build_dmf_test_loader, build_dmf_train_loader, build_gallery_loader
from ..evaluation.blockwise import BlockwiseReidEvaluator
from ..evaluation.text_to_image import RESULT_SUFFIX, TextToImageEvaluator, load_text_to_image_set
from ..modeling.distributed import cpu_capable_sync_batchnorm
from .checkpoint import load_resumable_checkpoint, load_weights_strict, weights_only_torch_load
from .resume import TrainingProgress

__all__ = ["DMFTrainer", "setup_cfg", "guard_output_dir", "save_results", "train_or_eval",
           "ddp_with_unused_parameters", "scaled_lr_for", "check_output_dir_writable", "eval_output_dir",
           "load_eval_weights"]

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def ddp_with_unused_parameters() -> Iterator[None]:
    """Within the block, fast-reid's ``DefaultTrainer`` wraps models in DDP with ``find_unused_parameters=True``.

    A DMF batch with images only (or texts only) leaves the other modality's
    projection, [cls] and position embedding without gradients, which plain
    DDP rejects. A model on the CPU (gloo processes) gets ``device_ids=None``
    (fast-reid passes the local rank, which DDP refuses for CPU modules). Replaces
    ``fastreid.engine.defaults.DistributedDataParallel`` (the name
    ``DefaultTrainer.__init__`` calls) and restores it on exit.
    """
    original = fastreid_defaults.DistributedDataParallel

    def ddp(model, device_ids=None, **kwargs):
        # fast-reid passes device_ids=[local rank]; a CPU model (gloo processes) must get None.
        on_cpu = next(model.parameters()).device.type == "cpu"
        return original(model, device_ids=None if on_cpu else device_ids, find_unused_parameters=True, **kwargs)

    with attribute_replaced(fastreid_defaults, "DistributedDataParallel", ddp):
        yield


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

    with attribute_replaced(fastreid_solver_build, "get_default_optimizer_params", scaled):
        yield


class DMFTrainer(DefaultTrainer):
    """fast-reid ``DefaultTrainer`` for DMF pre-training and fine-tuning.

    * ``build_train_loader``: :func:`fastreid_dmf.data.build.build_dmf_train_loader`
      (mixed image/text batches, ``DATALOADER.SAMPLER_TRAIN = MultimodalIdentitySampler``).
    * ``build_test_loader``: fast-reid's, with config-driven dataset arguments.
    * ``resume_or_load``: when starting from ``MODEL.WEIGHTS`` (not resuming),
      drops ``MODEL.DMF.SKIP_LOAD_KEYS`` (the identity classifier when
      fine-tuning on new identities) and logs every key skipped and why.
    * multi-GPU: DDP with ``find_unused_parameters=True`` (see :func:`ddp_with_unused_parameters`).
    * ``build_optimizer``: fast-reid's, with a trained pre-trained text encoder's LR times
      ``MODEL.DMF.TEXT_ENCODER.LR_FACTOR`` (DMF with ``FREEZE`` False; MMET always).
    * ``build_evaluator``: fast-reid's, with the bounded-memory ``BlockwiseReidEvaluator`` (same metrics) when
      ``TEST.BLOCKWISE.ENABLED`` (default).
    * ``test``: fast-reid's (``DATASETS.TESTS``), then text-to-image retrieval on
      ``DATASETS.TEXT_TESTS`` (:mod:`fastreid_dmf.evaluation.text_to_image`), results keyed
      ``"<name> (text->image)"``; always ``{dataset: metrics}``, also for a single test set.
    """

    @classmethod
    def build_optimizer(cls, cfg, model):
        """fast-reid's ``build_optimizer``; returns ``(optimizer, param_wrapper)`` as upstream."""
        encoder = getattr(getattr(model, "backbone", None), "text_encoder", None)
        # DMF's encoder is frozen unless TEXT_ENCODER.FREEZE is False; MMET's is always trained (MLM).
        frozen = encoder is None or getattr(encoder, "freeze", False)
        trainable = [] if frozen else [p for p in encoder.parameters() if p.requires_grad]
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
        # Saved with every checkpoint: sampler position and RNG states (exact resume, engine/resume.py).
        self.progress = TrainingProgress(self)
        self.checkpointer.checkpointables["progress"] = self.progress

    def train(self):
        """fast-reid's ``DefaultTrainer.train``; afterwards the train loader is shut down.

        On a GPU fast-reid's ``DataLoaderX`` prefetches from an infinite sampler in a
        daemon thread that nothing stops; left running at interpreter exit it can abort
        the process ("terminate called without an active exception", exit code 134)
        after the results were written. On the CPU this stops its worker processes.

        A run resumed from a checkpoint of its last epoch has nothing left to train
        (fast-reid's hooks would fail on a loop that never ran): the loaded model is
        evaluated instead.

        Returns:
            fast-reid's last evaluation results (as upstream).
        """
        try:
            if self.start_epoch >= self.max_epoch:
                logger.warning("Resumed at epoch %d of SOLVER.MAX_EPOCH=%d: training is complete, evaluating the "
                               "loaded model", self.start_epoch, self.max_epoch)
                return self.test(self.cfg, self.model)
            return super().train()
        finally:
            loader = getattr(self._trainer, "data_loader", None)
            if getattr(loader, "iter", None) is not None and hasattr(loader, "shutdown"):
                loader.shutdown()

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_dir=None):
        """fast-reid's test loader and evaluator; :class:`~fastreid_dmf.evaluation.blockwise.BlockwiseReidEvaluator`
        (same metrics, bounded memory) when ``TEST.BLOCKWISE.ENABLED``, else fast-reid's ``ReidEvaluator``."""
        data_loader, evaluator = super().build_evaluator(cfg, dataset_name, output_dir)
        if cfg.TEST.BLOCKWISE.ENABLED:
            evaluator = BlockwiseReidEvaluator(cfg, evaluator._num_query, output_dir)
        return data_loader, evaluator

    @classmethod
    def test(cls, cfg, model):
        """See class docstring. Returns ``OrderedDict {dataset: {metric: value in percent}}``."""
        results = super().test(cfg, model) if cfg.DATASETS.TESTS else OrderedDict()
        if results and not all(isinstance(v, dict) for v in results.values()):
            # fast-reid unwraps the dict of a single test set; keep {dataset: metrics} for every run.
            results = OrderedDict({cfg.DATASETS.TESTS[0]: results})
        for name in cfg.DATASETS.TEXT_TESTS:
            logger.info("Prepare text-to-image test set %s", name)
            test_set = load_text_to_image_set(cfg, name)
            if comm.is_main_process():
                logger.info("%s text-to-image: %d descriptions, %d gallery images", name, len(test_set.queries),
                            len(test_set.gallery))
            evaluator = TextToImageEvaluator(cfg, model, test_set.queries)
            metrics = inference_on_dataset(model, build_gallery_loader(cfg, test_set.gallery), evaluator,
                                           flip_test=cfg.TEST.FLIP.ENABLED)
            key = name + RESULT_SUFFIX
            results[key] = metrics
            if comm.is_main_process():
                logger.info("Evaluation results for %s in csv format:", key)
                metrics["dataset"] = key
                print_csv_format(metrics)
        return results

    @classmethod
    def build_model(cls, cfg):
        """fast-reid's ``build_model`` with every ``torch.load`` inside reading ``weights_only=True``, and
        fast-reid's ``syncBN`` layers able to synchronise CPU processes too.

        fast-reid's backbones read ``MODEL.BACKBONE.PRETRAIN_PATH`` with a bare ``torch.load``
        (:func:`~fastreid_dmf.engine.checkpoint.weights_only_torch_load`); ``MODEL.HEADS.NORM`` /
        ``MODEL.BACKBONE.NORM`` ``syncBN`` build ``torch.nn.SyncBatchNorm``, which refuses CPU tensors
        (:func:`~fastreid_dmf.modeling.distributed.cpu_capable_sync_batchnorm`).
        """
        with weights_only_torch_load():
            return cpu_capable_sync_batchnorm(super().build_model(cfg))

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer, iters_per_epoch):
        """fast-reid's, after :func:`~fastreid_dmf.config.defaults.check_lr_schedule` (needs iterations per epoch).

        Raises:
            ValueError: a schedule fast-reid would divide by zero in after the last epoch.
        """
        check_lr_schedule(cfg, iters_per_epoch)
        return super().build_lr_scheduler(cfg, optimizer, iters_per_epoch)

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
        """Resume from OUTPUT_DIR's newest loadable checkpoint, else load ``MODEL.WEIGHTS`` strictly.

        Resuming (``--resume``) restores the model, optimizer, schedulers, epoch, the sampler position and
        the random states (:class:`~fastreid_dmf.engine.resume.TrainingProgress`), from the checkpoint
        ``last_checkpoint`` names or, when that is empty, missing or truncated, from the newest one that
        loads (:func:`~fastreid_dmf.engine.checkpoint.load_resumable_checkpoint`, with a warning). Without a
        checkpoint to resume, ``MODEL.WEIGHTS`` (if set) is loaded by
        :func:`~fastreid_dmf.engine.checkpoint.load_weights_strict` minus ``MODEL.DMF.SKIP_LOAD_KEYS``
        and training starts at epoch 0.

        Raises:
            FileNotFoundError, CheckpointReadError: ``MODEL.WEIGHTS`` is set but missing or unreadable.
            ValueError: ``MODEL.WEIGHTS`` or the resumed checkpoint does not fit the model (see
                ``load_weights_strict``); ``--resume`` into an OUTPUT_DIR whose checkpoints all fail to load.
        """
        out = self.cfg.OUTPUT_DIR
        if resume and out and os.path.isdir(out):
            found = load_resumable_checkpoint(out)
            if found is not None:
                self._resume_from(*found)
                return
            if any(name.endswith(".pth") for name in os.listdir(out)):
                raise ValueError(f"--resume: no checkpoint in OUTPUT_DIR={out!r} loads (see the warnings above); "
                                 "move the broken files away to start over, or choose another OUTPUT_DIR")
        weights = self.cfg.MODEL.WEIGHTS
        if not weights:
            logger.info("No MODEL.WEIGHTS: training from the model's initialisation")
            return
        load_weights_strict(self.model, weights, self.cfg.MODEL.DMF.SKIP_LOAD_KEYS,
                            self.cfg.MODEL.DMF.ALLOW_PARTIAL_LOAD)

    def _resume_from(self, path: str, checkpoint: dict) -> None:
        """Load everything a checkpoint of this run holds (read from ``path``) and continue at the next epoch."""
        logger.info("Resuming from %s", path)
        load_weights_strict(self.model, path, checkpoint=checkpoint)
        for key, obj in self.checkpointer.checkpointables.items():
            if key in checkpoint:
                obj.load_state_dict(checkpoint[key])
        self.start_epoch = int(checkpoint.get("epoch", -1)) + 1
        self.progress.restore()


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


def check_output_dir_writable(out: str) -> None:
    """Create ``out`` (if needed) and check a file can be written in it, before anything is built.

    Raises:
        PermissionError: ``out`` (or the folder it would be created in) is not writable.
        NotADirectoryError: ``out`` or one of its parents is a regular file.
        OSError: ``out`` cannot be created for another reason (read-only file system, ...).
    """
    if not out:
        return
    try:
        os.makedirs(out, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(f"OUTPUT_DIR={out!r} is a file, expected a folder (or a path to create)") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"OUTPUT_DIR={out!r} lies below a regular file; choose a folder path") from None
    except PermissionError as err:
        raise PermissionError(f"OUTPUT_DIR={out!r} cannot be created ({err.strerror}); choose a writable "
                              "folder") from None
    except OSError as err:  # read-only file system, missing mount, ...
        raise OSError(f"OUTPUT_DIR={out!r} cannot be created ({err.strerror or err}); choose a writable "
                      "folder") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise PermissionError(f"OUTPUT_DIR={out!r} is not writable; choose a writable folder")


def eval_output_dir(out: str) -> str:
    """Where ``--eval-only`` writes its config, log and ``results.json``: never over another run's files.

    Returns:
        ``out`` itself when it does not exist or is empty, else its first free ``eval_<n>`` subfolder
        (n = 1, 2, ...), so evaluating a training run's ``OUTPUT_DIR`` keeps its ``config.yaml``,
        ``log.txt`` and ``results.json`` intact.
    """
    if not out or not os.path.isdir(out) or not os.listdir(out):
        return out
    index = 1
    while os.path.exists(os.path.join(out, f"eval_{index}")):
        index += 1
    return os.path.join(out, f"eval_{index}")


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
    -> trailing ``KEY VALUE`` overrides -> derived keys (``FEAT_DIM`` from ``MODEL.DMF.EMBED_DIM``)
    -> checks (before any data or model is built).

    With ``--eval-only`` the run writes into :func:`eval_output_dir` (``OUTPUT_DIR/eval_<n>`` when
    OUTPUT_DIR already holds files).

    Raises:
        ValueError, FileExistsError: bad keys/values or an output folder holding checkpoints; training (no
            ``--eval-only``) with an empty ``DATASETS.TESTS`` (fast-reid's checkpoint hook keys checkpoints by
            the first test set's metric and fails without one).
        PermissionError, NotADirectoryError: OUTPUT_DIR cannot be written (:func:`check_output_dir_writable`).
    """
    cfg = load_config(args.config_file, args.opts)
    check_dmf_config(cfg)
    if not args.eval_only and not cfg.DATASETS.TESTS:
        raise ValueError("config DATASETS.TESTS=(): training needs at least one image test set, because fast-reid's "
                         "checkpoint hook keys checkpoints by the first test set's metric; e.g. DATASETS.TESTS "
                         "'(\"SynthMarket\",)' (TEST.EVAL_PERIOD sets how often it is scored)")
    cfg = disable_amp_without_cuda(cfg)
    cfg = _cpu_without_cuda(cfg)
    guard_output_dir(cfg, args.resume, args.eval_only)
    if args.eval_only:
        cfg.OUTPUT_DIR = eval_output_dir(cfg.OUTPUT_DIR)
    check_output_dir_writable(cfg.OUTPUT_DIR)
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


#: fast-reid ``EmbeddingHead``'s identity classifier: sized by the training identities, unused at inference.
EVAL_UNUSED_KEYS = ("heads.weight",)


def load_eval_weights(cfg, model) -> None:
    """Load ``MODEL.WEIGHTS`` for ``--eval-only``, refusing to evaluate a model that was not loaded.

    Every tensor except the identity classifier (:data:`EVAL_UNUSED_KEYS`) must load
    (:func:`~fastreid_dmf.engine.checkpoint.load_weights_strict`). A model without tensors
    (``ColorHistogramMatcher``) needs no weights.

    Raises:
        ValueError: no ``MODEL.WEIGHTS`` for a model with tensors, unless ``MODEL.DMF.EVAL_UNTRAINED``;
            weights that do not fit the model (unless ``MODEL.DMF.ALLOW_PARTIAL_LOAD``).
        FileNotFoundError, CheckpointReadError: ``MODEL.WEIGHTS`` missing or unreadable.
    """
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        if not model.state_dict():
            return
        if cfg.MODEL.DMF.EVAL_UNTRAINED:
            logger.warning("--eval-only without MODEL.WEIGHTS: evaluating the random initialisation "
                           "(MODEL.DMF.EVAL_UNTRAINED True)")
            return
        raise ValueError("--eval-only needs MODEL.WEIGHTS (a checkpoint such as <OUTPUT_DIR>/model_final.pth); "
                         "without it a randomly initialised model would be evaluated. Set MODEL.DMF.EVAL_UNTRAINED "
                         "True to evaluate the initialisation on purpose")
    load_weights_strict(model, weights, tuple(cfg.MODEL.DMF.SKIP_LOAD_KEYS) + EVAL_UNUSED_KEYS,
                        cfg.MODEL.DMF.ALLOW_PARTIAL_LOAD)


def train_or_eval(args) -> dict:
    """What ``tools/train_net.py`` runs in each process: train (or ``--eval-only``), then write ``results.json``.

    Args:
        args: fast-reid's ``default_argument_parser()`` namespace.

    Returns:
        fast-reid's test results ``{dataset: {metric: value in percent}}`` (also for a single test set).

    Raises:
        FileNotFoundError, CheckpointReadError, ValueError: ``--eval-only`` without loadable weights
            (:func:`load_eval_weights`).
        RuntimeError: training (no ``--eval-only``) a META_ARCH whose class sets ``trainable = False``
            (``ColorHistogramMatcher``), before any data is loaded.
        ValueError, FileExistsError: from :func:`setup_cfg`.
    """
    cfg = setup_cfg(args)
    if args.eval_only:
        cfg.defrost()
        cfg.MODEL.BACKBONE.PRETRAIN = False
        cfg.freeze()
        model = DMFTrainer.build_model(cfg)
        load_eval_weights(cfg, model)
        results = DMFTrainer.test(cfg, model)
    else:
        if not getattr(META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE), "trainable", True):
            raise RuntimeError(f"MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE!r} has nothing to train; "
                               "run tools/train_net.py with --eval-only")
        trainer = DMFTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        results = trainer.train()
    if comm.is_main_process():  # the other processes' evaluators return {}: one writer, no race
        save_results(results, cfg.OUTPUT_DIR, "results.json")
    return results
