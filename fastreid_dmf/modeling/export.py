"""Export a DMF checkpoint's image branch as a plain fast-reid ``Baseline`` + ViT checkpoint.

Input: a fast-reid ``Checkpointer`` file (``{"model": state_dict, ...}``, keys
``backbone.*`` of :class:`~fastreid_dmf.modeling.dmf.backbone.DMFBackbone` and
``heads.*``). Output: ``{"model": state_dict, "export_info": {...}}`` in the names
of fast-reid's ``VisionTransformer`` (``fastreid/modeling/backbones/
vision_transformer.py``, built by ``build_vit_backbone``) and its ``Baseline``
meta-architecture (``fastreid/modeling/meta_arch/baseline.py``), computing the
same image feature:

* the image projection F (``backbone.image_proj``, Linear D_i -> D, DMF Eq. 3-4)
  is folded into the patch-embedding conv: a conv followed by a linear map is a
  conv with D output channels, ``W' = W_F @ W_conv`` (over the flattened kernel)
  and ``b' = W_F b_conv + b_F``;
* LayerScale gammas (``blocks.N.ls1.gamma`` / ``ls2.gamma``, BEiT-style weights)
  are folded into ``attn.proj`` / ``mlp.fc2``: ``gamma * (W x + b) = (diag(gamma) W) x + gamma b``
  (fast-reid's ViT has no LayerScale);
* for fast-reid's ``small`` shape, whose attention uses ``qk_scale = 768 ** -0.5``
  instead of ``head_dim ** -0.5``, the query rows of ``attn.qkv`` are multiplied
  by ``head_dim ** -0.5 / 768 ** -0.5`` so the attention logits are unchanged;
* ``backbone.text_*`` (text translation, Eq. 5) is dropped;
* ``heads.*`` (BNNeck + classifier) is kept unchanged.

Test feature. fast-reid's ``EmbeddingHead`` returns, in eval mode, the feature
*after* its bottleneck (BNNeck) whatever ``MODEL.HEADS.NECK_FEAT`` says (that key
only selects the training triplet feature), so with the DMF head settings the
exported model's test feature equals DMF's ``MODEL.DMF.TEST_FEAT "after"``. For
DMF's "before" feature (the default), the fast-reid config sets
``MODEL.HEADS.WITH_BNNECK False`` and ``EMBEDDING_DIM 0``: the bottleneck is then
empty and the head returns the backbone feature; fast-reid logs the unused
``heads.bottleneck.*`` tensors as unexpected keys (harmless; re-enable the BNNeck
to fine-tune further).

fast-reid's ``build_vit_backbone`` builds only two shapes, chosen by
``MODEL.BACKBONE.DEPTH`` (:data:`FASTREID_VIT_DEPTHS`; width 768, patch 16,
LayerNorm eps 1e-6). A DMF model of another shape still exports (the state dict
is shape-agnostic), but fast-reid's builder cannot build it: build the network
with :func:`build_fastreid_vit` and the exported ``export_info["vit_kwargs"]``.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import partial

import torch
from fastreid.config import CfgNode
from fastreid.config import get_cfg as get_fastreid_cfg
from fastreid.modeling.backbones.vision_transformer import PatchEmbed_overlap, VisionTransformer
from torch import nn

from ..checkpoint_files import read_checkpoint, strip_key_prefix
from ..config.defaults import TEST_FEATS
from ..data.samplers import FASTREID_TRAIN_SAMPLERS
from ..fileio import atomic_write

__all__ = ["FASTREID_VIT_DEPTHS", "fold_image_branch", "fastreid_vit_spec", "build_fastreid_vit",
           "fastreid_eval_config", "essential_fastreid_keys", "read_dmf_checkpoint", "export_fastreid_vit"]

logger = logging.getLogger(__name__)

#: Shapes fast-reid 1.4.0's ``build_vit_backbone`` builds, by ``MODEL.BACKBONE.DEPTH``
#: (``fastreid/modeling/backbones/vision_transformer.py``; it never passes ``embed_dim`` / ``patch_size``
#: / ``norm_layer``, so those are VisionTransformer's defaults 768 / 16 / LayerNorm eps 1e-6).
FASTREID_VIT_DEPTHS: dict[str, dict] = {
    "small": dict(embed_dim=768, depth=8, num_heads=8, mlp_ratio=3.0, qkv_bias=False, qk_scale=768 ** -0.5,
                  patch_size=16, ln_eps=1e-6),
    "base": dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=True, qk_scale=None,
                 patch_size=16, ln_eps=1e-6),
}
_REQUIRED = ("backbone.patch_embed.proj.weight", "backbone.patch_embed.proj.bias", "backbone.image_proj.weight",
             "backbone.image_proj.bias", "backbone.cls_token", "backbone.pos_embed", "backbone.norm.weight")
_GAMMA = re.compile(r"^backbone\.blocks\.(\d+)\.ls([12])\.gamma$")


def fold_image_branch(state: Mapping[str, torch.Tensor], qk_scale_factor: float = 1.0,
                      source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Turn a DMF state dict into a fast-reid ``Baseline`` + ``VisionTransformer`` state dict.

    Folding is done in float64 and cast back to each tensor's dtype.

    Args:
        state: DMF model tensors (``backbone.*``, ``heads.*``; a ``module.`` prefix is stripped).
            Shapes: ``backbone.patch_embed.proj.weight`` ``(D_i, 3, p, p)``, ``.bias`` ``(D_i,)``,
            ``backbone.image_proj.weight`` ``(D, D_i)``, ``.bias`` ``(D,)``, gammas ``(D,)``.
        qk_scale_factor: multiplies the query rows (first D) of every ``attn.qkv``
            weight/bias (see :func:`fastreid_vit_spec`); 1 = unchanged.
        source: name of the checkpoint, for error messages.

    Returns:
        ``(new_state, report)``: ``new_state`` has ``backbone.patch_embed.proj.weight``
        ``(D, 3, p, p)`` and no ``image_proj`` / ``ls*`` / ``text_*`` keys;
        ``report`` = ``{"folded": [...], "dropped": [...], "copied": [...]}`` (key names).

    Raises:
        ValueError: ``state`` is not a DMF model state dict (names the missing keys and ``source``).
    """
    state = {strip_key_prefix(k, "module."): v for k, v in state.items()}
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ValueError(f"{source}: not a DMF checkpoint; missing {', '.join(missing)} (expected the 'model' "
                         "state dict of a META_ARCHITECTURE DMF run)")
    out: dict[str, torch.Tensor] = {}
    report: dict[str, list[str]] = {"folded": [], "dropped": [], "copied": []}
    gammas: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        match = _GAMMA.match(key)
        if match:
            target = "attn.proj" if match.group(2) == "1" else "mlp.fc2"
            gammas[f"backbone.blocks.{match.group(1)}.{target}"] = value
        elif key.startswith("backbone.text_"):
            report["dropped"].append(key)
        elif key.startswith(("backbone.", "heads.")):
            out[key] = value
        else:
            report["dropped"].append(key)
    # F after the patch conv -> one conv with D output channels.
    conv_w, conv_b = out["backbone.patch_embed.proj.weight"], out["backbone.patch_embed.proj.bias"]
    proj_w, proj_b = out.pop("backbone.image_proj.weight"), out.pop("backbone.image_proj.bias")
    if proj_w.shape[1] != conv_w.shape[0]:
        raise ValueError(f"{source}: backbone.image_proj.weight {tuple(proj_w.shape)} does not take the "
                         f"{conv_w.shape[0]} patch-embedding channels")
    flat = conv_w.double().reshape(conv_w.shape[0], -1)
    out["backbone.patch_embed.proj.weight"] = (proj_w.double() @ flat).reshape(
        proj_w.shape[0], *conv_w.shape[1:]).to(conv_w.dtype)
    out["backbone.patch_embed.proj.bias"] = (proj_w.double() @ conv_b.double() + proj_b.double()).to(conv_b.dtype)
    report["folded"] += ["backbone.image_proj.weight", "backbone.image_proj.bias"]
    # LayerScale into the residual branch's last linear layer.
    for prefix, gamma in sorted(gammas.items()):
        for param in ("weight", "bias"):
            key = f"{prefix}.{param}"
            if key not in out:
                raise ValueError(f"{source}: LayerScale gamma for {prefix} but no {key}")
            value = out[key]
            scale = gamma.double()[:, None] if param == "weight" else gamma.double()
            out[key] = (value.double() * scale).to(value.dtype)
        report["folded"].append(prefix.replace("attn.proj", "ls1.gamma").replace("mlp.fc2", "ls2.gamma"))
    if qk_scale_factor != 1.0:
        dim = out["backbone.cls_token"].shape[-1]
        for key in sorted(k for k in out if re.match(r"^backbone\.blocks\.\d+\.attn\.qkv\.(weight|bias)$", k)):
            value = out[key].double().clone()
            value[:dim] *= qk_scale_factor
            out[key] = value.to(out[key].dtype)
            report["folded"].append(f"{key} (query rows x {qk_scale_factor:.6g} for fast-reid's qk_scale)")
    report["copied"] = sorted(k for k in out if k not in ("backbone.patch_embed.proj.weight",
                                                          "backbone.patch_embed.proj.bias"))
    return out, report


