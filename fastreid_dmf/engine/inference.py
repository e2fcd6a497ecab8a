"""A trained model for the inference tools: config + checkpoint -> model in eval mode.

The ``tools/`` commands that look at a trained model (ranking lists, attention maps, text search, feature
extraction, ONNX export) all start here, so they read configs and checkpoints exactly as
``tools/train_net.py --eval-only`` does: the same config checks, ``MODEL.WEIGHTS`` loaded by
:func:`~fastreid_dmf.engine.trainer.load_eval_weights` (``weights_only=True``, every tensor but the identity
classifier must fit), a CUDA config falling back to the CPU on a machine without a GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from ..config import check_dmf_config, load_config

__all__ = ["ImageFeatureModel", "check_description_lengths", "default_config_file", "load_inference_model"]

logger = logging.getLogger(__name__)


def default_config_file(checkpoint: str) -> str:
    """``config.yaml`` beside ``checkpoint`` (what fast-reid's ``default_setup`` writes into ``OUTPUT_DIR``).

    Raises:
        FileNotFoundError: there is none (the message asks for ``--config-file``).
    """
    path = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no --config-file given and no config.yaml beside checkpoint {checkpoint!r} "
                                f"(looked for {path!r}); pass the training config with --config-file")
    return path


def load_inference_model(checkpoint: str, config_file: str = "", opts: Sequence[str] = (),
                         device: str = "") -> tuple:
    """Build the model of ``config_file`` and load ``checkpoint`` into it, in eval mode.

    Args:
        checkpoint: a fast-reid checkpoint (``<OUTPUT_DIR>/model_final.pth``), read with ``weights_only=True``;
            "" only for a model without tensors (``ColorHistogramMatcher``) or with
            ``MODEL.DMF.EVAL_UNTRAINED True`` in ``opts``.
        config_file: the run's YAML config; "" = ``config.yaml`` beside the checkpoint.
        opts: ``KEY VALUE`` overrides, as on fast-reid's command line.
        device: "cpu" / "cuda" overrides ``MODEL.DEVICE``; "" keeps it (CUDA -> CPU when no GPU is usable).

    Returns:
        ``(cfg, model)``: the frozen config and the model (fast-reid meta-architecture, ``eval()``, on its device).

    Raises:
        FileNotFoundError: the checkpoint or config is missing (message names the path).
        CheckpointReadError, ValueError: an unreadable checkpoint, weights that do not fit the model, or a bad
            config value (message names the key), before any data is read.
    """
    from .trainer import DMFTrainer, _cpu_without_cuda, load_eval_weights

    if checkpoint and not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint {checkpoint!r} is not a file; expected a fast-reid checkpoint such as "
                                "<OUTPUT_DIR>/model_final.pth")
    if not config_file:
        config_file = default_config_file(checkpoint)
    cfg = load_config(config_file, list(opts))
    cfg.MODEL.WEIGHTS = checkpoint
    cfg.MODEL.BACKBONE.PRETRAIN = False  # the checkpoint holds every weight
    if device:
        cfg.MODEL.DEVICE = device
    check_dmf_config(cfg)
    cfg = _cpu_without_cuda(cfg)
    cfg.freeze()
    model = DMFTrainer.build_model(cfg)
    load_eval_weights(cfg, model)
    model.eval()
    return cfg, model


class ImageFeatureModel(nn.Module):
    """The image branch of a DMF or MMET model as one module: images -> test features (what ONNX exports).

    Args:
        model: a ``DMF`` or ``MMET`` model (anything with ``image_test_features``).

    Input: float32 ``(B, 3, H, W)`` images in 0..255, RGB, H x W = ``INPUT.SIZE_TEST`` (normalisation inside).
    Output: float32 ``(B, D)``, the feature ``ReidEvaluator`` scores (``MODEL.DMF.TEST_FEAT``), visual
    branch only (MMET's "fused" test input needs text and is not part of it).

    Raises:
        TypeError: ``model`` has no image branch.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not hasattr(model, "image_test_features"):
            raise TypeError(f"{type(model).__name__} has no image branch (expected a DMF or MMET model)")
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        return self.model.image_test_features(images)


def check_description_lengths(model: nn.Module, texts: list[str]) -> None:
    """Refuse descriptions the model would silently cut: more tokens than ``MODEL.DMF.TEXT_ENCODER.MAX_TOKENS``.

    Training and evaluation truncate long texts, as the papers' code does; a user typing a query should know
    that the end of it would be ignored.

    Args:
        model: a DMF or MMET model with a text encoder (``backbone.text_encoder`` with ``tokenizer`` and
            ``max_tokens``).
        texts: the descriptions.

    Raises:
        ValueError: an empty description, or one longer than the limit (names it, its token count and the key).
        RuntimeError: the model has no text encoder.
    """
    encoder = getattr(getattr(model, "backbone", None), "text_encoder", None)
    if encoder is None:
        raise RuntimeError(f"{type(model).__name__} has no text encoder: it cannot search by description (set "
                           "MODEL.DMF.TEXT_ENCODER.NAME when training, or use a DMF / MMET checkpoint with text)")
    for text in texts:
        if not text.strip():
            raise ValueError("empty description; expected words describing the person")
        count = len(encoder.tokenizer(text, truncation=False)["input_ids"])
        if count > encoder.max_tokens:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise ValueError(f"description {shown!r} has {count} tokens, more than MODEL.DMF.TEXT_ENCODER.MAX_TOKENS="
                             f"{encoder.max_tokens} (special tokens included); shorten it or raise the key")
