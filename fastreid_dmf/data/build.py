"""Train/test loader construction for DMF, on top of fast-reid's builders.

fast-reid picks its train sampler with a fixed if/elif
(``fastreid/data/build.py``, ``_train_loader_from_config``), so the plugin
builds the dataset and sampler itself and hands both to fast-reid's own
``build_reid_train_loader``; test loaders are fast-reid's. Each dataset reads
its own constructor arguments from the config
(:func:`~fastreid_dmf.data.datasets.from_config.dataset_kwargs`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator

from fastreid.data import build as fastreid_build
from fastreid.data.build import build_reid_test_loader, build_reid_train_loader
from fastreid.data.common import CommDataset
from fastreid.data.datasets import DATASET_REGISTRY
from fastreid.data.transforms import build_transforms
from fastreid.utils import comm
from PIL import Image, ImageFile

from ..compat import attribute_replaced
from .datasets.from_config import dataset_kwargs
from .datasets.holdout import holdout_sources, split_holdout
from .mmm import MaskedMultimodalModeling, patch_grid
from .multimodal_dataset import IMAGE_READ_ERRORS, MultimodalReIDDataset
from .samplers import MultimodalIdentitySampler, TaskIdentitySampler

__all__ = ["datasets_root", "datasets_root_set", "dataset_kwargs", "holdout_sources", "load_train_items",
           "image_read_error",
           "truncated_images_rejected", "verify_images", "lower_worker_priority", "worker_niceness",
           "deprioritize_workers",
           "build_mmm", "build_dmf_train_loader", "build_dmf_test_loader", "build_gallery_loader"]

logger = logging.getLogger(__name__)


def datasets_root() -> str:
    """fast-reid's dataset root: ``$FASTREID_DATASETS`` as read when fastreid was imported (default "datasets")."""
    return fastreid_build._root


@contextlib.contextmanager
def datasets_root_set(root: str | None) -> Iterator[None]:
    """Within the block fast-reid's dataset root (:func:`datasets_root`) is ``root`` (None: unchanged); restored
    on exit. fast-reid reads ``$FASTREID_DATASETS`` once, at import, so setting the variable later does nothing."""
    if root is None:
        yield
        return
    saved = fastreid_build._root
    fastreid_build._root = str(root)
    try:
        yield
    finally:
        fastreid_build._root = saved


def load_train_items(cfg) -> list[tuple]:
    """Train items of every dataset in ``cfg.DATASETS.NAMES`` (fast-reid's tuples, FineGPR's carry a description).

    ``DATASETS.HOLDOUT.NUM_IDS`` identities of each dataset in :func:`holdout_sources` are left
    out (they are the ``HeldOutValidation`` test set, see :mod:`fastreid_dmf.data.datasets.holdout`).

    Raises:
        KeyError: a dataset name is not registered (fast-reid's registry message).
        FileNotFoundError, ValueError: from the dataset classes (missing folders, bad files).
    """
    items: list[tuple] = []
    for name in cfg.DATASETS.NAMES:
        data = DATASET_REGISTRY.get(name)(root=datasets_root(), combineall=cfg.DATASETS.COMBINEALL,
                                          **dataset_kwargs(cfg, name))
        if comm.is_main_process():
            data.show_train()
        num_ids = cfg.DATASETS.HOLDOUT.NUM_IDS if name in holdout_sources(cfg) else 0
        train, held_out = split_holdout(data.train, num_ids, cfg.DATASETS.HOLDOUT.SEED)
        if held_out:
            logger.info("%s: %d identities (%d images) held out for validation (DATASETS.HOLDOUT)", name,
                        cfg.DATASETS.HOLDOUT.NUM_IDS, len(held_out))
        items.extend(train)
    return items


@contextlib.contextmanager
def truncated_images_rejected() -> Iterator[None]:
    """Context in which PIL raises on truncated image files (``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` False).

    Neither fast-reid nor this plugin sets the flag, but user code may, and
    with it True PIL pads a truncated image with grey instead of raising, so
    no check could find it. The previous value is restored on exit; a True
    value is logged, since training then reads truncated files without error.
    Not thread-safe (the flag is global to PIL): use it before loaders start.
    """
    saved = ImageFile.LOAD_TRUNCATED_IMAGES
    if saved:
        logger.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True (set outside fastreid-dmf): image verification "
                       "turns it off while it runs, but training will read truncated images without error")
    with attribute_replaced(ImageFile, "LOAD_TRUNCATED_IMAGES", False):
        yield


def image_read_error(path: str) -> str | None:
    """Why the image at ``path`` cannot be opened and fully decoded, or None if it can.

    Decodes every pixel (``PIL.Image.load``), so a truncated file with a
    valid header or corrupt compressed data is caught, not only a bad header
    (``PIL.Image.verify`` reads headers and, for PNG, checksums only). Honours
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``; run it inside
    :func:`truncated_images_rejected` to catch truncation in any case.

    Returns:
        None, or ``"<error type>: <message>"`` (missing file, unknown format,
        truncated or undecodable data).
    """
    try:
        with Image.open(path) as image:
            image.load()
    except IMAGE_READ_ERRORS as err:
        return f"{type(err).__name__}: {err}"
    return None


