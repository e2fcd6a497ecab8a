"""Training speed of MMET per task against DMF, and the cost of MMET's data-path masking, in one process.

MMET (``META_ARCHITECTURE: MMET``) trains on visual, textual and visual-textual batches (one task per
P x K batch, :class:`~fastreid_dmf.data.samplers.TaskIdentitySampler`) with Masked Multimodal Modeling
drawn in the dataset (:class:`~fastreid_dmf.data.mmm.MaskedMultimodalModeling`); DMF
(``META_ARCHITECTURE: DMF``) trains on image and text batches with a frozen text encoder whose token
features are cached. :func:`run_benchmark` builds both models from their configs (the demo configs by
default), draws one P x K set of training items (P = ``SOLVER.IMS_PER_BATCH / DATALOADER.NUM_INSTANCE``
identities, K = ``NUM_INSTANCE`` items each, as the samplers draw them) and times, per round:

* ``mmet/<task>``: one MMET training iteration on a batch of that task, built by indexing the training set
  with :func:`~fastreid_dmf.multimodal_batch.encode_index` (read count = the round, so every round has
  fresh masks) and fast-reid's ``fast_batch_collator``;
* ``dmf/image``, ``dmf/text``, ``dmf/mixed``: one DMF iteration on an image batch, a text batch and a
  50/50 batch (every other sample a text) of the same items; the text features are cached before any
  timing (as after the first epoch of training; the report counts cache misses while timing: 0);
* ``data/<task>/read``: reading + transforming the task's batch without masks (``MultimodalReIDDataset``
  without MMM), and ``data/<task>/masks``: drawing its MMM masks (patch mask, text tokenisation and
  masking) for every sample exactly as the dataset does (``MaskedMultimodalModeling.sample_masks``).

A training iteration is fast-reid's ``SimpleTrainer.run_step`` without the data loading: forward, sum of
the losses, ``zero_grad``, backward, optimizer step (fast-reid's optimizer via
``DMFTrainer.build_optimizer``), in float32 (``SOLVER.AMP`` is not applied), inside fast-reid's
``EventStorage``. Rounds are interleaved: every round runs every measurement once, starting one
measurement later than the round before, so load changes on a shared machine hit all measurements alike.
``warmup`` untimed rounds come first. Each measurement is summarised by its median and interquartile
range over the rounds; the report adds every iteration's median as a multiple of DMF's image iteration
and the masking time as a fraction of the same task's MMET iteration (target: at most
:data:`MASKING_TARGET`).

Outputs, in a folder: :data:`REPORT_JSON` (everything, with the per-round samples) and :data:`REPORT_MD`
(two tables); neither is ever overwritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from ...data.build import datasets_root_set
from .json_report import check_new_report_files, write_new_report_files
from .timing import load_checked_config, run_environment, summarize, sync_device

__all__ = ["REPORT_JSON", "REPORT_MD", "MASKING_TARGET", "TASKS", "DMF_BATCHES", "report_paths",
           "check_new_report", "select_pk_items", "summarize", "markdown_report", "run_benchmark"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
#: Default configs (the demo's MMET and DMF pre-training: same ViT width and batch).
DEFAULT_MMET_CONFIG = os.path.join(REPO, "configs", "demo", "mmet_pretrain.yml")
DEFAULT_DMF_CONFIG = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")
#: File names of the report in the output folder.
REPORT_JSON = "mmet_speed.json"
REPORT_MD = "mmet_speed.md"
#: The masking time a task's batch may take, as a fraction of that task's MMET iteration.
MASKING_TARGET = 0.10
#: MMET tasks timed, by their names in ``fastreid_dmf.multimodal_batch.MODALITY_NAMES``.
TASKS = ("visual", "textual", "visual-textual")
#: DMF batches timed.
DMF_BATCHES = ("image", "text", "mixed")
_BASELINE = "dmf/image"


def report_paths(out: str) -> tuple[str, str]:
    """``(json, markdown)`` report paths in the folder ``out``."""
    return os.path.join(out, REPORT_JSON), os.path.join(out, REPORT_MD)


def check_new_report(out: str) -> None:
    """Refuse an output folder that already holds a report (checked before anything is measured).

    Raises:
        FileExistsError: ``out`` holds :data:`REPORT_JSON` or :data:`REPORT_MD` (names it).
        NotADirectoryError: ``out`` exists and is not a folder.
    """
    check_new_report_files(out, (REPORT_JSON, REPORT_MD))


def select_pk_items(items: Sequence[tuple], batch_size: int, num_instances: int, seed: int = 0) -> list[int]:
    """Item indices of one P x K batch, drawn as the identity samplers draw one.

    P = ``batch_size / num_instances`` identities in a random order of the sorted identities, K =
    ``num_instances`` items of each (with replacement only when an identity has fewer than K), grouped
    by identity.

    Raises:
        ValueError: ``batch_size`` not a positive multiple of ``num_instances``, or fewer identities than P.
    """
    if num_instances < 1 or batch_size < 1 or batch_size % num_instances:
        raise ValueError(f"batch size {batch_size} must be a positive multiple of DATALOADER.NUM_INSTANCE="
                         f"{num_instances}")
    by_pid: dict = {}
    for index, item in enumerate(items):
        by_pid.setdefault(item[1], []).append(index)
    pids = sorted(by_pid)
    num_pids = batch_size // num_instances
    if len(pids) < num_pids:
        raise ValueError(f"{len(pids)} identities cannot fill a batch of {num_pids} identities x {num_instances}")
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for position in rng.permutation(len(pids))[:num_pids]:
        indices = by_pid[pids[position]]
        chosen.extend(int(i) for i in rng.choice(indices, size=num_instances, replace=len(indices) < num_instances))
    return chosen


# ----------------------------------------------------------------------------------------------- setup
class _Model:
    """A model in training mode with fast-reid's optimizer, its config and its training items."""

    def __init__(self, cfg, items: list[tuple], num_classes: int) -> None:
        import torch

        from ...engine.trainer import DMFTrainer

        cfg.MODEL.HEADS.NUM_CLASSES = num_classes
        torch.manual_seed(cfg.SEED if cfg.SEED >= 0 else 0)
        self.cfg = cfg
        self.items = items
        self.model = DMFTrainer.build_model(cfg)
        self.model.train()
        self.optimizer, self.param_wrapper = DMFTrainer.build_optimizer(cfg, self.model)
        self.device = torch.device(cfg.MODEL.DEVICE)

    def info(self) -> dict[str, object]:
        dmf = self.cfg.MODEL.DMF
        params = list(self.model.parameters())
        return {"meta_architecture": self.cfg.MODEL.META_ARCHITECTURE, "embed_dim": dmf.EMBED_DIM,
                "depth": dmf.DEPTH, "num_heads": dmf.NUM_HEADS, "input_size": list(self.cfg.INPUT.SIZE_TRAIN),
                "patch_size": dmf.PATCH_SIZE, "text_encoder": dmf.TEXT_ENCODER.NAME,
                "parameters": sum(p.numel() for p in params),
                "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
                "optimizer": self.cfg.SOLVER.OPT, "num_classes": self.cfg.MODEL.HEADS.NUM_CLASSES,
                "amp_in_config": bool(self.cfg.SOLVER.AMP.ENABLED)}

    def step(self, batch: dict) -> float:
        """Seconds of one training iteration on ``batch`` (fast-reid's ``SimpleTrainer.run_step``, no data)."""
        from fastreid.utils.params import ContiguousParams

        sync_device(self.device)
        start = time.perf_counter()
        loss_dict = self.model(batch)
        losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        losses.backward()
        self.optimizer.step()
        if isinstance(self.param_wrapper, ContiguousParams):
            self.param_wrapper.assert_buffer_is_valid()
        sync_device(self.device)
        return time.perf_counter() - start


