"""Where a DMF / MMET model looks: Grad-CAM / Eigen-CAM maps and attention rollout over its ViT blocks.

DMF (Xiang et al., arXiv 2211.00933) Fig. 5 shows class-activation maps of "DMF w/o Text" beside "DMF". This
module computes such maps for any DMF or MMET checkpoint (the pictures are drawn by :mod:`.figures`):

* **Grad-CAM** (Selvaraju et al., ICCV 2017) with ``pytorch_grad_cam.GradCAM`` on the last block's first
  LayerNorm (``blocks[-1].norm1``), patch tokens reshaped to the patch grid (:func:`vit_reshape_transform`,
  as in pytorch-grad-cam's ViT tutorial). A Re-ID model has no class scores at test time, so the target is a
  similarity of the image's test feature (:class:`FeatureSimilarityTarget`, the embedding-similarity targets
  of pytorch-grad-cam's tutorial "Pixel Attribution for embeddings"): by default the projection of the
  feature on its own detached direction, ``<f, f0 / |f0|>`` (the cosine of ``f`` with its own ``f0`` is 1
  with a zero gradient, so Grad-CAM would be blank), or with a reference image the cosine similarity to the
  reference's feature (the score a cosine ``TEST.METRIC`` ranks by).
* **Eigen-CAM** (Muhammad & Yeasin, IJCNN 2020; ``pytorch_grad_cam.EigenCAM``): the first principal
  component of the same activations, no target needed. The DMF paper cites this work for its Fig. 5.
* **Attention rollout** (Abnar & Zuidema, ACL 2020): each block's attention probabilities averaged over
  heads, plus the identity (residual connection), rows renormalised, multiplied through the blocks; the
  [cls] row over the patches is the map (:func:`attention_rollout`, :func:`image_rollout`). timm's blocks
  use fused attention, which never materialises the probabilities, so :func:`captured_attentions`
  recomputes ``softmax(q k^T * scale)`` from each block's ``attn.qkv`` on its (normed) input in a
  forward hook.
* **Text**: the rollout of the text [cls] over the description's tokens (:func:`text_token_attention`):
  DMF through the shared blocks (with ``text_tokens``' valid mask), MMET through its ``transformers`` text
  encoder (``output_attentions=True`` with eager attention).

All maps are float32 in [0, 1] (min-max scaled per image by ``pytorch_grad_cam.utils.image.scale_cam_image``)
at the model's test input size ``(H, W)`` (``INPUT.SIZE_TEST``), upsampled bilinearly from the patch grid.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CAM_METHODS", "METHODS", "FeatureSimilarityTarget", "VitParts", "attention_rollout", "cam_maps",
           "captured_attentions", "image_maps", "image_rollout", "model_has_text", "text_token_attention",
           "vit_parts", "vit_reshape_transform"]

#: Methods computed with ``pytorch_grad_cam`` (on ``blocks[-1].norm1``).
CAM_METHODS = ("gradcam", "eigencam")
#: Every value of ``--method``.
METHODS = CAM_METHODS + ("rollout",)


@dataclass(frozen=True)
class VitParts:
    """The image ViT of a DMF or MMET model, as the map methods need it.

    Attributes:
        blocks: the timm ``Block`` s the image tokens pass through, in order ([cls] token first).
        grid: ``(rows, columns)`` of the patch grid; tokens = 1 + rows x columns.
        arch: the meta-architecture name, ``"DMF"`` or ``"MMET"``.
    """

    blocks: nn.ModuleList
    grid: tuple[int, int]
    arch: str


def vit_parts(model: nn.Module) -> VitParts:
    """The image ViT's blocks and patch grid of a DMF model (``backbone.blocks``, ``backbone.patch_embed``
    ``num_y`` x ``num_x``) or an MMET model (``backbone.image_encoder.blocks`` / ``.grid``).

    Raises:
        TypeError: ``model`` is neither (the message names its type).
    """
    backbone = getattr(model, "backbone", None)
    encoder = getattr(backbone, "image_encoder", None)
    if encoder is not None and hasattr(encoder, "blocks") and hasattr(encoder, "grid"):
        return VitParts(encoder.blocks, tuple(int(v) for v in encoder.grid), "MMET")
    if backbone is not None and hasattr(backbone, "blocks") and hasattr(backbone, "patch_embed") \
            and hasattr(backbone, "text_tokens"):
        embed = backbone.patch_embed
        return VitParts(backbone.blocks, (int(embed.num_y), int(embed.num_x)), "DMF")
    raise TypeError(f"{type(model).__name__} is not a DMF or MMET model (no ViT image encoder with blocks and a "
                    "patch grid); attention maps need MODEL.META_ARCHITECTURE DMF or MMET")


def model_has_text(model: nn.Module) -> bool:
    """Whether a DMF / MMET model has a text encoder (``backbone.text_encoder`` is not None)."""
    return getattr(getattr(model, "backbone", None), "text_encoder", None) is not None


def vit_reshape_transform(grid: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """pytorch-grad-cam ``reshape_transform`` for a ViT: ``(B, 1 + R*C, D)`` tokens -> ``(B, D, R, C)`` maps.

    The [cls] token (first) is dropped and the patch tokens are laid out row-major on the ``grid`` ``(R, C)``,
    the order of fast-reid's ``PatchEmbed_overlap`` (``flatten(2)`` of its conv output), as in
    pytorch-grad-cam's ``vit_example.py``.

    Raises:
        ValueError: (when called) the token count is not 1 + R x C.
    """
    rows, cols = grid

    def reshape(tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 3 or tokens.shape[1] != 1 + rows * cols:
            raise ValueError(f"ViT tokens of shape {tuple(tokens.shape)}: expected (batch, 1 + {rows}x{cols}, "
                             "width) for the model's patch grid")
        patches = tokens[:, 1:, :].reshape(tokens.shape[0], rows, cols, tokens.shape[2])
        return patches.permute(0, 3, 1, 2)

    return reshape


class FeatureSimilarityTarget:
    """pytorch-grad-cam target: a similarity of a test feature to a fixed (detached) reference feature.

    After pytorch-grad-cam's ``SimilarityToConceptTarget`` (tutorial "Pixel Attribution for embeddings").

    Args:
        reference: float ``(D,)`` reference feature (detached here).
        cosine: True: ``cos(f, reference)`` (a reference image's feature); False: ``<f, reference / |reference|>``,
            used with the image's own feature, where the cosine would be constant 1 with a zero gradient.

    Call: float ``(D,)`` test feature of one image -> scalar tensor (differentiable in the feature).
    """

    def __init__(self, reference: torch.Tensor, cosine: bool) -> None:
        self.reference = reference.detach()
        self.cosine = bool(cosine)

    def __call__(self, model_output: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        reference = self.reference.to(model_output.device, model_output.dtype)
        if self.cosine:
            return F.cosine_similarity(model_output, reference, dim=0)
        return (model_output * F.normalize(reference, dim=0)).sum()


def cam_maps(model: nn.Module, images: torch.Tensor, method: str = "gradcam",
             reference: torch.Tensor | None = None) -> np.ndarray:
    """Grad-CAM or Eigen-CAM maps of a DMF / MMET model's test feature (``pytorch_grad_cam``).

    Target layer: the last block's ``norm1`` (its output is what the last attention reads); activations
    reshaped by :func:`vit_reshape_transform`. Grad-CAM's target is :class:`FeatureSimilarityTarget` (see the
    module docstring); Eigen-CAM has none.

    Args:
        model: a DMF or MMET model (eval mode; the batch is run with gradients on).
        images: float32 ``(B, 3, H, W)`` in 0..255, RGB, at ``INPUT.SIZE_TEST``.
        method: "gradcam" or "eigencam".
        reference: optional float ``(D,)`` test feature of a reference image (Grad-CAM only): the target is
            then the cosine similarity to it instead of each image's own feature.

    Returns:
        float32 ``(B, H, W)`` maps in [0, 1] (ReLU, min-max scaled per image, bilinearly upsampled by the
        library from the ``(rows, cols)`` patch grid).

    Raises:
        ValueError: unknown method, or ``reference`` with Eigen-CAM.
        TypeError: not a DMF / MMET model.
    """
    from pytorch_grad_cam import EigenCAM, GradCAM

    from ...engine.inference import ImageFeatureModel

    if method not in CAM_METHODS:
        raise ValueError(f"CAM method {method!r}: expected one of {CAM_METHODS}")
    if reference is not None and method != "gradcam":
        raise ValueError(f"a reference image sets Grad-CAM's target; {method!r} has no target")
    parts = vit_parts(model)
    feature_model = ImageFeatureModel(model)
    transform = vit_reshape_transform(parts.grid)
    layers = [parts.blocks[-1].norm1]
    device = next(model.parameters()).device
    images = images.to(device=device, dtype=torch.float32)
    with torch.enable_grad():
        if method == "gradcam":
            with torch.no_grad():
                own = feature_model(images)
            targets = [FeatureSimilarityTarget(reference if reference is not None else feature,
                                               cosine=reference is not None) for feature in own]
            cam = GradCAM(model=feature_model, target_layers=layers, reshape_transform=transform)
        else:
            targets = None
            cam = EigenCAM(model=feature_model, target_layers=layers, reshape_transform=transform)
        try:
            # The input needs a gradient only if no parameter before the target layer has one.
            maps = cam(input_tensor=images.clone().requires_grad_(True), targets=targets)
        finally:
            cam.activations_and_grads.release()  # not ``with cam``: its __exit__ swallows IndexError
    model.zero_grad(set_to_none=True)
    return np.asarray(maps, dtype=np.float32)


@contextlib.contextmanager
def captured_attentions(blocks: Sequence[nn.Module]) -> Iterator[list[torch.Tensor]]:
    """Collect the attention probabilities of timm ``Block`` s while the context is open.

    A forward hook on each block's ``attn`` (timm ``Attention``) recomputes, from its input (the block's
    ``norm1`` output) and ``attn_mask`` keyword, the head-averaged ``softmax(q k^T * scale)`` that fused SDPA
    never materialises: ``q, k`` from ``attn.qkv`` (then ``q_norm`` / ``k_norm``), boolean masks as SDPA reads
    them (True = may attend), float masks added.

    Yields:
        A list that receives one float32 ``(B, N, N)`` tensor per block call (rows: queries, columns: keys;
        rows sum to 1), in call order; detached.
    """
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
        x = args[0] if args else kwargs["x"]
        mask = kwargs.get("attn_mask", args[1] if len(args) > 1 else None)
        batch, tokens, _ = x.shape
        with torch.no_grad():
            qkv = module.qkv(x).reshape(batch, tokens, 3, module.num_heads, module.head_dim).permute(2, 0, 3, 1, 4)
            q, k = module.q_norm(qkv[0]), module.k_norm(qkv[1])
            scores = (q.float() * module.scale) @ k.float().transpose(-2, -1)  # (B, heads, N, N)
            if mask is not None:
                if mask.dtype == torch.bool:
                    scores = scores.masked_fill(~mask, float("-inf"))
                else:
                    scores = scores + mask.float()
            captured.append(scores.softmax(dim=-1).mean(dim=1).detach())

    handles = [block.attn.register_forward_hook(hook, with_kwargs=True) for block in blocks]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def attention_rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema, ACL 2020, Eq. 1 with Sec. 3's residual term).

    ``A~_l = (A_l + I) / rowsum``, ``rollout = A~_L @ ... @ A~_1``: how much each output token draws on each
    input token through attention and the residual connections.

    Args:
        attentions: one float ``(B, N, N)`` head-averaged, row-stochastic attention matrix per layer, first
            layer first (rows: queries).

    Returns:
        float32 ``(B, N, N)``, row-stochastic (every row sums to 1; entries >= 0).

    Raises:
        ValueError: no layers, or matrices of different or non-square shapes.
    """
    if len(attentions) == 0:
        raise ValueError("attention rollout needs at least one layer's attention")
    shape = attentions[0].shape
    if len(shape) != 3 or shape[1] != shape[2] or any(a.shape != shape for a in attentions):
        raise ValueError(f"attention matrices of shapes {[tuple(a.shape) for a in attentions]}: expected equal "
                         "(batch, tokens, tokens)")
    eye = torch.eye(shape[1], dtype=torch.float32, device=attentions[0].device)
    rollout = eye.expand(shape[0], -1, -1)
    for attention in attentions:
        mixed = attention.float() + eye
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        rollout = mixed @ rollout
    return rollout


