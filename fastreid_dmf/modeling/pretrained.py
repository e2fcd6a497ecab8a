"""Load pre-trained ViT weights (ImageNet/timm, TransReID, fast-reid) into the DMF backbone.

Mirrors what ``build_vit_backbone`` in fast-reid's
``fastreid/modeling/backbones/vision_transformer.py`` (from TransReID) does:
drop classifier heads, reshape linear patch weights to convolutions and
resize the position-embedding grid bilinearly to the Re-ID input grid. The
resize itself is timm's ``resample_abs_pos_embed``.
"""

from __future__ import annotations

import logging
import math
import os

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

__all__ = ["read_state_dict", "adapt_vit_state_dict", "load_pretrained_vit"]

logger = logging.getLogger(__name__)

# Keys of classification checkpoints that have no counterpart in a Re-ID backbone.
_DROP_PREFIXES = ("head.", "head_dist.", "fc_norm.", "pre_logits.", "dist_token")
_STRIP_PREFIXES = ("module.", "backbone.", "base.")


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read a ``.pth``/``.pt``/``.bin`` (torch) or ``.safetensors`` checkpoint as a flat state dict.

    Unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` containers.

    Raises:
        FileNotFoundError: ``path`` does not exist (names MODEL.BACKBONE.PRETRAIN_PATH).
        ValueError: the file holds no tensor state dict.
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.BACKBONE.PRETRAIN_PATH={path!r} is not a file; give a local ViT checkpoint "
            "(.pth or .safetensors) or set MODEL.BACKBONE.PRETRAIN False"
        )
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for container in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(container), dict):
            state = state[container]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return state


def adapt_vit_state_dict(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename/reshape a ViT state dict for :class:`~fastreid_dmf.modeling.backbone.DMFBackbone`.

    Strips ``module.``/``backbone.``/``base.`` prefixes, drops classifier keys,
    reshapes a 2-D ``patch_embed.proj.weight`` to the model's conv shape and
    resizes ``pos_embed`` from a square (or the checkpoint's) grid to the
    model's ``patch_embed.num_y x num_x`` grid (bilinear, as TransReID).

    Returns:
        A new dict; keys may still mismatch the model (the caller reports them).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(_DROP_PREFIXES):
            continue
        out[key] = value
    model_state = model.state_dict()
    proj = out.get("patch_embed.proj.weight")
    target = model_state["patch_embed.proj.weight"]
    if proj is not None and proj.dim() == 2 and proj.numel() == target.numel():
        out["patch_embed.proj.weight"] = proj.reshape(target.shape)
    pos = out.get("pos_embed")
    want = model_state["pos_embed"]
    if pos is not None and pos.shape != want.shape and pos.shape[-1] == want.shape[-1]:
        grid_old = int(math.isqrt(pos.shape[1] - 1))
        if grid_old * grid_old == pos.shape[1] - 1:
            new_size = [model.patch_embed.num_y, model.patch_embed.num_x]
            out["pos_embed"] = resample_abs_pos_embed(pos, new_size, old_size=[grid_old, grid_old],
                                                      num_prefix_tokens=1, interpolation="bilinear",
                                                      antialias=False)
            logger.info("Resized position embedding %s -> %s (grid %dx%d -> %dx%d)", tuple(pos.shape),
                        tuple(out["pos_embed"].shape), grid_old, grid_old, *new_size)
    return out


def load_pretrained_vit(model: nn.Module, path: str) -> dict[str, list[str]]:
    """Load ViT weights from ``path`` into ``model``, skipping what does not fit.

    Returns:
        ``{"loaded": [...], "skipped_shape": ["key: ckpt shape vs model shape"],
        "missing": [...], "unexpected": [...]}``; everything is also logged.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_state_dict`.
        ValueError: no key of the checkpoint matched the model (wrong file?).
    """
    state = adapt_vit_state_dict(read_state_dict(path), model)
    model_state = model.state_dict()
    skipped = [f"{k}: {tuple(v.shape)} in checkpoint vs {tuple(model_state[k].shape)} in model"
               for k, v in state.items() if k in model_state and v.shape != model_state[k].shape]
    usable = {k: v for k, v in state.items() if k in model_state and v.shape == model_state[k].shape}
    if not usable:
        raise ValueError(f"MODEL.BACKBONE.PRETRAIN_PATH={path!r}: no key matches the DMF backbone; "
                         f"skipped for shape: {skipped}; first keys: {list(state)[:5]}")
    result = model.load_state_dict(usable, strict=False)
    report = {"loaded": sorted(usable), "skipped_shape": skipped, "missing": sorted(result.missing_keys),
              "unexpected": sorted(k for k in state if k not in model_state)}
    logger.info("Loaded %d tensors from %s", len(usable), path)
    for line in skipped:
        logger.warning("Skipped pre-trained %s", line)
    if report["missing"]:
        logger.info("Not in the pre-trained checkpoint (kept at init): %s", ", ".join(report["missing"]))
    if report["unexpected"]:
        logger.info("Unused pre-trained keys: %s", ", ".join(report["unexpected"]))
    return report