def _build_mmet(cfg):
    """``(model, plain set, masked set)``: MMET and its training set without and with MMM."""
    from fastreid.data.transforms import build_transforms

    from ...data.build import build_mmm, load_train_items
    from ...data.multimodal_dataset import MultimodalReIDDataset

    items = load_train_items(cfg)
    transform = build_transforms(cfg, is_train=True)
    kwargs = dict(epoch_length=len(items), skip_unreadable=cfg.DATASETS.SKIP_UNREADABLE)
    plain = MultimodalReIDDataset(items, transform, cfg.INPUT.SIZE_TRAIN, **kwargs)
    masked = MultimodalReIDDataset(items, transform, cfg.INPUT.SIZE_TRAIN, mmm=build_mmm(cfg), **kwargs)
    return _Model(cfg, items, plain.num_classes), plain, masked


def _build_dmf(cfg):
    """``(model, training set)`` of DMF (the set as its mixed-modality sampler reads it)."""
    from fastreid.data.transforms import build_transforms

    from ...data.build import load_train_items
    from ...data.multimodal_dataset import MultimodalReIDDataset

    items = load_train_items(cfg)
    train_set = MultimodalReIDDataset(items, build_transforms(cfg, is_train=True), cfg.INPUT.SIZE_TRAIN,
                                      text_ratio=cfg.DATALOADER.TEXT_RATIO,
                                      skip_unreadable=cfg.DATASETS.SKIP_UNREADABLE)
    return _Model(cfg, items, train_set.num_classes), train_set


