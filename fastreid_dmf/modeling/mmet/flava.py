"""Start MMET from a ``transformers`` ``FlavaModel`` folder, as MMET's official code starts from FLAVA.

MMET's official code (JeremyXSC/MMET) initialises its image, text and fusion encoders from the released
FLAVA weights (``facebook/flava-full``). Here a local ``FlavaModel.save_pretrained`` folder
(``MODEL.MMET.FLAVA_PATH``; nothing is downloaded) is read and mapped onto :class:`.backbone.MMETBackbone`:

* ``image_model.*`` -> ``image_encoder.*``: transformers ViT names to timm names by
  :func:`~fastreid_dmf.modeling.pretrained.adapt_vit_state_dict` (q/k/v stacked, position embedding resized
  to the Re-ID grid), ``embeddings.mask_token`` -> ``mask_token``;
* ``text_model.*`` -> ``text_encoder.encoder.*``: the text encoder *is* transformers' ``FlavaTextModel``
  (:func:`build_flava_text_encoder`), so its names are unchanged;
* ``multimodal_model.*`` -> ``fusion.*`` (timm names), ``image_to_mm_projection`` / ``text_to_mm_projection``
  -> ``fusion.image_to_mm`` / ``fusion.text_to_mm``;
* ``image_projection``, ``text_projection``, ``logit_scale`` keep their names; poolers are dropped (unused).

The shapes in ``MODEL.DMF`` / ``MODEL.MMET`` must describe the same network as the folder's config
(:func:`check_flava_config`), so that MMET computes FLAVA's hidden states (tested against ``FlavaModel``).
"""

from __future__ import annotations

import json
import logging
import math
import os

import torch

from ..pretrained import adapt_vit_state_dict, convert_hf_vit_state_dict, read_state_dict
from .text_encoder import MMETTextEncoder

__all__ = ["FLAVA_KEY", "check_flava_folder", "read_flava_config", "check_flava_config", "build_flava_text_encoder",
           "flava_state_for_backbone", "load_flava_weights"]

logger = logging.getLogger(__name__)

#: The config key named in this module's errors.
FLAVA_KEY = "MODEL.MMET.FLAVA_PATH"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def check_flava_folder(path: str) -> None:
    """Refuse anything but a local ``FlavaModel.save_pretrained`` folder, before anything is loaded.

    Raises:
        FileNotFoundError: not a folder, or no ``config.json`` / weights file in it.
        ValueError: its ``config.json`` is not a FLAVA config (``model_type`` "flava").
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"config {FLAVA_KEY}={path!r}: not a folder; expected a local folder saved by "
                                "transformers' FlavaModel.save_pretrained (e.g. a copy of facebook/flava-full)")
    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"config {FLAVA_KEY}={path!r}: no config.json in the folder")
    if not any(os.path.isfile(os.path.join(path, name)) for name in _WEIGHT_FILES):
        raise FileNotFoundError(f"config {FLAVA_KEY}={path!r}: no weights file ({', '.join(_WEIGHT_FILES)})")
    with open(config_path) as handle:
        model_type = json.load(handle).get("model_type")
    if model_type != "flava":
        raise ValueError(f"config {FLAVA_KEY}={path!r}: config.json has model_type {model_type!r}; expected 'flava'")


def read_flava_config(path: str):
    """The folder's ``transformers.FlavaConfig`` (after :func:`check_flava_folder`)."""
    from transformers import FlavaConfig

    check_flava_folder(path)
    return FlavaConfig.from_pretrained(path, local_files_only=True)


