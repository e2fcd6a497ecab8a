"""Load pre-trained ViT weights into the DMF backbone.

Supported checkpoint families (detected from the keys, :func:`detect_checkpoint_family`):

* ``timm``: timm / ImageNet ViT (``.pth`` or ``.safetensors``, timm names);
* ``transreid``: TransReID (``base.`` prefix);
* ``fast-reid``: fast-reid ViT or DMF checkpoints (``backbone.`` prefix);
* ``beit``, ``data2vec-vision``, ``hf-vit``: ``transformers`` ``BeitModel``,
  ``Data2VecVisionModel`` and ``ViTModel`` (and their ``*ForImageClassification``
  wrappers, prefixes ``beit.`` / ``data2vec_vision.`` / ``vit.``), as a
  ``save_pretrained`` folder (``model.safetensors``, ``pytorch_model.bin`` or a
  sharded ``*.index.json``) or the weights file itself. Both the on-disk names
  (``encoder.layer.N.attention.attention.query``) and the transformers >= 5
  module names (``layers.N.attention.q_proj``) are read.

timm-style checkpoints mirror what ``build_vit_backbone`` in fast-reid's
``fastreid/modeling/backbones/vision_transformer.py`` (from TransReID) does:
drop classifier heads, reshape linear patch weights to convolutions and resize
the position-embedding grid bilinearly to the Re-ID input grid (timm's
``resample_abs_pos_embed``).

transformers names are mapped as ``transformers/models/beit/modeling_beit.py``
(and ``data2vec/modeling_data2vec_vision.py``, ``vit/modeling_vit.py``) define
the modules: ``embeddings.cls_token`` -> ``cls_token``;
``embeddings.patch_embeddings.projection`` -> ``patch_embed.proj``;
``embeddings.position_embeddings`` -> ``pos_embed`` (resized);
per layer N: ``query``/``key``/``value`` -> ``blocks.N.attn.qkv`` (stacked
``[q; k; v]`` rows; BEiT's key has no bias, zeros are used),
``attention.output.dense`` -> ``attn.proj``, ``layernorm_before`` -> ``norm1``,
``intermediate.dense`` -> ``mlp.fc1``, ``output.dense`` -> ``mlp.fc2``,
``layernorm_after`` -> ``norm2``, ``lambda_1``/``lambda_2`` (LayerScale) ->
``ls1.gamma``/``ls2.gamma``; final ``layernorm`` -> ``norm``.

Decisions for what DMF cannot represent:

* **Mean-pooling checkpoints** (``use_mean_pooling=True``, the data2vec-vision
  default) have no final ``layernorm``; their ``pooler.layernorm`` normalised the
  mean patch token. DMF's feature is the [cls] token after ``norm``, so
  ``pooler.layernorm`` is mapped to ``norm`` (logged): it is the checkpoint's
  last trained LayerNorm of the output feature. The feature is still the
  [cls] token, not the mean, so it differs from the HF pooled output.
* **Relative position bias** tables (``use_relative_position_bias`` /
  ``use_shared_relative_position_bias``) are dropped with a warning and listed
  as ``unexpected`` in the load report: the shared transformer also runs text
  tokens and only has absolute position embeddings.
* Classification / pre-training heads (``classifier``, ``lm_head``,
  ``pooler.dense``, ``embeddings.mask_token``, segmentation heads) are dropped,
  like timm's ``head``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re

import torch
from timm.layers import resample_abs_pos_embed
from torch import nn

from ..checkpoint_files import read_checkpoint, strip_key_prefix

__all__ = ["source_grid", "read_state_dict", "read_hf_config", "detect_checkpoint_family", "convert_hf_vit_state_dict",
           "adapt_vit_state_dict", "load_pretrained_vit"]

logger = logging.getLogger(__name__)

# Keys of classification checkpoints that have no counterpart in a Re-ID backbone.
_DROP_PREFIXES = ("head.", "head_dist.", "fc_norm.", "pre_logits.", "dist_token")
_STRIP_PREFIXES = ("module.", "backbone.", "base.")

# transformers: model prefix of the *For... wrappers -> family name.
_HF_PREFIXES = {"data2vec_vision.": "data2vec-vision", "beit.": "beit", "vit.": "hf-vit"}
_HF_MODEL_TYPES = {"data2vec-vision": "data2vec-vision", "beit": "beit", "vit": "hf-vit"}
HF_FAMILIES = ("beit", "data2vec-vision", "hf-vit")
_HF_DROP_PREFIXES = ("classifier.", "lm_head.", "pooler.dense.", "embeddings.mask_token", "decode_head.",
                     "auxiliary_head.", "fpn", "decoder.")
_HF_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_HF_LAYER = re.compile(r"^(?:encoder\.layer|layers)\.(\d+)\.(.+)$")
# Per-layer module names: on-disk (transformers 4 and save_pretrained) and transformers >= 5 module names.
_HF_LAYER_MODULES = {
    "attention.attention.query": "q", "attention.q_proj": "q",
    "attention.attention.key": "k", "attention.k_proj": "k",
    "attention.attention.value": "v", "attention.v_proj": "v",
    "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",
    "intermediate.dense": "mlp.fc1", "mlp.fc1": "mlp.fc1",
    "output.dense": "mlp.fc2", "mlp.fc2": "mlp.fc2",
    "layernorm_before": "norm1", "layernorm_after": "norm2",
}
_HF_LAYER_PARAMS = {"lambda_1": "ls1.gamma", "lambda_2": "ls2.gamma"}
_LAYER_SCALE_KEY = re.compile(r"^blocks\.\d+\.ls[12]\.gamma$")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")


def _load_weights_file(path: str) -> dict:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    if path.endswith(".index.json"):
        try:
            with open(path) as handle:
                weight_map = json.load(handle)["weight_map"]
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{path}: expected a transformers shard index with a 'weight_map' ({error})") from error
        state: dict = {}
        folder = os.path.dirname(path)
        for shard in sorted(set(weight_map.values())):
            state.update(_load_weights_file(os.path.join(folder, shard)))
        return state
    return read_checkpoint(path)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a flat state dict of tensors.

    Args:
        path: a ``.pth``/``.pt``/``.bin`` (torch) or ``.safetensors`` file, a
            transformers shard index (``*.index.json``), or a ``save_pretrained``
            folder holding ``model.safetensors`` / ``pytorch_model.bin`` (or their
            sharded ``*.index.json``).

    Returns:
        ``{name: tensor}``; ``{"model": ...}`` / ``{"state_dict": ...}`` containers are unwrapped.

    Raises:
        FileNotFoundError: ``path`` does not exist, or a folder holds none of the
            weight files above (names MODEL.BACKBONE.PRETRAIN_PATH).
        ValueError: the file holds no tensor state dict.
    """
    if path and os.path.isdir(path):
        found = [name for name in _WEIGHT_FILES if os.path.isfile(os.path.join(path, name))]
        if not found:
            raise FileNotFoundError(
                f"MODEL.BACKBONE.PRETRAIN_PATH={path!r} is a folder without weights; expected one of "
                f"{', '.join(_WEIGHT_FILES)} (a transformers save_pretrained folder)"
            )
        path = os.path.join(path, found[0])
    elif not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"MODEL.BACKBONE.PRETRAIN_PATH={path!r} is not a file or folder; give a local ViT checkpoint "
            "(.pth, .safetensors or a transformers save_pretrained folder) or set MODEL.BACKBONE.PRETRAIN False"
        )
    state = _load_weights_file(path)
    for container in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(container), dict):
            state = state[container]
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return state