# ----------------------------------------------------------------------------------------------- measuring
class _MMETTask:
    """One MMET task: each call reads its batch (timed), draws its masks (timed) and trains on it (timed)."""

    def __init__(self, name: str, modality: int, mmet: _Model, plain, masked, items: list[int]) -> None:
        self.name, self.modality, self.mmet = name, modality, mmet
        self.plain, self.masked, self.items = plain, masked, items

    def __call__(self, read_count: int) -> dict[str, float]:
        from fastreid.data.build import fast_batch_collator

        from ...multimodal_batch import encode_index

        num = len(self.plain.img_items)
        start = time.perf_counter()
        samples = [self.plain[encode_index(i, self.modality, num, read_count)] for i in self.items]
        read = time.perf_counter() - start
        first = [encode_index(i, self.modality, num) for i in self.items]
        start = time.perf_counter()
        for sample, index in zip(samples, first):
            # Exactly what MultimodalReIDDataset.__getitem__ adds with MMM on.
            sample.update(self.masked.mmm.sample_masks(self.modality, sample["texts"], index, read_count))
        masks = time.perf_counter() - start
        step = self.mmet.step(fast_batch_collator(samples))
        return {f"data/{self.name}/read": read, f"data/{self.name}/masks": masks, f"mmet/{self.name}": step}


class _DMFBatch:
    """One fixed DMF batch; each call trains on it (timed)."""

    def __init__(self, name: str, dmf: _Model, batch: dict) -> None:
        self.name, self.dmf, self.batch = name, dmf, batch

    def __call__(self, read_count: int) -> dict[str, float]:
        return {f"dmf/{self.name}": self.dmf.step(self.batch)}


def _dmf_batches(dmf: _Model, train_set, items: list[int]) -> dict[str, dict]:
    """DMF's image, text and 50/50 batches of ``items`` (every other sample the description)."""
    from fastreid.data.build import fast_batch_collator

    from ...multimodal_batch import IMAGE, TEXT, encode_index

    num = len(train_set.img_items)
    layouts = {"image": [IMAGE] * len(items), "text": [TEXT] * len(items),
               "mixed": [TEXT if n % 2 else IMAGE for n in range(len(items))]}
    return {name: fast_batch_collator([train_set[encode_index(i, m, num)] for i, m in zip(items, modalities)])
            for name, modalities in layouts.items()}