def check_flava_config(cfg, flava_config) -> None:
    """The MMET shape keys must describe the folder's network.

    Raises:
        ValueError: every disagreement, each naming the key, its value and the FLAVA value to set.
    """
    from .backbone import fusion_dim

    image, text, fused = flava_config.image_config, flava_config.text_config, flava_config.multimodal_config
    dmf, mmet = cfg.MODEL.DMF, cfg.MODEL.MMET
    stride = cfg.MODEL.BACKBONE.STRIDE_SIZE
    expected = [
        ("MODEL.DMF.EMBED_DIM", dmf.EMBED_DIM, image.hidden_size),
        ("MODEL.DMF.DEPTH", dmf.DEPTH, image.num_hidden_layers),
        ("MODEL.DMF.NUM_HEADS", dmf.NUM_HEADS, image.num_attention_heads),
        ("MODEL.DMF.MLP_RATIO", dmf.MLP_RATIO, image.intermediate_size / image.hidden_size),
        ("MODEL.DMF.PATCH_SIZE", dmf.PATCH_SIZE, image.patch_size),
        ("MODEL.BACKBONE.STRIDE_SIZE", tuple(stride), (image.patch_size, image.patch_size)),
        ("MODEL.DMF.QKV_BIAS", dmf.QKV_BIAS, image.qkv_bias),
        ("MODEL.DMF.LN_EPS", dmf.LN_EPS, image.layer_norm_eps),
        ("MODEL.DMF.LAYER_SCALE_INIT", dmf.LAYER_SCALE_INIT, 0.0),
        ("MODEL.MMET.FUSION.DIM (0 = MODEL.DMF.EMBED_DIM)", fusion_dim(cfg), fused.hidden_size),
        ("MODEL.MMET.FUSION.DEPTH", mmet.FUSION.DEPTH, fused.num_hidden_layers),
        ("MODEL.MMET.FUSION.NUM_HEADS", mmet.FUSION.NUM_HEADS, fused.num_attention_heads),
        ("MODEL.DMF.MLP_RATIO (fusion)", dmf.MLP_RATIO, fused.intermediate_size / fused.hidden_size),
        ("projection_dim of the folder vs MODEL.MMET.FUSION.DIM", fusion_dim(cfg), flava_config.projection_dim),
    ]
    wrong = [f"{key}={ours!r} but the FLAVA folder has {theirs!r}" for key, ours, theirs in expected
             if not (math.isclose(ours, theirs, rel_tol=1e-9) if isinstance(ours, float) else ours == theirs)]
    for part, sub in (("image", image), ("text", text), ("multimodal", fused)):
        if sub.hidden_act != "gelu":
            wrong.append(f"{part} hidden_act={sub.hidden_act!r}; MMET's blocks use exact GELU ('gelu')")
    if cfg.MODEL.DMF.TEXT_ENCODER.MAX_TOKENS > text.max_position_embeddings:
        wrong.append(f"MODEL.DMF.TEXT_ENCODER.MAX_TOKENS={cfg.MODEL.DMF.TEXT_ENCODER.MAX_TOKENS} but the FLAVA text "
                     f"encoder has {text.max_position_embeddings} positions")
    if wrong:
        raise ValueError(f"config {FLAVA_KEY}={cfg.MODEL.MMET.FLAVA_PATH!r} does not fit the configured MMET shape: "
                         + "; ".join(wrong))