def read_hf_config(path: str) -> dict | None:
    """The transformers ``config.json`` of a ``save_pretrained`` folder (or next to a weights file).

    Returns:
        The parsed config (a dict with ``model_type``), or None when there is none.

    Raises:
        ValueError: ``config.json`` exists but is not valid JSON (names the file).
    """
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    config_path = os.path.join(folder, "config.json")
    if not os.path.isfile(config_path):
        return None
    try:
        with open(config_path) as handle:
            config = json.load(handle)
    except ValueError as error:
        raise ValueError(f"{config_path}: not valid JSON ({error})") from error
    return config if isinstance(config, dict) and "model_type" in config else None


def detect_checkpoint_family(state: dict[str, torch.Tensor], hf_config: dict | None = None) -> str:
    """Name the checkpoint family from its keys.

    Args:
        state: a state dict as returned by :func:`read_state_dict`.
        hf_config: the transformers ``config.json``, if any (its ``model_type``
            names un-prefixed BEiT / data2vec-vision / ViT checkpoints).

    Returns:
        One of ``"beit"``, ``"data2vec-vision"``, ``"hf-vit"`` (transformers),
        ``"transreid"`` (``base.``), ``"fast-reid"`` (``backbone.``), ``"timm"``.
        Un-prefixed transformers checkpoints without a config are ``"hf-vit"``
        when every layer has a key bias and no LayerScale, else ``"beit"``
        (data2vec-vision has the same layout).
    """
    keys = [strip_key_prefix(k, "module.") for k in state]
    for prefix, family in _HF_PREFIXES.items():
        if any(k.startswith(prefix + "embeddings.") or k.startswith(prefix + "encoder.") for k in keys):
            return family
    if any(k.startswith("embeddings.patch_embeddings.") for k in keys):
        model_type = (hf_config or {}).get("model_type")
        if model_type in _HF_MODEL_TYPES:
            return _HF_MODEL_TYPES[model_type]
        has_layer_scale = any(k.endswith(("lambda_1", "lambda_2")) for k in keys)
        has_key_bias = any(k.endswith(("attention.attention.key.bias", "attention.k_proj.bias")) for k in keys)
        return "hf-vit" if has_key_bias and not has_layer_scale else "beit"
    if any(k.startswith("base.") for k in keys):
        return "transreid"
    if any(k.startswith("backbone.") for k in keys):
        return "fast-reid"
    return "timm"


