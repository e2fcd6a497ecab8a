"""Soft-margin batch-hard triplet loss of DMF (Eq. 1).

DMF (Xiang et al., arXiv 2211.00933) Eq. 1:
``L = log(1 + exp(||x_a - x_p||^2 - ||x_a - x_n||^2))`` with, per anchor, the
hardest positive and hardest negative of the batch (Hermans et al. 2017,
"In Defense of the Triplet Loss"). fast-reid's ``triplet_loss``
(``fastreid/modeling/losses/triplet_loss.py``) computes the same with
non-squared distances; ``squared=False`` reproduces it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pairwise_distances", "batch_hard_triplet_loss"]


def pairwise_distances(features: torch.Tensor, squared: bool) -> torch.Tensor:
    """Euclidean distance matrix.

    Args:
        features: float ``(B, D)``.
        squared: return ``||a - b||^2`` instead of ``||a - b||``.

    Returns:
        float ``(B, B)``, >= 0.
    """
    sq_norm = features.pow(2).sum(dim=1, keepdim=True)
    dist = (sq_norm + sq_norm.t() - 2.0 * features @ features.t()).clamp(min=1e-12)
    return dist if squared else dist.sqrt()


def batch_hard_triplet_loss(features: torch.Tensor, targets: torch.Tensor, margin: float = 0.0,
                            squared: bool = True) -> torch.Tensor:
    """Batch-hard triplet loss over a (possibly mixed image/text) batch.

    Positives are all other samples with the same identity, whatever their
    modality, so an image and a text of one person pull together.

    Args:
        features: float ``(B, D)`` global features (before the BNNeck).
        targets: int ``(B,)`` identity labels.
        margin: 0 = soft margin (Eq. 1, ``softplus(d_ap - d_an)``);
            > 0 = hinge ``relu(d_ap - d_an + margin)``.
        squared: squared distances (Eq. 1) or plain Euclidean (fast-reid).

    Returns:
        Scalar float tensor, mean over anchors that have a positive and a negative.

    Raises:
        ValueError: shapes disagree, or no anchor has both a positive and a
            negative (a batch needs >= 2 identities with >= 2 samples).
    """
    if features.dim() != 2 or targets.shape != (features.shape[0],):
        raise ValueError(f"expected features (B, D) and targets (B,), got {tuple(features.shape)} and "
                         f"{tuple(targets.shape)}")
    dist = pairwise_distances(features, squared)
    same = targets[:, None] == targets[None, :]
    eye = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
    is_pos, is_neg = same & ~eye, ~same
    usable = is_pos.any(dim=1) & is_neg.any(dim=1)
    if not usable.any():
        raise ValueError("batch-hard triplet loss: no anchor has both a positive and a negative in the batch "
                         "(use a PK sampler with >= 2 identities and >= 2 instances each)")
    hardest_pos = dist.masked_fill(~is_pos, float("-inf")).amax(dim=1)
    hardest_neg = dist.masked_fill(~is_neg, float("inf")).amin(dim=1)
    gap = (hardest_pos - hardest_neg)[usable]
    loss = F.softplus(gap) if margin <= 0 else F.relu(gap + margin)
    return loss.mean()
