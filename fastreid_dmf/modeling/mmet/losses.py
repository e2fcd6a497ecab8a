"""Pre-training losses of MMET (masked multimodal modelling).

MMET (Xiang et al., arXiv 2304.09498, "Masked Multimodal Modeling") pre-trains
its image, text and fusion encoders with the FLAVA objectives (Singh et al.,
CVPR 2022; code: ``facebookresearch/multimodal`` and transformers'
``FlavaForPreTraining``): masked image modelling (MIM), masked language
modelling (MLM), image-text matching (ITM) and a global contrastive loss.
MIM comes in two flavours here: FLAVA/BEiT's prediction of DALL-E dVAE
codebook ids (``mim_token_loss``) and MAE's regression of normalised pixels
(``mim_pixel_loss``, He et al. 2022).

All functions are pure: they take tensors (predictions, targets, masks) and
return a scalar float tensor; the heads that produce the predictions live in
the model. Patch masks are bool ``(B, N)`` with True = masked, the row-major
flattening of ``fastreid_dmf.data.masking``'s ``(H, W)`` grids, which is also
the order of ``patchify`` and of a stride-``p`` ``Conv2d`` patch embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["patchify", "mim_pixel_loss", "mim_token_loss", "mlm_loss", "itm_loss", "contrastive_loss"]


def _zero_with_graph(tensor: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that stays connected to ``tensor``'s autograd graph (backward gives zero gradients)."""
    return tensor.sum() * 0