def fastreid_vit_spec(cfg: CfgNode) -> dict:
    """fast-reid ViT matching a DMF config's image branch.

    Args:
        cfg: a DMF config (fast-reid config + :func:`~fastreid_dmf.config.add_dmf_config` keys).

    Returns:
        ``{"vit_kwargs": {...}, "depth_name": "base" | "small" | None, "qk_scale_factor": float,
        "reason": str}``: ``vit_kwargs`` are plain values for :func:`build_fastreid_vit`;
        ``depth_name`` is the ``MODEL.BACKBONE.DEPTH`` with which fast-reid's
        ``build_vit_backbone`` builds this shape (None: it cannot; ``reason`` says why).
    """
    dmf = cfg.MODEL.DMF
    stride = cfg.MODEL.BACKBONE.STRIDE_SIZE
    shape = dict(embed_dim=int(dmf.EMBED_DIM), depth=int(dmf.DEPTH), num_heads=int(dmf.NUM_HEADS),
                 mlp_ratio=float(dmf.MLP_RATIO), qkv_bias=bool(dmf.QKV_BIAS), patch_size=int(dmf.PATCH_SIZE),
                 ln_eps=float(dmf.LN_EPS))
    kwargs = dict(img_size=[int(s) for s in cfg.INPUT.SIZE_TRAIN],
                  stride_size=[int(s) for s in stride] if isinstance(stride, (list, tuple)) else int(stride),
                  **shape, qk_scale=None)
    reasons = []
    for name, known in FASTREID_VIT_DEPTHS.items():
        differ = [f"{k}={shape[k]} (fast-reid {name!r}: {known[k]})" for k in shape if shape[k] != known[k]]
        if not differ:
            head_dim = shape["embed_dim"] // shape["num_heads"]
            factor = head_dim ** -0.5 / known["qk_scale"] if known["qk_scale"] else 1.0
            return {"vit_kwargs": {**kwargs, "qk_scale": known["qk_scale"]}, "depth_name": name,
                    "qk_scale_factor": factor, "reason": ""}
        reasons.append(f"{name!r}: " + ", ".join(differ))
    reason = ("fast-reid's build_vit_backbone builds only MODEL.BACKBONE.DEPTH 'small' or 'base'; this model "
              "differs from " + "; ".join(reasons))
    return {"vit_kwargs": kwargs, "depth_name": None, "qk_scale_factor": 1.0, "reason": reason}


