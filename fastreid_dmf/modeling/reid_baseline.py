"""fast-reid's ``Baseline`` with the Re-ID losses DMF and MMET share.

Structure, config and heads are fast-reid's (``fastreid/modeling/meta_arch/baseline.py``, ``heads/``: any
registered head and ``MODEL.HEADS.CLS_LAYER``); images are normalised out of place (upstream's in-place
``sub_``/``div_`` normalises a flipped test batch twice).

Losses: ``TripletLoss`` is DMF's own soft-margin / squared batch-hard triplet (DMF Eq. 1,
:func:`~fastreid_dmf.modeling.losses.batch_hard_triplet_loss`), mined across modalities; every other
``MODEL.LOSSES.NAME`` entry fast-reid's ``Baseline.losses`` computes (``CrossEntropyLoss``, ``CircleLoss``,
``Cosface``) is fast-reid's own loss function with the same arguments, so a checkpoint fine-tunes with any
fast-reid head/loss config and those losses behave exactly as in fast-reid.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.losses import cross_entropy_loss, log_accuracy, pairwise_circleloss, pairwise_cosface
from fastreid.modeling.meta_arch.baseline import Baseline

from .distributed import gather_across_processes
from .losses import batch_hard_triplet_loss

__all__ = ["FASTREID_LOSSES", "ReIDBaseline"]

logger = logging.getLogger(__name__)

#: ``MODEL.LOSSES.NAME`` entries fast-reid 1.4.0's ``Baseline.losses`` computes (it silently ignores any
#: other name, e.g. ``FocalLoss``, which exists in ``fastreid.modeling.losses`` but is never called there).
FASTREID_LOSSES = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface")


class ReIDBaseline(Baseline):
    """fast-reid ``Baseline`` + DMF's triplet loss and config checks; the base of the DMF and MMET meta-archs.

    ``MODEL.LOSSES.TRI.HARD_MINING`` False (fast-reid's default) is ignored with a
    warning: DMF's triplet always mines the hardest positive/negative.

    Raises:
        ValueError: (at construction) ``MODEL.LOSSES.NAME`` holds a name fast-reid's
            ``Baseline.losses`` does not compute (it would be silently ignored there).
    """

    @configurable
    def __init__(self, *, backbone, heads, pixel_mean, pixel_std, loss_kwargs=None, test_feat: str = "before",
                 triplet_squared: bool = True, triplet_across_processes: bool = True) -> None:
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean, pixel_std=pixel_std,
                         loss_kwargs=loss_kwargs)
        self.test_feat = test_feat
        self.triplet_squared = triplet_squared
        self.triplet_across_processes = triplet_across_processes
        names = tuple((loss_kwargs or {}).get("loss_names", ()))
        unknown = [name for name in names if name not in FASTREID_LOSSES]
        if unknown:
            raise ValueError(f"config MODEL.LOSSES.NAME={names!r}: {unknown} not computed by fast-reid's "
                             f"Baseline.losses; expected names from {FASTREID_LOSSES}")
        if "TripletLoss" in names and not loss_kwargs["tri"].get("hard_mining", True):
            logger.warning("MODEL.LOSSES.TRI.HARD_MINING=False (fast-reid's default) is ignored: DMF's triplet loss "
                           "(Eq. 1) always uses the hardest positive and negative of the batch")

    def test_features(self, features: torch.Tensor) -> torch.Tensor:
        """The test (retrieval) feature of global features, by ``MODEL.DMF.TEST_FEAT``; the one place for that rule.

        Args:
            features: float ``(B, D)`` global features (``encode_images`` / ``encode_texts``, before the BNNeck).

        Returns:
            float ``(B, D)``: ``features`` ("before") or the BNNeck output of fast-reid's ``EmbeddingHead`` in
            eval mode ("after"). Call in eval mode (the BNNeck uses its running statistics).
        """
        if self.test_feat == "before":
            return features
        return self.heads(features[:, :, None, None])

    def image_test_features(self, images: torch.Tensor) -> torch.Tensor:
        """Test features ``(B, D)`` of un-normalised images ``(B, 3, H, W)`` float in 0..255 (image branch only)."""
        return self.test_features(self.encode_images(images))

    def text_test_features(self, texts) -> torch.Tensor:
        """Test features ``(B, D)`` of B descriptions, comparable with :meth:`image_test_features` (same space,
        same BNNeck rule): the query side of text-to-image person search.

        Raises:
            RuntimeError: the model has no text encoder. ValueError: an empty description (MMET).
        """
        return self.test_features(self.encode_texts(list(texts)))

    @classmethod
    def from_config(cls, cfg) -> dict:
        """fast-reid's Baseline arguments plus ``MODEL.DMF.TEST_FEAT``, ``TRIPLET_SQUARED`` and
        ``TRIPLET_ACROSS_PROCESSES``."""
        args = super().from_config(cfg)
        args["test_feat"] = cfg.MODEL.DMF.TEST_FEAT
        args["triplet_squared"] = cfg.MODEL.DMF.TRIPLET_SQUARED
        args["triplet_across_processes"] = cfg.MODEL.DMF.TRIPLET_ACROSS_PROCESSES
        return args

    def preprocess_image(self, batched_inputs) -> torch.Tensor:
        """``(x - mean) / std`` out of place; accepts a batch dict or an image tensor ``(B, 3, H, W)``."""
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"batched_inputs must be a dict with 'images' or a tensor, got {type(batched_inputs)}")
        return (images.to(self.device) - self.pixel_mean) / self.pixel_std

    def losses(self, outputs: dict, gt_labels: torch.Tensor) -> dict:
        """Loss dict for ``MODEL.LOSSES.NAME`` (Eq. 2: their sum is the training objective).

        ``TripletLoss`` -> ``loss_triplet``: DMF's soft-margin (``TRI.MARGIN`` 0) or
        hinge batch-hard triplet (Eq. 1) on ``outputs["features"]`` (squared distances
        when ``MODEL.DMF.TRIPLET_SQUARED``; L2-normalised first when ``TRI.NORM_FEAT``),
        times ``TRI.SCALE``; with several processes and ``MODEL.DMF.TRIPLET_ACROSS_PROCESSES`` it
        mines the global batch of all processes (:func:`~fastreid_dmf.modeling.distributed.gather_across_processes`).
        ``CrossEntropyLoss`` (``loss_cls``), ``CircleLoss``
        (``loss_circle``) and ``Cosface`` (``loss_cosface``) are fast-reid's loss
        functions (``fastreid/modeling/losses``) called with the keyword arguments
        fast-reid's ``Baseline.losses`` passes them; the classifier accuracy is logged
        as there.

        Args:
            outputs: the head's training output: ``cls_outputs`` float ``(B, C)``,
                ``pred_class_logits`` float ``(B, C)``, ``features`` float ``(B, D)``.
            gt_labels: int ``(B,)`` identity labels.

        Returns:
            ``{loss name: scalar float tensor}``.
        """
        names = tuple(self.loss_kwargs["loss_names"])
        features = outputs["features"]
        log_accuracy(outputs["pred_class_logits"].detach(), gt_labels)
        losses = {}
        if "CrossEntropyLoss" in names:
            ce = self.loss_kwargs["ce"]
            losses["loss_cls"] = cross_entropy_loss(outputs["cls_outputs"], gt_labels, ce["eps"],
                                                    ce["alpha"]) * ce["scale"]
        if "CircleLoss" in names:
            circle = self.loss_kwargs["circle"]
            losses["loss_circle"] = pairwise_circleloss(features, gt_labels, circle["margin"],
                                                        circle["gamma"]) * circle["scale"]
        if "Cosface" in names:
            cosface = self.loss_kwargs["cosface"]
            losses["loss_cosface"] = pairwise_cosface(features, gt_labels, cosface["margin"],
                                                      cosface["gamma"]) * cosface["scale"]
        if "TripletLoss" in names:
            tri = self.loss_kwargs["tri"]
            if tri.get("norm_feat", False):
                features = F.normalize(features, dim=1)
            labels = gt_labels
            if self.triplet_across_processes:
                features, labels = gather_across_processes(features, gt_labels)
            losses["loss_triplet"] = batch_hard_triplet_loss(features, labels, tri["margin"],
                                                             self.triplet_squared) * tri["scale"]
        return losses