def convert_hf_vit_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a transformers BEiT / data2vec-vision / ViT state dict to DMF (timm) names.

    See the module docstring for the mapping. ``query``/``key``/``value``
    ``(D, D)`` weights and ``(D,)`` biases are stacked into ``blocks.N.attn.qkv``
    ``(3D, D)`` / ``(3D,)``; a missing bias (BEiT's key) is zeros. Relative
    position bias tensors keep their names (so a loader reports them as
    unexpected) and are warned about; heads are dropped.

    Args:
        state: float tensors keyed by transformers names, with or without the
            ``beit.`` / ``data2vec_vision.`` / ``vit.`` / ``module.`` prefix.

    Returns:
        A new dict; keys that have no DMF counterpart keep their transformers names.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[int, dict[tuple[str, str], tuple[str, torch.Tensor]]] = {}
    dropped, relative = [], []
    for key, value in state.items():
        name = strip_key_prefix(key, "module.")
        for prefix in _HF_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        if "relative_position" in name:
            relative.append(name)
            out[name] = value
            continue
        if name.startswith(_HF_DROP_PREFIXES):
            dropped.append(name)
            continue
        if name in _HF_TOP:
            out[_HF_TOP[name]] = value
            continue
        match = _HF_LAYER.match(name)
        if match is None:
            out[name] = value
            continue
        index, rest = int(match.group(1)), match.group(2)
        if rest in _HF_LAYER_PARAMS:
            out[f"blocks.{index}.{_HF_LAYER_PARAMS[rest]}"] = value
            continue
        module, _, param = rest.rpartition(".")
        target = _HF_LAYER_MODULES.get(module)
        if target is None or param not in ("weight", "bias"):
            out[name] = value
        elif target in ("q", "k", "v"):
            qkv.setdefault(index, {})[(target, param)] = (name, value)
        else:
            out[f"blocks.{index}.{target}.{param}"] = value
    for index, parts in sorted(qkv.items()):
        if not all((part, "weight") in parts for part in "qkv"):
            out.update(dict(parts.values()))  # incomplete attention: leave under transformers names
            continue
        weights = [parts[(part, "weight")][1] for part in "qkv"]
        out[f"blocks.{index}.attn.qkv.weight"] = torch.cat(weights, dim=0)
        if any((part, "bias") in parts for part in "qkv"):
            biases = [parts[(part, "bias")][1] if (part, "bias") in parts else weight.new_zeros(weight.shape[0])
                      for part, weight in zip("qkv", weights)]
            out[f"blocks.{index}.attn.qkv.bias"] = torch.cat(biases, dim=0)
    if "norm.weight" not in out and "pooler.layernorm.weight" in out:
        out["norm.weight"] = out.pop("pooler.layernorm.weight")
        if "pooler.layernorm.bias" in out:
            out["norm.bias"] = out.pop("pooler.layernorm.bias")
        logger.info("Checkpoint uses mean pooling (no final 'layernorm'): mapping 'pooler.layernorm' (the LayerNorm "
                    "of the mean patch token) to the final 'norm'; DMF's feature stays the [cls] token")
    if relative:
        logger.warning("Dropping %d relative position bias tensors (%s): DMF's shared transformer also runs text "
                       "tokens and has only absolute position embeddings, so these cannot be used",
                       len(relative), ", ".join(relative))
    if dropped:
        logger.info("Dropped classification/pre-training head tensors: %s", ", ".join(dropped))
    return out


def source_grid(num_patches: int, target_grid: list[int] | tuple[int, int]) -> tuple[int, int]:
    """Patch grid (rows, columns) of a checkpoint's position embedding with ``num_patches`` entries.

    Square grids (ImageNet checkpoints, e.g. 14x14) are taken as such. A
    non-square count (a Re-ID checkpoint, e.g. TransReID's 16x8 = 128 at
    256x128) does not say its shape, so the factor pair whose aspect ratio is
    closest to ``target_grid``'s is taken, with a warning naming the choice.
    """
    side = math.isqrt(num_patches)
    if side * side == num_patches:
        return side, side
    aspect = math.log(target_grid[0] / target_grid[1])
    pairs = [(rows, num_patches // rows) for rows in range(1, num_patches + 1) if num_patches % rows == 0]
    rows, cols = min(pairs, key=lambda pair: abs(math.log(pair[0] / pair[1]) - aspect))
    logger.warning("pre-trained position embedding has %d patches (not a square grid); taking it as %dx%d, the "
                   "factorisation closest to the model's %dx%d aspect ratio", num_patches, rows, cols, *target_grid)
    return rows, cols


def adapt_vit_state_dict(state: dict[str, torch.Tensor], model: nn.Module,
                         family: str | None = None) -> dict[str, torch.Tensor]:
    """Rename/reshape a ViT state dict for :class:`~fastreid_dmf.modeling.dmf.backbone.DMFBackbone`.

    transformers families are first renamed by :func:`convert_hf_vit_state_dict`.
    Then: strips ``module.``/``backbone.``/``base.`` prefixes, drops classifier
    keys, reshapes a 2-D ``patch_embed.proj.weight`` to the model's conv shape
    and resizes ``pos_embed`` ``(1, 1 + N, D)`` from the checkpoint's grid
    (:func:`source_grid`) to the model's ``patch_embed.num_y x num_x`` grid
    (bilinear, as TransReID; the [cls] row is kept).

    Args:
        state: checkpoint tensors.
        model: the target backbone (read for shapes only).
        family: from :func:`detect_checkpoint_family`; None = detect here.

    Returns:
        A new dict; keys may still mismatch the model (the caller reports them).
    """
    family = family or detect_checkpoint_family(state)
    if family in HF_FAMILIES:
        state = convert_hf_vit_state_dict(state)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in _STRIP_PREFIXES:
            key = strip_key_prefix(key, prefix)
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
        new_size = [model.patch_embed.num_y, model.patch_embed.num_x]
        grid_old = source_grid(pos.shape[1] - 1, new_size)
        out["pos_embed"] = resample_abs_pos_embed(pos, new_size, old_size=list(grid_old), num_prefix_tokens=1,
                                                  interpolation="bilinear", antialias=False)
        logger.info("Resized position embedding %s -> %s (grid %dx%d -> %dx%d)", tuple(pos.shape),
                    tuple(out["pos_embed"].shape), *grid_old, *new_size)
    return out


def _check_hf_config(config: dict, model: nn.Module, path: str) -> None:
    """Warn where the transformers config disagrees with the DMF backbone (the weights would compute otherwise)."""
    checks = []
    norm = getattr(model, "norm", None)
    if "layer_norm_eps" in config and isinstance(norm, nn.LayerNorm) and \
            not math.isclose(config["layer_norm_eps"], norm.eps, rel_tol=1e-6, abs_tol=0.0):
        checks.append(f"layer_norm_eps={config['layer_norm_eps']} but MODEL.DMF.LN_EPS={norm.eps}")
    blocks = getattr(model, "blocks", None)
    heads = getattr(blocks[0].attn, "num_heads", None) if blocks else None
    if "num_attention_heads" in config and heads is not None and config["num_attention_heads"] != heads:
        checks.append(f"num_attention_heads={config['num_attention_heads']} but MODEL.DMF.NUM_HEADS={heads}")
    if config.get("hidden_act", "gelu") != "gelu":
        checks.append(f"hidden_act={config['hidden_act']!r} but DMF blocks use exact GELU")
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if "patch_size" in config and patch is not None and tuple(patch) != (config["patch_size"],) * 2:
        checks.append(f"patch_size={config['patch_size']} but MODEL.DMF.PATCH_SIZE={patch[0]}")
    for line in checks:
        logger.warning("%s: config.json %s; the loaded network will not compute what the checkpoint did", path, line)


def load_pretrained_vit(model: nn.Module, path: str) -> dict[str, list[str]]:
    """Load ViT weights from ``path`` into ``model``, skipping what does not fit.

    Args:
        model: a :class:`~fastreid_dmf.modeling.dmf.backbone.DMFBackbone` (or any
            module with the same parameter names).
        path: a checkpoint file or a transformers ``save_pretrained`` folder
            (see :func:`read_state_dict`; the family is detected from the keys).

    Returns:
        ``{"loaded": [...], "skipped_shape": ["key: ckpt shape vs model shape"],
        "missing": [...], "unexpected": [...]}``; everything is also logged.
        Dropped relative position bias tables are in ``unexpected``.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_state_dict`.
        ValueError: no key of the checkpoint matched the model (wrong file?), or
            the checkpoint has LayerScale but the model has none (names
            MODEL.DMF.LAYER_SCALE_INIT).
    """
    raw = read_state_dict(path)
    hf_config = read_hf_config(path)
    family = detect_checkpoint_family(raw, hf_config)
    logger.info("Pre-trained checkpoint %s: %s family", path, family)
    if family in HF_FAMILIES and hf_config is not None:
        _check_hf_config(hf_config, model, path)
    state = adapt_vit_state_dict(raw, model, family)
    model_state = model.state_dict()
    layer_scale = sorted(k for k in state if _LAYER_SCALE_KEY.match(k))
    if layer_scale and not any(_LAYER_SCALE_KEY.match(k) for k in model_state):
        init = (hf_config or {}).get("layer_scale_init_value") or 0.1
        raise ValueError(
            f"MODEL.BACKBONE.PRETRAIN_PATH={path!r} ({family}) has LayerScale weights ({layer_scale[0]}, ...) but "
            f"the DMF backbone was built without LayerScale; set MODEL.DMF.LAYER_SCALE_INIT > 0 (e.g. {init})"
        )
    if not layer_scale and any(_LAYER_SCALE_KEY.match(k) for k in model_state):
        logger.warning("%s has no LayerScale weights but MODEL.DMF.LAYER_SCALE_INIT > 0: the gammas keep their "
                       "initial value, so the loaded network does not compute what the checkpoint did", path)
    if family in HF_FAMILIES and "pos_embed" not in state:
        logger.warning("%s has no absolute position embedding (use_absolute_position_embeddings=False); DMF's "
                       "pos_embed keeps its random initialisation", path)
    if family in HF_FAMILIES and "norm.weight" not in state:
        logger.warning("%s has no final LayerNorm (a mean-pooling model saved without its pooler); DMF's final "
                       "norm keeps its initialisation", path)
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