def build_fastreid_vit(vit_kwargs: Mapping) -> VisionTransformer:
    """fast-reid's own ``VisionTransformer`` from :func:`fastreid_vit_spec`'s ``vit_kwargs``.

    ``ln_eps`` becomes ``norm_layer=partial(nn.LayerNorm, eps=ln_eps)``. Use it for exported
    models whose shape ``build_vit_backbone`` cannot build; its ``forward`` maps float
    ``(B, 3, H, W)`` to ``(B, D, 1, 1)``.

    Raises:
        TypeError: ``vit_kwargs`` holds a key fast-reid's ``VisionTransformer`` does not take.
    """
    kwargs = dict(vit_kwargs)
    eps = kwargs.pop("ln_eps", 1e-6)
    return VisionTransformer(**kwargs, norm_layer=partial(nn.LayerNorm, eps=eps))


def _copy_common(src: CfgNode, dst: CfgNode) -> None:
    for key in dst:
        if key not in src:
            continue
        if isinstance(dst[key], CfgNode) and isinstance(src[key], CfgNode):
            _copy_common(src[key], dst[key])
        elif not isinstance(dst[key], CfgNode) and not isinstance(src[key], CfgNode):
            dst[key] = src[key]


def _check_test_feat(test_feat: str) -> None:
    if test_feat not in TEST_FEATS:
        raise ValueError(f"test_feat={test_feat!r}: expected 'before' or 'after' (MODEL.DMF.TEST_FEAT)")