def verify_images(items: list[tuple], skip_unreadable: bool) -> list[tuple]:
    """Open and fully decode every image (:func:`image_read_error`) before training starts.

    Truncated files are reported whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
    is (see :func:`truncated_images_rejected`). Decoding costs more than a
    header check: see ``tools/benchmark_image_verification.py``.

    Args:
        items: train items, path first.
        skip_unreadable: drop unreadable images (logged with a count and the
            first names) instead of raising.

    Returns:
        The readable items, in order.

    Raises:
        ValueError: unreadable images and ``skip_unreadable`` is False; the
            message lists them (up to 10) and names DATASETS.SKIP_UNREADABLE.
    """
    good, bad = [], []
    with truncated_images_rejected():
        for item in items:
            error = image_read_error(item[0])
            if error is None:
                good.append(item)
            else:
                bad.append(f"{item[0]} ({error})")
    if bad and not skip_unreadable:
        raise ValueError(f"{len(bad)} unreadable training image(s), e.g. " + "; ".join(bad[:10]) +
                         ". Fix or remove them, or set DATASETS.SKIP_UNREADABLE True to skip them")
    if bad:
        logger.warning("Skipped %d unreadable training image(s): %s", len(bad), "; ".join(bad[:10]))
    return good


def build_mmm(cfg) -> MaskedMultimodalModeling:
    """MMET's data-path masking from ``MODEL.MMET.MASK``, the text encoder's tokenizer and ``SEED``.

    A negative ``SEED`` (fast-reid's random seeding) uses fast-reid's seed shared by all processes.

    Raises:
        FileNotFoundError, OSError: the tokenizer cannot be read (names the key).
        ValueError: a ratio outside (0, 1).
    """
    from ..modeling.mmet.text_encoder import load_mmet_tokenizer  # the text encoder's folder rules

    mask = cfg.MODEL.MMET.MASK
    grid = patch_grid(cfg.INPUT.SIZE_TRAIN, cfg.MODEL.DMF.PATCH_SIZE, tuple(cfg.MODEL.BACKBONE.STRIDE_SIZE))
    seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
    return MaskedMultimodalModeling(load_mmet_tokenizer(cfg), cfg.MODEL.DMF.TEXT_ENCODER.MAX_TOKENS, grid,
                                    image_ratio=mask.IMAGE_RATIO, min_block=mask.MIN_BLOCK,
                                    text_ratio=mask.TEXT_RATIO, seed=seed)


def lower_worker_priority(niceness: int, then: Callable[[int], None] | None, worker_id: int) -> None:
    """``worker_init_fn`` of a loader worker process: raise its niceness by ``niceness``, then call ``then``.

    A scheduling hint only: nothing the worker computes changes (its random generators are seeded by
    torch before this runs). Where the niceness cannot be changed (no ``os.nice``, or the OS refuses)
    the worker runs at its inherited priority.

    Args:
        niceness: increment, >= 0 (0: unchanged).
        then: the loader's previous ``worker_init_fn`` (None: none).
        worker_id: torch's worker index, passed on to ``then``.
    """
    if niceness > 0:
        with contextlib.suppress(AttributeError, OSError):
            os.nice(niceness)
    if then is not None:
        then(worker_id)


def worker_niceness(cfg) -> int:
    """``DATALOADER.WORKER_NICENESS`` when training on a CPU (``MODEL.DEVICE`` cpu), else 0.

    On a GPU the computation does not run on the CPU cores the workers use, while other processes on the
    node (other ranks' main threads waiting on their GPU) may: nicer workers could then starve the GPU.
    """
    return int(cfg.DATALOADER.WORKER_NICENESS) if str(cfg.MODEL.DEVICE).startswith("cpu") else 0


def deprioritize_workers(loader, niceness: int):
    """Run ``loader``'s worker processes ``niceness`` steps nicer than the training process (before iterating).

    On a machine whose cores the training computation fills (a CPU run), worker processes at the same
    priority preempt the compute threads in the middle of their parallel kernels, which then wait for
    each other: the iteration slows down by far more than the CPU time the workers use. Nicer workers
    read the next batches in the time the compute leaves free and are not starved: when the queue runs
    dry the training process blocks on it and its cores go to the workers. ``tools/benchmark_loop_speed.py``
    measures the effect. The batches are unchanged (:func:`lower_worker_priority`).

    Args:
        loader: a ``torch.utils.data.DataLoader`` not iterated yet (``worker_init_fn`` is read when its
            iterator starts the workers).
        niceness: ``DATALOADER.WORKER_NICENESS``; 0, or a loader without worker processes: unchanged.

    Returns:
        ``loader``.
    """
    if niceness > 0 and loader.num_workers > 0:
        loader.worker_init_fn = functools.partial(lower_worker_priority, int(niceness), loader.worker_init_fn)
    return loader