def build_flava_text_encoder(path: str, max_tokens: int) -> MMETTextEncoder:
    """The folder's text encoder, transformers' ``FlavaTextModel`` (no pooler), with the folder's tokenizer.

    Its weights are read by :func:`load_flava_weights` (one read of the folder for every part).

    Raises:
        FileNotFoundError: see :func:`check_flava_folder`; or no tokenizer files in the folder.
        ValueError: ``max_tokens`` beyond the text encoder's position embeddings.
    """
    from transformers import AutoTokenizer, FlavaTextModel

    from ..text.loader import check_tokenizer_files

    config = read_flava_config(path)
    check_tokenizer_files(path, path)
    if max_tokens > config.text_config.max_position_embeddings:
        raise ValueError(f"config MODEL.DMF.TEXT_ENCODER.MAX_TOKENS={max_tokens}: the FLAVA text encoder in {path!r} "
                         f"has {config.text_config.max_position_embeddings} positions")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = FlavaTextModel(config.text_config, add_pooling_layer=False)
    return MMETTextEncoder(tokenizer, model, max_tokens, name=path)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def flava_state_for_backbone(state: dict[str, torch.Tensor], backbone) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a ``FlavaModel`` state dict to :class:`.backbone.MMETBackbone` names (module docstring).

    Args:
        state: the folder's tensors (``FlavaModel`` names; a ``flava.`` prefix, as in
            ``FlavaForPreTraining`` checkpoints, is stripped).
        backbone: the target (read for shapes: the position embedding is resized to its grid).

    Returns:
        ``(mapped, unused)``: tensors under backbone names, and the FLAVA keys that map to nothing.
    """
    state = {k[len("flava."):] if k.startswith("flava.") else k: v for k, v in state.items()}
    image = _strip(state, "image_model.")
    mask_token = image.pop("embeddings.mask_token", None)
    mapped = {f"image_encoder.{k}": v for k, v in
              adapt_vit_state_dict(image, backbone.image_encoder, family="hf-vit").items()}
    if mask_token is not None:
        mapped["image_encoder.mask_token"] = mask_token
    text = {k: v for k, v in _strip(state, "text_model.").items() if not k.startswith("pooler.")}
    mapped.update({f"text_encoder.encoder.{k}": v for k, v in text.items()})
    fused = convert_hf_vit_state_dict(_strip(state, "multimodal_model."))
    mapped.update({f"fusion.{k}": v for k, v in fused.items()})
    for flava_name, ours in (("image_to_mm_projection.", "fusion.image_to_mm."),
                             ("text_to_mm_projection.", "fusion.text_to_mm."),
                             ("image_projection.", "image_projection."), ("text_projection.", "text_projection.")):
        mapped.update({ours + k: v for k, v in _strip(state, flava_name).items()})
    if "logit_scale" in state:
        mapped["logit_scale"] = state["logit_scale"]
    known = ("image_model.", "text_model.", "multimodal_model.", "image_to_mm_projection.", "text_to_mm_projection.",
             "image_projection.", "text_projection.", "logit_scale")
    unused = sorted(k for k in state if not k.startswith(known) or k.startswith("text_model.pooler."))
    return mapped, unused


def load_flava_weights(backbone, path: str) -> dict[str, list[str]]:
    """Load a ``FlavaModel`` folder into an :class:`.backbone.MMETBackbone` built with a FLAVA text encoder.

    Returns:
        ``{"loaded": [...], "missing": [...], "unused": [...]}`` (backbone keys not in the folder stay at
        their initialisation; logged).

    Raises:
        FileNotFoundError, ValueError: see :func:`check_flava_folder`.
        ValueError: a FLAVA tensor has no place in the backbone or another shape (lists them all).
    """
    check_flava_folder(path)
    mapped, unused = flava_state_for_backbone(read_state_dict(path), backbone)
    model_state = backbone.state_dict()
    wrong = [f"{k}: {tuple(v.shape)} in {path} vs {tuple(model_state[k].shape)} in MMET" for k, v in mapped.items()
             if k in model_state and v.shape != model_state[k].shape]
    homeless = sorted(k for k in mapped if k not in model_state)
    if wrong or homeless:
        raise ValueError(f"config {FLAVA_KEY}={path!r} does not fit the MMET backbone: wrong shape: {wrong}; "
                         f"no place for: {homeless[:20]}")
    backbone.load_state_dict(mapped, strict=False)
    missing = sorted(k for k in model_state if k not in mapped)
    logger.info("Loaded %d FLAVA tensors from %s into MMET (image, text and fusion encoders)", len(mapped), path)
    if missing:
        logger.info("Not in the FLAVA folder (kept at init): %s", ", ".join(missing))
    if unused:
        logger.info("Unused FLAVA tensors: %s", ", ".join(unused))
    return {"loaded": sorted(mapped), "missing": missing, "unused": unused}
