"""A hand-made colour-histogram matcher: a no-learning Re-ID baseline run through fast-reid's evaluator.

Definition (fixed a priori, not tuned on any test set):

1. The test image (fast-reid's test transforms: resize to ``INPUT.SIZE_TEST``,
   ``ToTensor`` keeping 0..255) is rounded to uint8 RGB and converted to HSV as
   OpenCV does for 8-bit images (``cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)``:
   H in 0..179, S and V in 0..255).
2. The image is split into R equal horizontal stripes (``MODEL.COLOR_HIST.NUM_STRIPES``,
   default 6; rows assigned as ``np.array_split`` over the height, so the first
   ``H % R`` stripes hold one row more).
3. Per stripe, a joint 3-D HSV histogram with ``MODEL.COLOR_HIST.BINS`` = (H, S, V)
   bins (default (8, 4, 4)) is computed with ``cv2.calcHist`` (ranges [0, 180],
   [0, 256], [0, 256], equal-width bins) and normalised to sum 1 over the stripe (L1).
4. The feature is the concatenation over stripes of the element-wise square root
   of each normalised histogram: float32 ``(B, R * prod(BINS))`` = ``(B, 768)`` by default.

Each stripe block then has unit L2 norm, and for two features x, y

    ||x - y||^2 = sum_r 2 * (1 - BC_r) = 2 * sum_r Hellinger_r^2,

where ``BC_r = sum_b sqrt(p_rb * q_rb)`` is the Bhattacharyya coefficient of the
two stripe-r histograms and ``Hellinger_r^2 = 1 - BC_r`` the squared Hellinger
distance. fast-reid's ``ReidEvaluator`` with ``TEST.METRIC euclidean`` (squared
Euclidean distances) therefore ranks by the summed squared Hellinger distance;
``cosine`` ranks identically, because every feature has norm sqrt(R).
Horizontal flips (``TEST.FLIP.ENABLED``) leave the feature unchanged.

Source: Bhattacharyya coefficient / Hellinger distance between histograms; the
classic stripe-histogram Re-ID baseline (HSV histograms over horizontal stripes
as in Gray & Tao, ELF, ECCV 2008; Farenzena et al., SDALF, CVPR 2010; Liao et
al., LOMO, CVPR 2015).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from fastreid.config import configurable
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from torch import nn

__all__ = ["ColorHistogramMatcher", "hsv_stripe_histograms", "check_color_hist_params", "HSV_RANGES"]

#: ``cv2.calcHist`` ranges of OpenCV's 8-bit HSV channels (H: 0..179, S and V: 0..255), upper bounds exclusive.
HSV_RANGES = (0, 180, 0, 256, 0, 256)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def check_color_hist_params(num_stripes: object, bins: object, height: int | None = None,
                            height_name: str = "the image height") -> None:
    """Validate the stripe count and the histogram bins (also :func:`~fastreid_dmf.config.check_dmf_config`'s check).

    Args:
        num_stripes: R, ``MODEL.COLOR_HIST.NUM_STRIPES``.
        bins: ``(H, S, V)`` bin counts, ``MODEL.COLOR_HIST.BINS``.
        height: image height in pixels, when known (R may not exceed it).
        height_name: how the message names that height (e.g. the config key it comes from).

    Raises:
        ValueError: R is not a positive int or exceeds ``height``, or ``bins`` is
            not three positive ints; the message names the config key, the value
            and what is expected.
    """
    if not _is_positive_int(num_stripes):
        raise ValueError(f"config MODEL.COLOR_HIST.NUM_STRIPES={num_stripes!r}: expected a positive int")
    if height is not None and num_stripes > height:
        raise ValueError(f"config MODEL.COLOR_HIST.NUM_STRIPES={num_stripes!r}: expected at most {height_name} "
                         f"{height} (every stripe needs at least one row)")
    if not (isinstance(bins, Sequence) and not isinstance(bins, str) and len(bins) == 3
            and all(_is_positive_int(b) for b in bins)):
        raise ValueError(f"config MODEL.COLOR_HIST.BINS={bins!r}: expected three positive ints (H, S, V bins)")


def hsv_stripe_histograms(images: torch.Tensor, num_stripes: int, bins: tuple[int, int, int]) -> torch.Tensor:
    """Square-rooted, L1-normalised HSV histograms of R horizontal stripes (see module docstring).

    Args:
        images: float or uint8 ``(B, 3, H, W)`` RGB in 0..255 (any device); float
            values are rounded to the nearest integer and clipped to 0..255.
        num_stripes: R, 1 <= R <= H.
        bins: ``(H, S, V)`` bin counts, positive ints.

    Returns:
        float32 ``(B, R * prod(bins))`` on the CPU: stripe r occupies columns
        ``r * prod(bins) .. (r + 1) * prod(bins) - 1``, bins flattened in C order
        (H slowest, V fastest); each stripe block is ``sqrt(count / stripe pixels)``
        and has unit L2 norm.

    Raises:
        ValueError: ``images`` is not ``(B, 3, H, W)`` with H, W >= 1, or bad
            ``num_stripes`` / ``bins`` (see :func:`check_color_hist_params`).
    """
    if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] < 1 or images.shape[3] < 1:
        raise ValueError(f"images: expected an RGB batch (B, 3, H, W) with H, W >= 1, got {tuple(images.shape)}")
    height = images.shape[2]
    check_color_hist_params(num_stripes, bins, height)
    bins = tuple(int(b) for b in bins)
    block = int(np.prod(bins))
    pixels = images.detach().to("cpu", torch.float32).round().clamp(0, 255).to(torch.uint8)
    pixels = pixels.permute(0, 2, 3, 1).contiguous().numpy()  # (B, H, W, 3) RGB
    rows = np.array_split(np.arange(height), num_stripes)
    features = np.empty((len(pixels), num_stripes * block), dtype=np.float32)
    for i, rgb in enumerate(pixels):
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        for r, stripe_rows in enumerate(rows):
            stripe = np.ascontiguousarray(hsv[stripe_rows[0]:stripe_rows[-1] + 1])
            hist = cv2.calcHist([stripe], [0, 1, 2], None, list(bins), list(HSV_RANGES)).reshape(-1)
            features[i, r * block:(r + 1) * block] = np.sqrt(hist / stripe.shape[0] / stripe.shape[1])
    return torch.from_numpy(features)


@META_ARCH_REGISTRY.register()
class ColorHistogramMatcher(nn.Module):
    """META_ARCH ``ColorHistogramMatcher``: the no-learning HSV stripe-histogram baseline.

    Nothing is learned: there are no parameters and ``state_dict()`` is empty
    (``MODEL.WEIGHTS`` stays ""). A zero-size, non-persistent buffer carries the
    device, so ``.to(device)`` and ``model.device`` work as for fast-reid's Baseline.

    Input (fast-reid test batch dict, or the image tensor itself):
        ``images``: float ``(B, 3, H, W)`` RGB in 0..255.

    Output (eval mode): float32 ``(B, R * prod(BINS))`` features on ``model.device``,
    as computed by :func:`hsv_stripe_histograms`; rank them with
    ``TEST.METRIC euclidean`` (= summed squared Hellinger distance; module docstring).

    Raises:
        ValueError: (construction) bad ``MODEL.COLOR_HIST.NUM_STRIPES`` / ``BINS``;
            (forward) R larger than the image height, or images not ``(B, 3, H, W)``.
        RuntimeError: ``forward`` in training mode (there is nothing to train);
            ``tools/train_net.py`` without ``--eval-only`` refuses this META_ARCH up front
            (``trainable = False``).
        TypeError: ``forward`` on something other than a dict with ``images`` or a tensor.
    """

    #: Read by :func:`fastreid_dmf.engine.trainer.train_or_eval`: training runs are refused before any data loads.
    trainable = False

    @configurable
    def __init__(self, *, num_stripes: int = 6, bins: Sequence[int] = (8, 4, 4)) -> None:
        super().__init__()
        check_color_hist_params(num_stripes, bins)
        self.num_stripes = int(num_stripes)
        self.bins = tuple(int(b) for b in bins)
        self.register_buffer("_device_anchor", torch.empty(0), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> dict:
        """``MODEL.COLOR_HIST.NUM_STRIPES`` and ``MODEL.COLOR_HIST.BINS``."""
        return {"num_stripes": cfg.MODEL.COLOR_HIST.NUM_STRIPES, "bins": tuple(cfg.MODEL.COLOR_HIST.BINS)}

    @property
    def device(self) -> torch.device:
        """Device the features are returned on (moved with ``.to()``)."""
        return self._device_anchor.device

    @property
    def feat_dim(self) -> int:
        """Feature length ``R * prod(BINS)``."""
        return self.num_stripes * int(np.prod(self.bins))

    def forward(self, batched_inputs: dict | torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        if self.training:
            raise RuntimeError("ColorHistogramMatcher is a fixed, hand-made matcher with nothing to train; "
                               "evaluate it with tools/train_net.py --eval-only (MODEL.WEIGHTS \"\")")
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"batched_inputs must be a dict with 'images' or a tensor, got {type(batched_inputs)}")
        return hsv_stripe_histograms(images, self.num_stripes, self.bins).to(self.device)

    def extra_repr(self) -> str:
        return f"num_stripes={self.num_stripes}, bins={self.bins}, feat_dim={self.feat_dim}"
