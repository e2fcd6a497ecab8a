"""The DMF meta-architecture: fast-reid's Baseline with mixed image/text batches.

DMF (Xiang et al., arXiv 2211.00933) Fig. 2 and Eq. 2: shared transformer
global feature -> soft-margin triplet loss (Eq. 1); the same feature after the
BNNeck -> identity classifier -> cross-entropy ID loss; total = sum.
Structure, config and heads are fast-reid's (``fastreid/modeling/meta_arch/
baseline.py``, ``heads/``: any registered head and ``MODEL.HEADS.CLS_LAYER``);
images are normalised out of place (upstream's in-place ``sub_``/``div_``
normalises a flipped test batch twice).

Losses: ``TripletLoss`` is DMF's own soft-margin / squared batch-hard triplet
(Eq. 1, :func:`~fastreid_dmf.modeling.losses.batch_hard_triplet_loss`); every
other ``MODEL.LOSSES.NAME`` entry fast-reid's ``Baseline.losses`` computes
(``CrossEntropyLoss``, ``CircleLoss``, ``Cosface``) is fast-reid's own loss
function with the same arguments, so a DMF checkpoint fine-tunes with any
fast-reid head/loss config and those losses behave exactly as in fast-reid.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.losses import cross_entropy_loss, log_accuracy, pairwise_circleloss, pairwise_cosface
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.modeling.meta_arch.baseline import Baseline

from ...multimodal_batch import TEXT
from ..losses import batch_hard_triplet_loss

__all__ = ["DMF", "FASTREID_LOSSES"]

logger = logging.getLogger(__name__)

#: ``MODEL.LOSSES.NAME`` entries fast-reid 1.4.0's ``Baseline.losses`` computes (it silently ignores any
#: other name, e.g. ``FocalLoss``, which exists in ``fastreid.modeling.losses`` but is never called there).
FASTREID_LOSSES = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface")


@META_ARCH_REGISTRY.register()
class DMF(Baseline):
    """DMF model: :class:`~fastreid_dmf.modeling.dmf.backbone.DMFBackbone` + fast-reid ``EmbeddingHead`` (BNNeck).

    Input (fast-reid batch dict):
        ``images``: float ``(B, 3, H, W)`` in 0..255 (as fast-reid's loaders give);
        ``targets``: int ``(B,)`` identity labels (training);
        ``modalities`` (optional): int ``(B,)``, ``IMAGE`` / ``TEXT`` (:mod:`fastreid_dmf.multimodal_batch`);
        absent = all images;
        ``texts`` (with text samples): list of B descriptions ("" for images).

    Output:
        training: scalar float losses named as fast-reid's ``Baseline`` names them
        (``loss_cls``, ``loss_triplet``, ``loss_circle``, ``loss_cosface``, from
        ``MODEL.LOSSES.NAME``); inference: float ``(B, D)`` image features
        before or after the BNNeck (``MODEL.DMF.TEST_FEAT``).

    ``MODEL.LOSSES.TRI.HARD_MINING`` False (fast-reid's default) is ignored with a
    warning: DMF's triplet always mines the hardest positive/negative.

    Raises:
        ValueError: (at construction) ``MODEL.LOSSES.NAME`` holds a name fast-reid's
            ``Baseline.losses`` does not compute (it would be silently ignored there).
    """

    @configurable
    def __init__(self, *, backbone, heads, pixel_mean, pixel_std, loss_kwargs=None, test_feat: str = "before",
                 triplet_squared: bool = True) -> None:
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean, pixel_std=pixel_std,
                         loss_kwargs=loss_kwargs)
        self.test_feat = test_feat
        self.triplet_squared = triplet_squared
        names = tuple((loss_kwargs or {}).get("loss_names", ()))
        unknown = [name for name in names if name not in FASTREID_LOSSES]
        if unknown:
            raise ValueError(f"config MODEL.LOSSES.NAME={names!r}: {unknown} not computed by fast-reid's "
                             f"Baseline.losses; expected names from {FASTREID_LOSSES}")
        if "TripletLoss" in names and not loss_kwargs["tri"].get("hard_mining", True):
            logger.warning("MODEL.LOSSES.TRI.HARD_MINING=False (fast-reid's default) is ignored: DMF's triplet loss "
                           "(Eq. 1) always uses the hardest positive and negative of the batch")

    @classmethod
    def from_config(cls, cfg) -> dict:
        """fast-reid's Baseline arguments plus ``MODEL.DMF.TEST_FEAT`` and ``TRIPLET_SQUARED``."""
        args = super().from_config(cfg)
        args["test_feat"] = cfg.MODEL.DMF.TEST_FEAT
        args["triplet_squared"] = cfg.MODEL.DMF.TRIPLET_SQUARED
        return args

    def preprocess_image(self, batched_inputs) -> torch.Tensor:
        """``(x - mean) / std`` out of place; accepts a batch dict or an image tensor ``(B, 3, H, W)``."""
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"batched_inputs must be a dict with 'images' or a tensor, got {type(batched_inputs)}")
        return (images.to(self.device) - self.pixel_mean) / self.pixel_std

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Global features ``(B, D)`` (before BNNeck) of un-normalised images ``(B, 3, H, W)`` in 0..255."""
        return self.backbone.forward_image(self.preprocess_image(images))

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Global features ``(B, D)`` (before BNNeck) of B descriptions, in the image feature space.

        Raises:
            RuntimeError: the model was built without a text encoder.
        """
        return self.backbone.forward_text(list(texts))

    def _mixed_features(self, batched_inputs: dict) -> torch.Tensor:
        modalities = batched_inputs.get("modalities")
        if modalities is None:
            return self.encode_images(batched_inputs["images"])
        modalities = torch.as_tensor(modalities, device=self.device)
        is_text = modalities == TEXT
        if not is_text.any():
            return self.encode_images(batched_inputs["images"])
        text_index = is_text.nonzero().flatten()
        image_index = (~is_text).nonzero().flatten()
        texts = [batched_inputs["texts"][i] for i in text_index.tolist()]
        text_feats = self.encode_texts(texts)
        features = text_feats.new_empty(len(modalities), text_feats.shape[1])
        features[text_index] = text_feats
        if len(image_index):
            images = batched_inputs["images"][image_index.to(batched_inputs["images"].device)]
            features[image_index] = self.encode_images(images)
        return features

    def forward(self, batched_inputs):
        """See class docstring."""
        if not self.training:
            features = self.encode_images(batched_inputs["images"] if isinstance(batched_inputs, dict)
                                          else batched_inputs)
            if self.test_feat == "before":
                return features
            return self.heads(features[:, :, None, None])
        if "targets" not in batched_inputs:
            raise KeyError("person ID annotation 'targets' missing from the training batch")
        targets = batched_inputs["targets"].to(self.device)
        # fast-reid's PreciseBN passes all-negative targets; keep its convention.
        if targets.sum() < 0:
            targets.zero_()
        features = self._mixed_features(batched_inputs)
        outputs = self.heads(features[:, :, None, None], targets)
        return self.losses(outputs, targets)

    def losses(self, outputs: dict, gt_labels: torch.Tensor) -> dict:
        """Loss dict for ``MODEL.LOSSES.NAME`` (Eq. 2: their sum is the training objective).

        ``TripletLoss`` -> ``loss_triplet``: DMF's soft-margin (``TRI.MARGIN`` 0) or
        hinge batch-hard triplet (Eq. 1) on ``outputs["features"]`` (squared distances
        when ``MODEL.DMF.TRIPLET_SQUARED``; L2-normalised first when ``TRI.NORM_FEAT``),
        times ``TRI.SCALE``. ``CrossEntropyLoss`` (``loss_cls``), ``CircleLoss``
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
            losses["loss_triplet"] = batch_hard_triplet_loss(features, gt_labels, tri["margin"],
                                                             self.triplet_squared) * tri["scale"]
        return losses