def build_dmf_train_loader(cfg):
    """fast-reid train loader over :class:`MultimodalReIDDataset`.

    ``DATALOADER.SAMPLER_TRAIN``:

    * ``MultimodalIdentitySampler``: DMF's mixed-modality PK sampler (``DATALOADER.TEXT_RATIO``);
    * ``TaskIdentitySampler``: MMET's task sampler (one task per P x K batch, ``DATALOADER.TASK_WEIGHTS``),
      with Masked Multimodal Modeling drawn in the dataset (:func:`build_mmm`); an epoch is N instances
      (each training image once, in one of the three tasks, in expectation);
    * any other name: fast-reid's own sampler choice.

    On a CPU (``MODEL.DEVICE`` cpu) the worker processes run ``DATALOADER.WORKER_NICENESS`` steps nicer than
    training (:func:`deprioritize_workers`, :func:`worker_niceness`).

    Returns:
        fast-reid's ``DataLoaderX`` yielding batch dicts (see :class:`MultimodalReIDDataset`).
    """
    items = load_train_items(cfg)
    if cfg.DATASETS.VERIFY_IMAGES:
        items = verify_images(items, cfg.DATASETS.SKIP_UNREADABLE)
    sampler_name = cfg.DATALOADER.SAMPLER_TRAIN
    multimodal = sampler_name == "MultimodalIdentitySampler"
    text_ratio = cfg.DATALOADER.TEXT_RATIO if multimodal else 0.0
    mini_batch_size = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
    seed = cfg.SEED if cfg.SEED >= 0 else None
    transform = build_transforms(cfg, is_train=True)
    sampler = None
    if sampler_name == "TaskIdentitySampler":
        sampler = TaskIdentitySampler(items, mini_batch_size, cfg.DATALOADER.NUM_INSTANCE,
                                      tuple(cfg.DATALOADER.TASK_WEIGHTS), seed=seed)
        train_set = MultimodalReIDDataset(items, transform, cfg.INPUT.SIZE_TRAIN, mmm=build_mmm(cfg),
                                          epoch_length=len(items), skip_unreadable=cfg.DATASETS.SKIP_UNREADABLE)
        logger.info("Using training sampler TaskIdentitySampler (visual, textual, visual-textual probabilities "
                    "%s) with Masked Multimodal Modeling: %d instances per epoch",
                    ", ".join(f"{p:.2f}" for p in sampler.task_probabilities), len(train_set))
        return deprioritize_workers(build_reid_train_loader(cfg, train_set=train_set, sampler=sampler),
                                    worker_niceness(cfg))
    train_set = MultimodalReIDDataset(items, transform, cfg.INPUT.SIZE_TRAIN,
                                      text_ratio=text_ratio, skip_unreadable=cfg.DATASETS.SKIP_UNREADABLE)
    if multimodal:
        sampler = MultimodalIdentitySampler(train_set.img_items, mini_batch_size, cfg.DATALOADER.NUM_INSTANCE,
                                            text_ratio, seed=seed)
        logger.info("Using training sampler MultimodalIdentitySampler (TEXT_RATIO=%.2f): %d instances per epoch "
                    "over %d image/description pairs", text_ratio, len(train_set), len(items))
    return deprioritize_workers(build_reid_train_loader(cfg, train_set=train_set, sampler=sampler),
                                worker_niceness(cfg))


def build_dmf_test_loader(cfg, dataset_name: str):
    """fast-reid's test loader for ``dataset_name`` with its DMF constructor arguments.

    Same as fast-reid's ``build_reid_test_loader(cfg, dataset_name)`` except that
    the worker count is ``DATALOADER.NUM_WORKERS`` (upstream hard-codes 4).

    Returns:
        ``(data_loader, num_query)``: query items first, then gallery items.
    """
    data = DATASET_REGISTRY.get(dataset_name)(root=datasets_root(), **dataset_kwargs(cfg, dataset_name))
    if comm.is_main_process():
        data.show_test()
    test_set = CommDataset(data.query + data.gallery, build_transforms(cfg, is_train=False), relabel=False)
    return build_reid_test_loader(test_set=test_set, test_batch_size=cfg.TEST.IMS_PER_BATCH,
                                  num_query=len(data.query), num_workers=cfg.DATALOADER.NUM_WORKERS)


def build_gallery_loader(cfg, gallery: list[tuple]):
    """fast-reid's test loader over gallery items only (text-to-image retrieval: the queries are texts).

    Args:
        gallery: fast-reid tuples ``(img_path, pid, camid)`` with integer pids and camids.

    Returns:
        The data loader (test transform, ``TEST.IMS_PER_BATCH``, ``DATALOADER.NUM_WORKERS``).
    """
    test_set = CommDataset(gallery, build_transforms(cfg, is_train=False), relabel=False)
    loader, _ = build_reid_test_loader(test_set=test_set, test_batch_size=cfg.TEST.IMS_PER_BATCH, num_query=0,
                                       num_workers=cfg.DATALOADER.NUM_WORKERS)
    return loader