def fastreid_eval_config(cfg: CfgNode, weights: str, spec: dict, test_feat: str) -> CfgNode:
    """A plain fast-reid config (no DMF keys) that evaluates the exported weights.

    Every key fast-reid knows is copied from the DMF config (datasets, input,
    heads, test settings); then ``MODEL.META_ARCHITECTURE Baseline``,
    ``MODEL.BACKBONE.NAME build_vit_backbone``, ``DEPTH`` from ``spec``,
    ``FEAT_DIM`` D, ``PRETRAIN False``, ``MODEL.WEIGHTS weights``, a fast-reid
    train sampler, ``INPUT.SIZE_TEST = SIZE_TRAIN`` (the ViT runs only at its
    build size; a difference is warned about) and ``OUTPUT_DIR``
    ``<weights without extension>_eval`` (not the DMF run's folder, whose
    ``config.yaml`` fast-reid would overwrite).
    ``test_feat "before"`` sets ``MODEL.HEADS.WITH_BNNECK False`` and
    ``EMBEDDING_DIM 0`` (module docstring).

    Raises:
        ValueError: ``spec["depth_name"]`` is None (names the reason) or ``test_feat``
            is not "before"/"after".
    """
    if spec["depth_name"] is None:
        raise ValueError(f"no fast-reid build_vit_backbone config for this model: {spec['reason']}")
    _check_test_feat(test_feat)
    out = get_fastreid_cfg()
    _copy_common(cfg, out)
    out.MODEL.META_ARCHITECTURE = "Baseline"
    out.MODEL.BACKBONE.NAME = "build_vit_backbone"
    out.MODEL.BACKBONE.DEPTH = spec["depth_name"]
    out.MODEL.BACKBONE.FEAT_DIM = spec["vit_kwargs"]["embed_dim"]
    out.MODEL.BACKBONE.PRETRAIN = False
    out.MODEL.BACKBONE.PRETRAIN_PATH = ""
    out.MODEL.WEIGHTS = weights
    if test_feat == "before":
        out.MODEL.HEADS.WITH_BNNECK = False
        out.MODEL.HEADS.EMBEDDING_DIM = 0
    if list(out.INPUT.SIZE_TEST) != list(out.INPUT.SIZE_TRAIN):
        logger.warning("INPUT.SIZE_TEST=%s differs from INPUT.SIZE_TRAIN=%s, but the ViT (position embedding, "
                       "patch grid) only runs at SIZE_TRAIN; the fast-reid config uses SIZE_TEST=SIZE_TRAIN",
                       list(out.INPUT.SIZE_TEST), list(out.INPUT.SIZE_TRAIN))
        out.INPUT.SIZE_TEST = list(out.INPUT.SIZE_TRAIN)
    if out.DATALOADER.SAMPLER_TRAIN not in FASTREID_TRAIN_SAMPLERS:  # a DMF-only sampler is replaced
        out.DATALOADER.SAMPLER_TRAIN = "NaiveIdentitySampler"
    out.OUTPUT_DIR = os.path.splitext(weights)[0] + "_eval"
    return out


