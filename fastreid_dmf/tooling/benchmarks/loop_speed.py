"""Training-loop overhead of DMF, its backbone against fast-reid's and timm's ViT, and text-encoding speed.

In one process, on the demo DMF pre-training config by default (``configs/demo/dmf_pretrain.yml``),
:func:`run_benchmark` measures three things, interleaved round by round:

* ``loop/<batch>`` against ``bare/<batch>`` for an image-only batch (``DATALOADER.TEXT_RATIO`` 0) and a
  mixed one (``TEXT_RATIO`` :data:`MIXED_TEXT_RATIO`, the paper's and the demo's pre-training): a
  :class:`~fastreid_dmf.engine.trainer.DMFTrainer` is built per batch kind exactly as
  ``tools/train_net.py`` builds it (its train loader over the real training set with the config's
  ``DATALOADER.NUM_WORKERS``, fast-reid's optimizer, LR schedule and hooks), and one ``loop`` sample is
  the mean seconds of ``steps`` consecutive iterations of fast-reid's loop body (``TrainerBase.train``:
  ``before_step``, ``run_step`` = data loading + forward + backward + metrics + optimizer step,
  ``after_step``). One ``bare`` sample is the mean of ``steps`` forward + ``zero_grad`` + backward passes
  of the same model on one batch drawn from that loader before timing (no data loading, no optimizer,
  no hooks). The report gives ``loop / bare`` per batch kind (target: at most :data:`LOOP_TARGET`).
  Text features are cached for every training description before timing (as after the first epoch).
* ``backbone/<name>/train`` and ``backbone/<name>/infer`` for :data:`BACKBONES`: DMF's image path
  (:class:`~fastreid_dmf.modeling.dmf.backbone.DMFBackbone`), fast-reid's ``VisionTransformer`` of the
  same shape (``build_fastreid_vit_backbone`` from ``configs/demo/fastreid_vit_baseline.yml``) and timm's
  ``VisionTransformer`` with the DMF config's depth, width, heads, MLP ratio, patch and image size, on
  ``SOLVER.IMS_PER_BATCH`` random normalised images: train = forward + backward of the features' sum,
  inference = forward under ``torch.no_grad`` in eval mode. Throughput in images/s and the ratios
  DMF / fast-reid and DMF / timm (> 1: DMF is faster).
* ``text/cold`` and ``text/warm``: the frozen text encoder
  (:class:`~fastreid_dmf.modeling.text.TextTokenEncoder`) on ``SOLVER.IMS_PER_BATCH`` distinct training
  descriptions (a new slice each round) with an empty in-memory feature cache (every description runs
  through the tokenizer and the encoder), then again with those features cached. Descriptions/s.

Rounds are interleaved as in :mod:`.mmet_speed`: every round runs every measurement once, starting one
measurement later than the round before, after ``warmup`` untimed rounds; each measurement is summarised
by its median and interquartile range over the rounds (:func:`.timing.summarize`). A ``loop`` sample should
span more iterations than the loader prefetches (``NUM_WORKERS`` x 2 batches), so that it measures the
steady state in which the workers must keep up, not a queue filled while other measurements ran: the
default is 20 iterations and no pause. ``settle`` > 0 sleeps that long (untimed) after each ``loop``
measurement, letting the workers refill their queue first (an optimistic figure, kept for comparison).

Outputs, in a folder: :data:`REPORT_JSON` (everything, with the per-round samples) and :data:`REPORT_MD`
(three tables); neither is ever overwritten (:mod:`.json_report`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence

from ...data.build import datasets_root_set
from .json_report import check_new_report_files, write_new_report_files
from .timing import load_checked_config, run_environment, summarize, sync_device

__all__ = ["REPORT_JSON", "REPORT_MD", "LOOP_TARGET", "MIXED_TEXT_RATIO", "BATCHES", "BACKBONES",
           "DEFAULT_CONFIG", "DEFAULT_BASELINE_CONFIG", "report_paths", "check_new_report", "markdown_report",
           "run_benchmark"]

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
#: Default configs: the demo's DMF pre-training and fast-reid's own ViT baseline of the same shape.
DEFAULT_CONFIG = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")
DEFAULT_BASELINE_CONFIG = os.path.join(REPO, "configs", "demo", "fastreid_vit_baseline.yml")
#: File names of the report in the output folder.
REPORT_JSON = "loop_speed.json"
REPORT_MD = "loop_speed.md"
#: The training-loop iteration may take at most this multiple of the bare forward + backward.
LOOP_TARGET = 1.15
#: ``DATALOADER.TEXT_RATIO`` of the mixed batches (DMF Algorithm 1, the demo's pre-training).
MIXED_TEXT_RATIO = 0.5
#: Batch kinds of the loop measurement and their ``DATALOADER.TEXT_RATIO``.
BATCHES = {"image": 0.0, "mixed": MIXED_TEXT_RATIO}
#: Backbones compared (image path only).
BACKBONES = ("dmf", "fastreid", "timm")


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


# ----------------------------------------------------------------------------------------------- the loop
class _LoopCase:
    """One :class:`DMFTrainer` (one batch kind) with fast-reid's loop state, as ``TrainerBase.train`` sets it up.

    ``loop(steps)`` runs ``steps`` iterations of the loop body; ``bare(steps)`` runs ``steps`` forward +
    backward passes on :attr:`batch` (drawn from the trainer's loader at construction).
    """

    def __init__(self, name: str, cfg) -> None:
        import torch
        from fastreid.utils.env import seed_all_rng
        from fastreid.utils.events import EventStorage

        from ...engine.trainer import DMFTrainer

        self.name, self.cfg = name, cfg
        if cfg.SEED >= 0:
            seed_all_rng(cfg.SEED)
        self.trainer = trainer = DMFTrainer(cfg)
        trainer.resume_or_load(resume=False)
        self.model = trainer.model
        self.device = torch.device(cfg.MODEL.DEVICE)
        self.warm_cache_s = self._warm_text_cache()
        self.batch = next(trainer._trainer._data_loader_iter)
        # fast-reid's TrainerBase.train, up to the first iteration of the first epoch.
        trainer.iter = trainer.start_iter = trainer.start_epoch * trainer.iters_per_epoch
        trainer.storage = EventStorage(trainer.start_iter)
        with trainer.storage:
            trainer.before_train()
            trainer.epoch = trainer.start_epoch
            trainer.before_epoch()

    def _warm_text_cache(self) -> float | None:
        """Cache the features of every training description (as after the first epoch); seconds, None if no text."""
        import torch

        encoder = getattr(self.model.backbone, "text_encoder", None)
        if self.cfg.DATALOADER.TEXT_RATIO <= 0 or encoder is None:
            return None
        dataset = self.trainer._trainer.data_loader.dataset
        texts = sorted({dataset.description(i) for i in range(len(dataset.img_items))} - {""})
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, len(texts), encoder.encode_batch_size):
                encoder(texts[first:first + encoder.encode_batch_size], device=self.device)
        return time.perf_counter() - start

    def loop(self, steps: int) -> float:
        """Mean seconds of ``steps`` iterations of fast-reid's training loop body (``TrainerBase.train``)."""
        trainer = self.trainer
        with trainer.storage:
            sync_device(self.device)
            start = time.perf_counter()
            for _ in range(steps):
                trainer.before_step()
                trainer.run_step()
                trainer.after_step()
                trainer.iter += 1
            sync_device(self.device)
        return (time.perf_counter() - start) / steps

    def bare(self, steps: int) -> float:
        """Mean seconds of ``steps`` forward + ``zero_grad`` + backward passes on the prepared batch."""
        from fastreid.utils.events import EventStorage

        optimizer = self.trainer.optimizer
        with EventStorage(0):  # the losses log their accuracy; kept out of the trainer's storage
            sync_device(self.device)
            start = time.perf_counter()
            for _ in range(steps):
                losses = sum(self.model(self.batch).values())
                optimizer.zero_grad()
                losses.backward()
            sync_device(self.device)
        return (time.perf_counter() - start) / steps

    def loop_stats(self) -> dict[str, float]:
        """Medians (seconds) of fast-reid's per-iteration ``data_time`` and ``time`` (``IterationTimer``) so far."""
        import numpy as np

        out = {}
        for key in ("data_time", "time"):
            values = [v for v, _ in self.trainer.storage.history(key).values()] \
                if key in self.trainer.storage.histories() else []
            out[f"{key}_median_s"] = float(np.median(values)) if values else None
        return out

    def batch_info(self) -> dict[str, int]:
        """Size, text samples and text length (tokens, longest description) of the prepared batch."""
        import torch

        from ...multimodal_batch import TEXT

        modalities = torch.as_tensor(self.batch.get("modalities", torch.zeros(len(self.batch["targets"]))))
        texts = [t for t, m in zip(self.batch.get("texts", []), modalities.tolist()) if m == TEXT]
        info = {"size": int(len(self.batch["targets"])), "texts": len(texts)}
        encoder = getattr(self.model.backbone, "text_encoder", None)
        if texts and encoder is not None:
            info["text_tokens"] = int(encoder.tokenize(texts)["input_ids"].shape[1])
            info["max_tokens"] = int(encoder.max_tokens)
        return info

    def close(self) -> None:
        """Stop the loader's worker processes."""
        loader = self.trainer._trainer.data_loader
        if getattr(loader, "iter", None) is not None and hasattr(loader, "shutdown"):
            loader.shutdown()


# ----------------------------------------------------------------------------------------------- backbones
def _timm_vit(cfg):
    """timm's ``VisionTransformer`` with the DMF config's shape ([cls] token output, no classifier)."""
    from timm.models.vision_transformer import VisionTransformer

    dmf = cfg.MODEL.DMF
    return VisionTransformer(img_size=tuple(int(s) for s in cfg.INPUT.SIZE_TRAIN), patch_size=int(dmf.PATCH_SIZE),
                             embed_dim=int(dmf.EMBED_DIM), depth=int(dmf.DEPTH), num_heads=int(dmf.NUM_HEADS),
                             mlp_ratio=float(dmf.MLP_RATIO), qkv_bias=bool(dmf.QKV_BIAS), num_classes=0,
                             global_pool="token")


def _backbones(cfg, baseline_cfg) -> dict[str, object]:
    """DMF's backbone (no text encoder), fast-reid's ViT of the baseline config and timm's ViT, on the device."""
    import torch
    from fastreid.modeling.backbones import BACKBONE_REGISTRY

    image_cfg = cfg.clone()
    image_cfg.defrost()
    image_cfg.MODEL.DMF.TEXT_ENCODER.NAME = ""  # image path only
    image_cfg.MODEL.BACKBONE.PRETRAIN = False
    seed = cfg.SEED if cfg.SEED >= 0 else 0
    device = torch.device(cfg.MODEL.DEVICE)
    models = {}
    for name, build in (("dmf", lambda: BACKBONE_REGISTRY.get(image_cfg.MODEL.BACKBONE.NAME)(image_cfg)),
                        ("fastreid", lambda: BACKBONE_REGISTRY.get(baseline_cfg.MODEL.BACKBONE.NAME)(baseline_cfg)),
                        ("timm", lambda: _timm_vit(cfg))):
        torch.manual_seed(seed)
        models[name] = build().to(device)
    return models


class _Backbone:
    """One backbone: ``train(steps)`` / ``infer(steps)`` give mean seconds per batch of ``images``."""

    def __init__(self, model, images) -> None:
        self.model, self.images = model, images

    def train(self, steps: int) -> float:
        """Mean seconds of forward + backward of the features' sum (gradients set to None first)."""
        self.model.train()
        sync_device(self.images.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.model.zero_grad(set_to_none=True)
            self.model(self.images).float().sum().backward()
        sync_device(self.images.device)
        return (time.perf_counter() - start) / steps

    def infer(self, steps: int) -> float:
        """Mean seconds of an eval-mode forward under ``torch.no_grad``."""
        import torch

        self.model.eval()
        sync_device(self.images.device)
        start = time.perf_counter()
        with torch.no_grad():
            for _ in range(steps):
                self.model(self.images)
        sync_device(self.images.device)
        return (time.perf_counter() - start) / steps


# ----------------------------------------------------------------------------------------------- text
class _TextEncoding:
    """The frozen text encoder on a new slice of distinct descriptions per round, cache emptied first."""

    def __init__(self, encoder, texts: list[str], batch_size: int, device) -> None:
        if len(texts) < batch_size:
            raise ValueError(f"{len(texts)} distinct training descriptions cannot fill a text batch of {batch_size}")
        self.encoder, self.texts, self.batch_size, self.device = encoder, texts, batch_size, device
        self.round = 0

    def __call__(self) -> dict[str, float]:
        import torch

        from ...modeling.text.feature_cache import TextFeatureCache

        first = (self.round * self.batch_size) % (len(self.texts) - self.batch_size + 1)
        self.round += 1
        batch = self.texts[first:first + self.batch_size]
        self.encoder.feature_cache = TextFeatureCache()  # empty, in memory
        times = {}
        with torch.no_grad():
            for key in ("text/cold", "text/warm"):
                sync_device(self.device)
                start = time.perf_counter()
                self.encoder(batch, device=self.device)
                sync_device(self.device)
                times[key] = time.perf_counter() - start
        return times


# ----------------------------------------------------------------------------------------------- run
def _load(path: str, opts: Sequence[str], extra: Sequence[str] = ()):
    from ...compat import disable_amp_without_cuda

    return disable_amp_without_cuda(load_checked_config(path, opts, extra))


def _float_opt(value: float) -> str:
    return repr(float(value))


def _keys() -> list[str]:
    keys = [f"{kind}/{batch}" for batch in BATCHES for kind in ("loop", "bare")]
    keys += [f"backbone/{name}/{mode}" for mode in ("train", "infer") for name in BACKBONES]
    return keys + ["text/cold", "text/warm"]


def run_benchmark(out: str, config: str = DEFAULT_CONFIG, baseline_config: str = DEFAULT_BASELINE_CONFIG,
                  iters: int = 10, warmup: int = 1, steps: int = 20, settle: float = 0.0, opts: Sequence[str] = (),
                  datasets_root: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """Measure (see the module docstring) and write the report into ``out``.

    Args:
        out: output folder (created if missing); must not hold a report yet.
        config: the DMF training config (``META_ARCHITECTURE: DMF`` with a text encoder).
        baseline_config: a config whose ``MODEL.BACKBONE.NAME`` builds fast-reid's ViT of the same shape.
        iters: timed rounds (every measurement once per round).
        warmup: untimed rounds before.
        steps: iterations (or batches) averaged into one sample of a measurement.
        settle: seconds slept (untimed) after each ``loop`` measurement, >= 0.
        opts: ``KEY VALUE`` overrides applied to both configs (after the file).
        datasets_root: fast-reid's dataset root for the run; None = ``$FASTREID_DATASETS`` as fast-reid read it.
        progress: called with one line per round (None: silent).

    Returns:
        The report (as written to :data:`REPORT_JSON`): ``measurements`` (seconds: median, quartiles, IQR,
        samples per key of :func:`_keys`), ``loop_ratio`` (per batch kind: loop / bare medians, target,
        within target), ``backbones`` (images/s and ratios), ``text_encoding`` (descriptions/s), plus the
        configs, environment, models and batches.

    Raises:
        ValueError: ``iters`` < 1, ``warmup`` < 0, ``steps`` < 1 or ``settle`` < 0; a config that is not DMF or
            has no text encoder; too few distinct descriptions for a text batch; a bad config value.
        FileExistsError, NotADirectoryError: see :func:`check_new_report` (checked before measuring).
    """
    import torch

    if iters < 1 or warmup < 0 or steps < 1 or settle < 0:
        raise ValueError(f"need iters >= 1, warmup >= 0, steps >= 1 and settle >= 0, got iters={iters}, "
                         f"warmup={warmup}, steps={steps}, settle={settle}")
    check_new_report(out)
    began = time.perf_counter()
    env_start = run_environment("")
    base_cfg = _load(config, opts)
    if base_cfg.MODEL.META_ARCHITECTURE != "DMF":
        raise ValueError(f"{config!r}: MODEL.META_ARCHITECTURE is {base_cfg.MODEL.META_ARCHITECTURE!r}, expected 'DMF'")
    if not base_cfg.MODEL.DMF.TEXT_ENCODER.NAME:
        raise ValueError(f"{config!r}: DMF without a text encoder (MODEL.DMF.TEXT_ENCODER.NAME) has no mixed batches")
    baseline_cfg = _load(baseline_config, opts)
    cases: dict[str, _LoopCase] = {}
    with datasets_root_set(datasets_root), tempfile.TemporaryDirectory(prefix="loop_speed_") as scratch:
        try:
            for batch, ratio in BATCHES.items():
                run_dir = os.path.join(scratch, batch)  # fast-reid writes config.yaml and metrics there
                os.makedirs(run_dir)
                cfg = _load(config, opts, ("DATALOADER.TEXT_RATIO", _float_opt(ratio), "OUTPUT_DIR", run_dir,
                                           "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", "none"))
                cases[batch] = _LoopCase(batch, cfg)
            mixed = cases["mixed"]
            device = mixed.device
            backbones = _backbones(mixed.cfg, baseline_cfg)
            generator = torch.Generator().manual_seed(0)
            size = [int(s) for s in mixed.cfg.INPUT.SIZE_TRAIN]
            images = torch.randn(mixed.cfg.SOLVER.IMS_PER_BATCH, 3, *size, generator=generator).to(device)
            runners = {name: _Backbone(model, images) for name, model in backbones.items()}
            from ...modeling.text import build_text_encoder

            encoder = build_text_encoder(mixed.cfg)  # its own in-memory cache, emptied every round
            dataset = mixed.trainer._trainer.data_loader.dataset
            texts = sorted({dataset.description(i) for i in range(len(dataset.img_items))} - {""})
            text_unit = _TextEncoding(encoder, texts, int(mixed.cfg.SOLVER.IMS_PER_BATCH), device)

            def loop_unit(case: _LoopCase) -> Callable[[], dict[str, float]]:
                def run() -> dict[str, float]:
                    value = case.loop(steps)
                    time.sleep(settle)  # the workers refill their queue now, not in the next measurement
                    return {f"loop/{case.name}": value}
                return run

            units: list[Callable[[], dict[str, float]]] = []
            for case in cases.values():
                units.append(loop_unit(case))
                units.append(lambda case=case: {f"bare/{case.name}": case.bare(steps)})
            for name, runner in runners.items():
                units.append(lambda name=name, runner=runner: {f"backbone/{name}/train": runner.train(steps)})
                units.append(lambda name=name, runner=runner: {f"backbone/{name}/infer": runner.infer(steps)})
            units.append(text_unit)
            samples: dict[str, list[float]] = {}
            for round_index in range(warmup + iters):
                shift = round_index % len(units)
                times: dict[str, float] = {}
                for unit in units[shift:] + units[:shift]:
                    times.update(unit())
                if round_index >= warmup:
                    for key, value in times.items():
                        samples.setdefault(key, []).append(value)
                if progress is not None:
                    label = "warm-up" if round_index < warmup else "round"
                    number = round_index + 1 if round_index < warmup else round_index - warmup + 1
                    progress(f"{label} {number}/{warmup if round_index < warmup else iters}: " + ", ".join(
                        f"{k} {1000 * v:.0f} ms" for k, v in times.items() if k.split("/")[0] in ("loop", "bare")))
            loop_stats = {name: case.loop_stats() for name, case in cases.items()}
            batches = {name: {**case.batch_info(), "text_ratio": BATCHES[name],
                              "num_workers": int(case.cfg.DATALOADER.NUM_WORKERS),
                              "text_cache_warm_s": case.warm_cache_s} for name, case in cases.items()}
            models = _model_info(mixed, backbones, baseline_cfg)
        finally:
            for case in cases.values():
                case.close()
    measurements = {key: summarize(samples[key]) for key in _keys()}
    report = {
        "tool": "tools/benchmark_loop_speed.py",
        "configs": {"dmf": os.path.abspath(config), "fastreid_baseline": os.path.abspath(baseline_config)},
        "opts": list(opts),
        "iters": iters, "warmup": warmup, "steps": steps, "settle_s": settle,
        "statistic": "median and interquartile range (q3 - q1) over interleaved rounds of the mean seconds of "
                     "`steps` iterations, seconds",
        "environment": {**run_environment(str(device)), "load_average_at_start": env_start["load_average"]},
        "batches": batches,
        "models": models,
        "measurements": measurements,
        "loop_ratio": _loop_ratios(measurements, loop_stats),
        "backbones": _backbone_summary(measurements, int(images.shape[0])),
        "text_encoding": _text_summary(measurements, text_unit.batch_size, len(texts)),
        "seconds": time.perf_counter() - began,
    }
    write_new_report_files(out, {REPORT_JSON: report, REPORT_MD: markdown_report(report)})
    return report


def _model_info(case: _LoopCase, backbones: dict, baseline_cfg) -> dict:
    cfg = case.cfg
    dmf = cfg.MODEL.DMF

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    return {"dmf": {"embed_dim": dmf.EMBED_DIM, "depth": dmf.DEPTH, "num_heads": dmf.NUM_HEADS,
                    "mlp_ratio": dmf.MLP_RATIO, "patch_size": dmf.PATCH_SIZE,
                    "stride_size": list(cfg.MODEL.BACKBONE.STRIDE_SIZE), "input_size": list(cfg.INPUT.SIZE_TRAIN),
                    "text_encoder": dmf.TEXT_ENCODER.NAME, "max_tokens": dmf.TEXT_ENCODER.MAX_TOKENS,
                    "optimizer": cfg.SOLVER.OPT, "trainable_parameters": count(case.model),
                    "amp_in_config": bool(cfg.SOLVER.AMP.ENABLED)},
            "backbone_parameters": {name: count(model) for name, model in backbones.items()},
            "fastreid_backbone": baseline_cfg.MODEL.BACKBONE.NAME,
            "timm_backbone": "timm.models.vision_transformer.VisionTransformer"}


def _loop_ratios(m: dict, loop_stats: dict) -> dict:
    out = {}
    for batch in BATCHES:
        loop, bare = m[f"loop/{batch}"], m[f"bare/{batch}"]
        ratio = loop["median_s"] / bare["median_s"]
        out[batch] = {"loop_median_s": loop["median_s"], "bare_median_s": bare["median_s"], "ratio": ratio,
                      "ratio_q1_q3": [loop["q1_s"] / bare["q3_s"], loop["q3_s"] / bare["q1_s"]],
                      "target": LOOP_TARGET, "within_target": ratio <= LOOP_TARGET, **loop_stats[batch]}
    return out


def _backbone_summary(m: dict, batch_size: int) -> dict:
    out = {"batch_size": batch_size}
    for mode in ("train", "infer"):
        rate = {name: batch_size / m[f"backbone/{name}/{mode}"]["median_s"] for name in BACKBONES}
        out[mode] = {"images_per_s": rate, "dmf_over_fastreid": rate["dmf"] / rate["fastreid"],
                     "dmf_over_timm": rate["dmf"] / rate["timm"]}
    return out


def _text_summary(m: dict, batch_size: int, distinct: int) -> dict:
    cold, warm = (batch_size / m[f"text/{k}"]["median_s"] for k in ("cold", "warm"))
    return {"batch_size": batch_size, "distinct_descriptions": distinct, "cold_descriptions_per_s": cold,
            "warm_descriptions_per_s": warm, "warm_over_cold": warm / cold}


# ----------------------------------------------------------------------------------------------- report
def _ms(value: float) -> str:
    return f"{1000 * value:.1f}"


def markdown_report(report: dict) -> str:
    """The report's three tables (loop / bare per batch kind; backbones; text encoding) as markdown."""
    m, env = report["measurements"], report["environment"]
    lines = [f"Training-loop speed of DMF: {report['iters']} interleaved rounds after {report['warmup']} warm-up, "
             f"each sample the mean of {report['steps']} iterations; median (IQR = q3 - q1); {env['device']}, "
             f"{env['torch_threads']} torch threads.", "",
             f"| batch | loop iteration, ms (IQR) | bare fwd+bwd, ms (IQR) | loop / bare | <= {LOOP_TARGET:.2f} | "
             "data wait, ms | texts / tokens |", "|---|---:|---:|---:|:---:|---:|---:|"]
    for batch in BATCHES:
        loop, bare, r = m[f"loop/{batch}"], m[f"bare/{batch}"], report["loop_ratio"][batch]
        info = report["batches"][batch]
        data = r.get("data_time_median_s")
        tokens = f"{info['texts']} / {info['text_tokens']}" if info.get("text_tokens") else f"{info['texts']} / -"
        lines.append(f"| {batch} (TEXT_RATIO {info['text_ratio']}, {info['num_workers']} workers) | "
                     f"{_ms(loop['median_s'])} ({_ms(loop['iqr_s'])}) | {_ms(bare['median_s'])} "
                     f"({_ms(bare['iqr_s'])}) | {r['ratio']:.3f} | {'yes' if r['within_target'] else 'no'} | "
                     f"{_ms(data) if data is not None else '-'} | {tokens} |")
    b = report["backbones"]
    lines += ["", f"Backbones (image path), batch {b['batch_size']}: images/s from the median; ratio > 1 = DMF faster.",
              "", "| mode | DMF | fast-reid ViT | timm ViT | DMF / fast-reid | DMF / timm |",
              "|---|---:|---:|---:|---:|---:|"]
    for mode in ("train", "infer"):
        rate = b[mode]["images_per_s"]
        lines.append(f"| {'train (fwd+bwd)' if mode == 'train' else 'inference'} | {rate['dmf']:.0f} | "
                     f"{rate['fastreid']:.0f} | {rate['timm']:.0f} | {b[mode]['dmf_over_fastreid']:.3f} | "
                     f"{b[mode]['dmf_over_timm']:.3f} |")
    t = report["text_encoding"]
    lines += ["", f"Frozen text encoder, {t['batch_size']} distinct descriptions per call:", "",
              "| feature cache | ms per call (IQR) | descriptions/s |", "|---|---:|---:|"]
    for key, label, rate in (("cold", "cold (encoder runs)", t["cold_descriptions_per_s"]),
                             ("warm", "warm (cached)", t["warm_descriptions_per_s"])):
        lines.append(f"| {label} | {_ms(m[f'text/{key}']['median_s'])} ({_ms(m[f'text/{key}']['iqr_s'])}) | "
                     f"{rate:.0f} |")
    return "\n".join(lines) + "\n"