def _check_class_ids(ids: torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    """``ids`` as int64 after checking they are integers in ``[0, num_classes)``."""
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"{what} must be an integer tensor, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_classes):
        raise ValueError(f"{what} must lie in [0, {num_classes}), got values in [{int(ids.min())}, {int(ids.max())}]")
    return ids.long()


def _check_patch_mask(patch_mask: torch.Tensor, shape: tuple[int, int]) -> None:
    if patch_mask.dtype != torch.bool or tuple(patch_mask.shape) != shape:
        raise ValueError(f"expected a bool patch_mask of shape {shape}, got {patch_mask.dtype} "
                         f"{tuple(patch_mask.shape)}")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into flattened non-overlapping square patches (MAE's ``patchify``).

    Patches come in row-major grid order, the order of a stride-``p``
    ``Conv2d`` patch embedding followed by ``.flatten(2).transpose(1, 2)``;
    inside a patch the values are ordered (row, column, channel), i.e.
    ``out[b, i * W/p + j, (r * p + c) * C + k] == images[b, k, i * p + r, j * p + c]``.
    Mirrors ``MaskedAutoencoderViT.patchify`` of MAE (facebookresearch/mae,
    ``models_mae.py``).

    Args:
        images: float ``(B, C, H, W)`` (C = 3 for RGB).
        patch_size: ``p`` > 0; H and W must be multiples of it.

    Returns:
        ``(B, N, p * p * C)`` with ``N = (H / p) * (W / p)``, same dtype and device as ``images``.

    Raises:
        ValueError: ``images`` is not 4-D, ``patch_size`` is not positive, or H or W is not a multiple of it.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images (B, C, H, W), got shape {tuple(images.shape)}")
    if patch_size <= 0:
        raise ValueError(f"patch_size must be positive, got {patch_size}")
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"image size {height}x{width} (H x W) is not a multiple of patch_size {patch_size}")
    rows, cols = height // patch_size, width // patch_size
    grid = images.reshape(batch, channels, rows, patch_size, cols, patch_size)
    # (B, C, rows, r, cols, c) -> (B, rows, cols, r, c, C)
    grid = grid.permute(0, 2, 4, 3, 5, 1)
    return grid.reshape(batch, rows * cols, patch_size * patch_size * channels)


def mim_pixel_loss(pred: torch.Tensor, images: torch.Tensor, patch_mask: torch.Tensor, patch_size: int,
                   norm_pix: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Masked image modelling by regression of (normalised) pixels, as MAE.

    He et al. 2022 (MAE), Sec. 3 "normalized pixels" and ``forward_loss`` of
    ``models_mae.py``: the target is ``patchify(images, patch_size)``; with
    ``norm_pix`` each target patch is standardised by its own statistics,
    ``(t - mean) / sqrt(var + eps)`` with ``var`` the unbiased variance over
    the patch's ``p * p * C`` values (``torch.var``'s default, as MAE). The loss
    of a patch is the mean squared error over its values; the result averages
    it over the masked patches of the whole batch only (each masked patch
    weighs the same, whatever its image). Unmasked predictions are never
    read, so they get zero gradient and a NaN there does not spread.

    Args:
        pred: float ``(B, N, p * p * C)`` predicted patches, in ``patchify``'s order.
        images: float ``(B, C, H, W)`` the original (unmasked) images, ``N = (H / p) * (W / p)``.
        patch_mask: bool ``(B, N)``, True = masked (predicted).
        patch_size: ``p``.
        norm_pix: standardise each target patch (MAE's ``norm_pix_loss``).
        eps: added to the variance before the square root.

    Returns:
        Scalar float tensor; ``pred.sum() * 0`` (zero, still in the graph) when no patch is masked.

    Raises:
        ValueError: ``images``/``patch_size`` invalid (see ``patchify``), ``pred`` not of the target's shape,
            or ``patch_mask`` not bool ``(B, N)``.
    """
    target = patchify(images, patch_size)
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"pred has shape {tuple(pred.shape)} but the patchified images {tuple(images.shape)} "
                         f"with patch_size {patch_size} have shape {tuple(target.shape)}")
    _check_patch_mask(patch_mask, tuple(target.shape[:2]))
    if not bool(patch_mask.any()):
        return _zero_with_graph(pred)
    target = target[patch_mask]
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + eps).sqrt()
    return (pred[patch_mask] - target).pow(2).mean(dim=-1).mean()


def mim_token_loss(logits: torch.Tensor, target_ids: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
    """Masked image modelling by classification of visual-token ids, as FLAVA/BEiT.

    The targets are the DALL-E dVAE codebook ids of the image's patches
    (BEiT, Bao et al. 2022; FLAVA's ``mim`` and ``mmm_image`` losses in
    ``FlavaForPreTraining.forward``, which set unmasked labels to the ignore
    index and take ``cross_entropy`` over the rest). Cross-entropy per masked
    patch, averaged over all masked patches of the batch.

    Args:
        logits: float ``(B, N, V)`` scores over the ``V`` codebook entries.
        target_ids: integer (int64) ``(B, N)`` codebook ids in ``[0, V)``; only masked positions are read.
        patch_mask: bool ``(B, N)``, True = masked (predicted).

    Returns:
        Scalar float tensor; ``logits.sum() * 0`` (zero, still in the graph) when no patch is masked.

    Raises:
        ValueError: ``logits`` not 3-D, ``target_ids`` or ``patch_mask`` not ``(B, N)``, ``patch_mask`` not
            bool, ``target_ids`` not integer, or a masked id outside ``[0, V)``.
    """
    if logits.dim() != 3 or tuple(target_ids.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"expected logits (B, N, V) and target_ids (B, N), got {tuple(logits.shape)} and "
                         f"{tuple(target_ids.shape)}")
    _check_patch_mask(patch_mask, tuple(logits.shape[:2]))
    if not bool(patch_mask.any()):
        return _zero_with_graph(logits)
    ids = _check_class_ids(target_ids[patch_mask], logits.shape[-1], "masked target_ids")
    return F.cross_entropy(logits[patch_mask], ids)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Masked language modelling cross-entropy (BERT; FLAVA's ``mlm`` and ``mmm_text`` losses).

    Positions whose label is ``ignore_index`` (unmasked, special and padding
    tokens; ``fastreid_dmf.data.masking.IGNORE_INDEX``) are skipped; the
    result is the mean cross-entropy over the labelled positions of the whole
    batch, as FLAVA's ``cross_entropy`` on the filtered tokens.

    Args:
        logits: float ``(B, L, V)`` scores over the vocabulary.
        labels: integer (int64) ``(B, L)``, a token id in ``[0, V)`` or ``ignore_index``.
        ignore_index: label value of positions not predicted.

    Returns:
        Scalar float tensor; ``logits.sum() * 0`` (zero, still in the graph) when no position is labelled.

    Raises:
        ValueError: ``logits`` not 3-D, ``labels`` not ``(B, L)`` or not integer, or a label outside
            ``[0, V)`` that is not ``ignore_index``.
    """
    if logits.dim() != 3 or tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"expected logits (B, L, V) and labels (B, L), got {tuple(logits.shape)} and "
                         f"{tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    labelled = labels != ignore_index
    if not bool(labelled.any()):
        return _zero_with_graph(logits)
    ids = _check_class_ids(labels[labelled], logits.shape[-1], "labels")
    return F.cross_entropy(logits[labelled], ids)


def itm_loss(logits: torch.Tensor, matched: torch.Tensor) -> torch.Tensor:
    """Image-text matching: binary classification of (image, text) pairs (FLAVA's ``itm`` loss).

    Class 1 = the text describes the image, class 0 = a mismatched pair, as
    FLAVA's ``itm_labels``. Mean cross-entropy over the pairs.

    Args:
        logits: float ``(B, 2)`` scores of (mismatched, matched).
        matched: bool ``(B,)``, True = matched pair.

    Returns:
        Scalar float tensor.

    Raises:
        ValueError: ``logits`` not ``(B, 2)`` with B > 0, or ``matched`` not bool ``(B,)``.
    """
    if logits.dim() != 2 or logits.shape[1] != 2 or logits.shape[0] == 0:
        raise ValueError(f"expected logits (B, 2) with B > 0, got {tuple(logits.shape)}")
    if matched.dtype != torch.bool or tuple(matched.shape) != (logits.shape[0],):
        raise ValueError(f"expected a bool matched of shape ({logits.shape[0]},), got {matched.dtype} "
                         f"{tuple(matched.shape)}")
    return F.cross_entropy(logits, matched.long())


def contrastive_loss(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor,
                     logit_scale: torch.Tensor | float, targets: torch.Tensor | None = None,
                     max_scale: float = 100.0) -> torch.Tensor:
    """FLAVA's global contrastive loss: symmetric InfoNCE between images and texts (CLIP).

    Both embeddings are L2-normalised; ``logits = s * img @ txt.T`` with
    ``s = exp(logit_scale).clamp(max=max_scale)`` (``logit_scale`` is the log
    of the inverse temperature, FLAVA's learnable ``logit_scale``; FLAVA
    clamps the parameter itself to ``[0, log 100]`` in place, here the
    scale is clamped, which gives no gradient to ``logit_scale`` above the
    cap). The loss is ``(CE(image -> text) + CE(text -> image)) / 2``, each a
    mean over the B rows of ``logits`` and of ``logits.T`` respectively.
    It uses the rows it is given: MMET passes the global batch gathered from all processes
    (``fastreid_dmf.modeling.distributed.gather_across_processes``), as FLAVA gathers.

    With ``targets=None`` the positive of image ``i`` is text ``i`` and vice
    versa (FLAVA's ``FlavaGlobalContrastiveHead`` labels ``arange(B)``).

    With identity ``targets`` the target distribution of row ``i`` (in both
    directions) is uniform over the columns ``j`` with
    ``targets[j] == targets[i]`` and the loss is the soft-label
    cross-entropy ``-sum_j q_ij log softmax(logits_i)_j``. This deviates from
    FLAVA on purpose: a Re-ID PK batch holds K images of each person, and
    their descriptions say the same thing, so FLAVA's one-hot targets would
    treat the other K - 1 texts of the same person as negatives and push
    true matches apart (false negatives). The soft target counts them as
    positives, in the spirit of IRRA's similarity-distribution matching
    (Jiang & Ye, CVPR 2023). When all targets differ it equals FLAVA's loss.

    Args:
        image_embeddings: float ``(B, D)``, pair ``i`` is (image ``i``, text ``i``).
        text_embeddings: float ``(B, D)``.
        logit_scale: scalar (0-d or one-element) tensor or float, log of the inverse temperature.
        targets: optional integer ``(B,)`` identity labels of the pairs.
        max_scale: upper bound of ``exp(logit_scale)`` (FLAVA/CLIP: 100).

    Returns:
        Scalar float tensor.

    Raises:
        ValueError: embeddings not both ``(B, D)`` with the same shape and B > 0, ``logit_scale`` not a
            single value, or ``targets`` not an integer ``(B,)`` tensor.
    """
    if image_embeddings.dim() != 2 or image_embeddings.shape != text_embeddings.shape or not len(image_embeddings):
        raise ValueError(f"expected image and text embeddings of the same shape (B, D) with B > 0, got "
                         f"{tuple(image_embeddings.shape)} and {tuple(text_embeddings.shape)}")
    scale = torch.as_tensor(logit_scale, dtype=image_embeddings.dtype, device=image_embeddings.device)
    if scale.numel() != 1:
        raise ValueError(f"logit_scale must be a single value, got shape {tuple(scale.shape)}")
    scale = scale.reshape(()).exp().clamp(max=max_scale)
    image = F.normalize(image_embeddings, dim=-1)
    text = F.normalize(text_embeddings, dim=-1)
    logits_per_image = scale * image @ text.t()
    logits_per_text = logits_per_image.t()
    batch = image_embeddings.shape[0]
    if targets is None:
        labels = torch.arange(batch, device=image_embeddings.device)
        return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
    if tuple(targets.shape) != (batch,) or targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer ({batch},), got {targets.dtype} {tuple(targets.shape)}")
    same = (targets[:, None] == targets[None, :]).to(logits_per_image.dtype)
    soft = same / same.sum(dim=1, keepdim=True)  # symmetric "same", so one matrix serves both directions
    return (F.cross_entropy(logits_per_image, soft) + F.cross_entropy(logits_per_text, soft)) / 2