def essential_fastreid_keys(fastreid_cfg: CfgNode) -> list[tuple[str, object]]:
    """The ``(KEY, value)`` pairs a bagtricks_vit-style fast-reid config needs to load the export."""
    names = ["MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.DEPTH", "MODEL.BACKBONE.FEAT_DIM",
             "MODEL.BACKBONE.STRIDE_SIZE", "MODEL.BACKBONE.PRETRAIN", "MODEL.WEIGHTS", "MODEL.PIXEL_MEAN",
             "MODEL.PIXEL_STD", "INPUT.SIZE_TRAIN", "INPUT.SIZE_TEST"]
    names += [f"MODEL.HEADS.{k}" for k in ("NAME", "NORM", "WITH_BNNECK", "EMBEDDING_DIM", "POOL_LAYER", "NECK_FEAT",
                                           "CLS_LAYER", "NUM_CLASSES", "SCALE", "MARGIN")]
    pairs = []
    for name in names:
        node = fastreid_cfg
        for part in name.split("."):
            node = node[part]
        pairs.append((name, node))
    return pairs


def read_dmf_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a fast-reid ``Checkpointer`` file (or a bare state dict).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ValueError: the file holds no state dict of tensors.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DMF checkpoint {path!r} is not a file (expected e.g. OUTPUT_DIR/model_final.pth)")
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a fast-reid checkpoint {{'model': state_dict, ...}} or a state dict")
    return state


def _check_shape(state: Mapping[str, torch.Tensor], cfg: CfgNode, path: str) -> None:
    dmf = cfg.MODEL.DMF
    width = state["backbone.cls_token"].shape[-1]
    depth = len({k.split(".")[2] for k in state if k.startswith("backbone.blocks.")})
    tokens = state["backbone.pos_embed"].shape[1]
    checks = [("MODEL.DMF.EMBED_DIM", dmf.EMBED_DIM, width), ("MODEL.DMF.DEPTH", dmf.DEPTH, depth)]
    for key, configured, found in checks:
        if configured != found:
            raise ValueError(f"config {key}={configured} but {path} has {found}; give the config of the run that "
                             "wrote the checkpoint (--config-file)")
    spec_tokens = 1 + _grid(cfg)
    if tokens != spec_tokens:
        raise ValueError(f"config INPUT.SIZE_TRAIN={list(cfg.INPUT.SIZE_TRAIN)} / MODEL.BACKBONE.STRIDE_SIZE="
                         f"{cfg.MODEL.BACKBONE.STRIDE_SIZE} give {spec_tokens} tokens but {path} has a position "
                         f"embedding for {tokens}; give the config of the run that wrote the checkpoint")


def _grid(cfg: CfgNode) -> int:
    """Patch count of the config's image size, computed by the patch embedding DMFBackbone itself uses."""
    return PatchEmbed_overlap(img_size=tuple(cfg.INPUT.SIZE_TRAIN), patch_size=cfg.MODEL.DMF.PATCH_SIZE,
                              stride_size=cfg.MODEL.BACKBONE.STRIDE_SIZE, embed_dim=1).num_patches