def run_benchmark(out: str, mmet_config: str = DEFAULT_MMET_CONFIG, dmf_config: str = DEFAULT_DMF_CONFIG,
                  iters: int = 20, warmup: int = 2, opts: Sequence[str] = (), datasets_root: str | None = None,
                  progress: Callable[[str], None] | None = None) -> dict:
    """Measure (see the module docstring) and write the report into ``out``.

    Args:
        out: output folder (created if missing); must not hold a report yet.
        mmet_config, dmf_config: the MMET and DMF training configs.
        iters: timed rounds (every measurement once per round).
        warmup: untimed rounds before.
        opts: ``KEY VALUE`` overrides applied to both configs (after the file).
        datasets_root: fast-reid's dataset root for the run; None = ``$FASTREID_DATASETS`` as fast-reid read it.
        progress: called with one line per round (None: silent).

    Returns:
        The report (as written to :data:`REPORT_JSON`).

    Raises:
        ValueError: ``iters`` < 1 or ``warmup`` < 0; a config that is not MMET / DMF, or a bad config value.
        FileExistsError, NotADirectoryError: see :func:`check_new_report` (checked before measuring).
    """
    import torch
    from fastreid.utils.events import EventStorage

    from ...multimodal_batch import MODALITY_NAMES

    if iters < 1 or warmup < 0:
        raise ValueError(f"need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")
    check_new_report(out)
    began = time.perf_counter()
    env_start = run_environment("")
    mmet_cfg = load_checked_config(mmet_config, opts)
    # In-memory text cache only (what training hits once the features are computed); nothing written to disk.
    dmf_cfg = load_checked_config(dmf_config, opts, ("MODEL.DMF.TEXT_ENCODER.CACHE_DIR", "none"))
    for cfg, arch, path in ((mmet_cfg, "MMET", mmet_config), (dmf_cfg, "DMF", dmf_config)):
        if cfg.MODEL.META_ARCHITECTURE != arch:
            raise ValueError(f"{path!r}: MODEL.META_ARCHITECTURE is {cfg.MODEL.META_ARCHITECTURE!r}, expected "
                             f"{arch!r}")
    modality_of = {name: value for value, name in MODALITY_NAMES.items()}
    with datasets_root_set(datasets_root), EventStorage(0):
        mmet, plain, masked = _build_mmet(mmet_cfg)
        dmf, dmf_set = _build_dmf(dmf_cfg)
        seed = mmet_cfg.SEED if mmet_cfg.SEED >= 0 else 0
        mmet_items = select_pk_items(mmet.items, mmet_cfg.SOLVER.IMS_PER_BATCH, mmet_cfg.DATALOADER.NUM_INSTANCE,
                                     seed)
        dmf_items = select_pk_items(dmf.items, dmf_cfg.SOLVER.IMS_PER_BATCH, dmf_cfg.DATALOADER.NUM_INSTANCE, seed)
        dmf_batches = _dmf_batches(dmf, dmf_set, dmf_items)
        encoder = dmf.model.backbone.text_encoder
        if encoder is None:
            raise ValueError(f"{dmf_config!r}: DMF without a text encoder (MODEL.DMF.TEXT_ENCODER.NAME) has no text "
                             "batches to time")
        with torch.no_grad():  # cache the text features first, as after the first epoch of training
            encoder(dmf_batches["text"]["texts"], device=dmf.device)
        units: list[Callable[[int], dict[str, float]]] = [
            _MMETTask(name, modality_of[name], mmet, plain, masked, mmet_items) for name in TASKS]
        units += [_DMFBatch(name, dmf, dmf_batches[name]) for name in DMF_BATCHES]
        samples: dict[str, list[float]] = {}
        misses_before = None
        for round_index in range(warmup + iters):
            if round_index == warmup:
                misses_before = encoder.cache_stats.misses
            shift = round_index % len(units)
            times: dict[str, float] = {}
            for unit in units[shift:] + units[:shift]:
                times.update(unit(round_index))
            if round_index >= warmup:
                for key, value in times.items():
                    samples.setdefault(key, []).append(value)
            if progress is not None:
                label = "warm-up" if round_index < warmup else "round"
                number = round_index + 1 if round_index < warmup else round_index - warmup + 1
                total = warmup if round_index < warmup else iters
                progress(f"{label} {number}/{total}: " + ", ".join(
                    f"{k} {1000 * v:.0f} ms" for k, v in times.items() if not k.startswith("data/")))
        cache_misses = encoder.cache_stats.misses - misses_before
    measurements = {key: summarize(samples[key]) for key in _ordered_keys()}
    baseline = measurements[_BASELINE]["median_s"]
    ratios = {key: measurements[key]["median_s"] / baseline for key in _iteration_keys()}
    masking = {}
    for task in TASKS:
        step = measurements[f"mmet/{task}"]["median_s"]
        masks = measurements[f"data/{task}/masks"]["median_s"]
        read = measurements[f"data/{task}/read"]["median_s"]
        masking[task] = {"masks_median_s": masks, "read_median_s": read, "iteration_median_s": step,
                         "masks_fraction": masks / step, "read_fraction": read / step,
                         "target_fraction": MASKING_TARGET, "within_target": masks / step <= MASKING_TARGET}
    report = {
        "tool": "tools/benchmark_mmet_speed.py",
        "configs": {"mmet": os.path.abspath(mmet_config), "dmf": os.path.abspath(dmf_config)},
        "opts": list(opts),
        "iters": iters, "warmup": warmup,
        "statistic": "median and interquartile range (q3 - q1) over interleaved rounds, seconds",
        "environment": {**run_environment(str(mmet.device)), "load_average_at_start": env_start["load_average"]},
        "batch": {"mmet": _batch_info(mmet_cfg, mmet_items), "dmf": _batch_info(dmf_cfg, dmf_items)},
        "models": {"mmet": mmet.info(), "dmf": dmf.info()},
        "dmf_text_cache": {"cached_descriptions": encoder.cache_size, "misses_while_timed": cache_misses},
        "measurements": measurements,
        "ratio_to_dmf_image": ratios,
        "masking": masking,
        "seconds": time.perf_counter() - began,
    }
    _write_report(out, report)
    return report