def image_rollout(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Attention rollout of the image [cls] over the patches of a DMF / MMET model's image ViT.

    Args:
        model: a DMF or MMET model in eval mode.
        images: float32 ``(B, 3, H, W)`` in 0..255, RGB, at ``INPUT.SIZE_TEST``.

    Returns:
        float32 ``(B, rows, cols)`` on the CPU: the [cls] row of :func:`attention_rollout` over the patch
        tokens (the rest of the row is the [cls] token itself), on the patch grid; values in [0, 1], summing
        to at most 1 per image.

    Raises:
        TypeError: not a DMF / MMET model. RuntimeError: the forward pass did not run every block once.
    """
    parts = vit_parts(model)
    with captured_attentions(parts.blocks) as attentions, torch.no_grad():
        model.image_test_features(images)
    if len(attentions) != len(parts.blocks):
        raise RuntimeError(f"captured {len(attentions)} attention maps for {len(parts.blocks)} blocks")
    rows, cols = parts.grid
    cls_row = attention_rollout(attentions)[:, 0, 1:]
    return cls_row.reshape(-1, rows, cols).cpu()


def image_maps(model: nn.Module, images: torch.Tensor, method: str,
               reference: torch.Tensor | None = None) -> np.ndarray:
    """Maps of ``method`` ("gradcam", "eigencam", "rollout") for a batch, all at the input size.

    Args:
        model, images, reference: see :func:`cam_maps` (``reference`` for Grad-CAM only).

    Returns:
        float32 ``(B, H, W)`` in [0, 1]: :func:`cam_maps`, or :func:`image_rollout` min-max scaled and
        bilinearly upsampled with ``pytorch_grad_cam.utils.image.scale_cam_image`` (as the CAM maps are).

    Raises:
        ValueError: unknown method, or ``reference`` with another method than Grad-CAM.
    """
    from pytorch_grad_cam.utils.image import scale_cam_image

    if method in CAM_METHODS:
        return cam_maps(model, images, method, reference)
    if method != "rollout":
        raise ValueError(f"attention method {method!r}: expected one of {METHODS}")
    if reference is not None:
        raise ValueError("a reference image sets Grad-CAM's target; 'rollout' has no target")
    grid_maps = image_rollout(model, images).numpy()
    height, width = images.shape[-2:]
    return np.asarray(scale_cam_image(grid_maps, (int(width), int(height))), dtype=np.float32)


def text_token_attention(model: nn.Module, text: str) -> tuple[list[str], np.ndarray]:
    """Attention rollout of the text [cls] over a description's tokens (the text half of DMF Fig. 5).

    * DMF: the description's tokens (``text_tokens``: DMF's text [cls] + the frozen encoder's tokens, padding
      masked by its valid mask) through the shared ``blocks``; bars for every tokenizer token (the encoder's
      own [CLS] / [SEP] included), DMF's text [cls] being the row rolled out.
    * MMET: the ``transformers`` text encoder's attentions (``output_attentions=True``, eager attention for
      the call), the tokenizer's first token ([CLS] / <s>) being the row rolled out; bars for the others.

    Args:
        model: a DMF or MMET model with a text encoder, eval mode.
        text: one non-empty description.

    Returns:
        ``(tokens, weights)``: the tokenizer's token strings (truncated as the model truncates) and float32
        ``(T,)`` rollout weights, one per token, >= 0, summing to at most 1 (the rest is the [cls] itself).

    Raises:
        ValueError: the model has no text encoder, or an empty description.
        TypeError: not a DMF / MMET model.
    """
    if not text:
        raise ValueError("--text: got an empty description")
    parts = vit_parts(model)
    if not model_has_text(model):
        raise ValueError("this model has no text encoder (MODEL.DMF.TEXT_ENCODER.NAME is empty), so --text "
                         "cannot be shown")
    backbone = model.backbone
    if parts.arch == "DMF":
        encoder = backbone.text_encoder
        ids = encoder.tokenize([text])["input_ids"][0]
        with captured_attentions(backbone.blocks) as attentions, torch.no_grad():
            tokens, valid = backbone.text_tokens([text])
            backbone._encode(tokens, valid)
        length = int(valid[0].sum()) - 1  # words after DMF's text [cls]
        labels = encoder.tokenizer.convert_ids_to_tokens(ids[:length].tolist())
        weights = attention_rollout(attentions)[0, 0, 1:1 + length]
        return list(labels), weights.cpu().numpy().astype(np.float32)
    text_encoder = backbone.text_encoder
    batch = text_encoder.tokenize([text], model.device)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
              "output_attentions": True, "return_dict": True}
    if text_encoder._takes_token_types:
        inputs["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    encoder = text_encoder.encoder
    saved = encoder.config._attn_implementation
    try:
        encoder.set_attn_implementation("eager")  # SDPA returns no attention probabilities
        with torch.no_grad():
            result = encoder(**inputs)
    finally:
        encoder.set_attn_implementation(saved)
    if not result.attentions:
        raise RuntimeError(f"text encoder {type(encoder).__name__} returned no attentions")
    attentions = [layer.float().mean(dim=1) for layer in result.attentions]  # (1, L, L) each
    length = int(batch["attention_mask"][0].sum())
    labels = text_encoder.tokenizer.convert_ids_to_tokens(batch["input_ids"][0, 1:length].tolist())
    weights = attention_rollout(attentions)[0, 0, 1:length]
    return list(labels), weights.cpu().numpy().astype(np.float32)