def export_fastreid_vit(checkpoint: str, output: str, cfg: CfgNode, test_feat: str | None = None,
                        overwrite: bool = False) -> dict:
    """Export a DMF checkpoint as a fast-reid ``Baseline`` + ViT checkpoint (see module docstring).

    Writes ``output`` (``{"model": state_dict, "export_info": {...}}``, plain
    types only, so fast-reid's ``Checkpointer`` loads it with ``weights_only``)
    and, when fast-reid's ``build_vit_backbone`` can build the shape, the config
    ``<output without extension>.yaml`` for ``fast-reid tools/train_net.py
    --config-file <yaml> --eval-only``.

    Args:
        checkpoint: DMF checkpoint (fast-reid ``Checkpointer`` file).
        output: path of the exported ``.pth``.
        cfg: the DMF config of the run that wrote ``checkpoint``.
        test_feat: "before" / "after": which DMF test feature fast-reid's
            evaluation reproduces; None = ``cfg.MODEL.DMF.TEST_FEAT``.
        overwrite: replace existing output files.

    Returns:
        ``{"output", "config" (path or None), "depth_name", "vit_kwargs", "test_feat",
        "folded", "dropped", "copied", "reason", "fastreid_keys"}``.

    Raises:
        FileExistsError: ``output`` or its ``.yaml`` exists and ``overwrite`` is False (names the path).
        FileNotFoundError, ValueError: see :func:`read_dmf_checkpoint`, :func:`fold_image_branch`;
            the config does not match the checkpoint (names the key).
    """
    test_feat = test_feat or cfg.MODEL.DMF.TEST_FEAT
    _check_test_feat(test_feat)
    spec = fastreid_vit_spec(cfg)
    config_path = os.path.splitext(output)[0] + ".yaml" if spec["depth_name"] else None
    for path in (output, config_path):
        if path and os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} already exists; pass --overwrite (overwrite=True) to replace it")
    state = read_dmf_checkpoint(checkpoint)
    new_state, report = fold_image_branch(state, spec["qk_scale_factor"], source=checkpoint)
    _check_shape(new_state, cfg, checkpoint)
    fastreid_cfg = fastreid_eval_config(cfg, os.path.abspath(output), spec, test_feat) if config_path else None
    info = {"source": os.path.abspath(checkpoint), "depth_name": spec["depth_name"] or "",
            "vit_kwargs": spec["vit_kwargs"], "test_feat": test_feat, "folded": report["folded"],
            "dropped": report["dropped"]}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_write(output, lambda handle: torch.save({"model": new_state, "export_info": info}, handle))
    if fastreid_cfg is not None:
        with open(config_path, "w") as handle:
            handle.write(f"# fast-reid config for {os.path.basename(output)} (exported from {checkpoint});\n"
                         f"# test feature = DMF's MODEL.DMF.TEST_FEAT {test_feat!r}. Datasets registered only by\n"
                         "# fastreid_dmf (FineGPR, SynthMarket, SynthMSMT, VTestReID) need `import fastreid_dmf`.\n")
            handle.write(fastreid_cfg.dump())
    logger.info("Exported %s -> %s (%d tensors)", checkpoint, output, len(new_state))
    logger.info("Folded: %s", ", ".join(report["folded"]))
    if report["dropped"]:
        logger.info("Dropped (text branch / not part of fast-reid's Baseline): %s", ", ".join(report["dropped"]))
    if spec["depth_name"] is None:
        logger.warning("%s. Build the network with fastreid_dmf.modeling.export.build_fastreid_vit(%s)",
                       spec["reason"], spec["vit_kwargs"])
    return {"output": output, "config": config_path, "depth_name": spec["depth_name"],
            "vit_kwargs": spec["vit_kwargs"], "test_feat": test_feat, "reason": spec["reason"],
            "fastreid_keys": essential_fastreid_keys(fastreid_cfg) if fastreid_cfg is not None else [], **report}