def _batch_info(cfg, items: list[int]) -> dict[str, int]:
    return {"size": len(items), "identities": cfg.SOLVER.IMS_PER_BATCH // cfg.DATALOADER.NUM_INSTANCE,
            "instances": cfg.DATALOADER.NUM_INSTANCE}


def _iteration_keys() -> list[str]:
    return [f"mmet/{t}" for t in TASKS] + [f"dmf/{b}" for b in DMF_BATCHES]


def _ordered_keys() -> list[str]:
    return _iteration_keys() + [f"data/{t}/{part}" for t in TASKS for part in ("read", "masks")]


# ----------------------------------------------------------------------------------------------- report
_ITERATION_LABELS = {"mmet/visual": ("MMET", "visual"), "mmet/textual": ("MMET", "textual"),
                     "mmet/visual-textual": ("MMET", "visual-textual"), "dmf/image": ("DMF", "image"),
                     "dmf/text": ("DMF", "text (cached features)"), "dmf/mixed": ("DMF", "mixed 50/50")}


def _ms(value: float) -> str:
    return f"{1000 * value:.1f}"


def markdown_report(report: dict) -> str:
    """The report's two tables (iterations; data path and masking share) as markdown."""
    m = report["measurements"]
    size = report["batch"]["mmet"]["size"]
    env = report["environment"]
    lines = [f"Training speed, MMET vs DMF: {report['iters']} interleaved rounds after {report['warmup']} warm-up, "
             f"median (IQR = q3 - q1); {env['device']}, {env['torch_threads']} torch threads, "
             f"batch {size} (MMET) / {report['batch']['dmf']['size']} (DMF).", "",
             "| model | batch | iteration, ms | IQR, ms | x DMF image |", "|---|---|---:|---:|---:|"]
    for key in _iteration_keys():
        model, batch = _ITERATION_LABELS[key]
        lines.append(f"| {model} | {batch} | {_ms(m[key]['median_s'])} | {_ms(m[key]['iqr_s'])} | "
                     f"{report['ratio_to_dmf_image'][key]:.2f} |")
    target = f"{100 * MASKING_TARGET:.0f}%"
    lines += ["", f"MMET data path per batch of {size} (one process): read + transform without masks, and drawing "
              f"the MMM masks (patch mask, text tokenisation + masking); target: masks <= {target} of the task's "
              "iteration.", "",
              "| task | read + transform, ms (IQR) | masks, ms (IQR) | masks / iteration | read / iteration | "
              f"masks <= {target} |", "|---|---:|---:|---:|---:|:---:|"]
    for task in TASKS:
        read, masks, share = m[f"data/{task}/read"], m[f"data/{task}/masks"], report["masking"][task]
        lines.append(f"| {task} | {_ms(read['median_s'])} ({_ms(read['iqr_s'])}) | {_ms(masks['median_s'])} "
                     f"({_ms(masks['iqr_s'])}) | {100 * share['masks_fraction']:.1f}% | "
                     f"{100 * share['read_fraction']:.1f}% | {'yes' if share['within_target'] else 'no'} |")
    return "\n".join(lines) + "\n"


def _write_report(out: str, report: dict) -> None:
    """Write :data:`REPORT_JSON` and :data:`REPORT_MD` into ``out``; never over an existing file."""
    write_new_report_files(out, {REPORT_JSON: report, REPORT_MD: markdown_report(report)})
