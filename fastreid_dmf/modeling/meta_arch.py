"""The DMF meta-architecture: fast-reid's Baseline with mixed image/text batches.

DMF (Xiang et al., arXiv 2211.00933) Fig. 2 and Eq. 2: shared transformer
global feature -> soft-margin triplet loss (Eq. 1); the same feature after the
BNNeck -> identity classifier -> cross-entropy ID loss; total = sum.
Structure, config and heads are fast-reid's (``fastreid/modeling/meta_arch/
baseline.py``, ``heads/embedding_head.py``); images are normalised out of
place (upstream's in-place ``sub_``/``div_`` normalises a flipped test batch twice).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from fastreid.config import configurable
from fastreid.modeling.losses import cross_entropy_loss, log_accuracy
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.modeling.meta_arch.baseline import Baseline

from .losses import batch_hard_triplet_loss

__all__ = ["DMF", "IMAGE", "TEXT"]

#: Values of ``batched_inputs["modalities"]``.
IMAGE, TEXT = 0, 1


@META_ARCH_REGISTRY.register()
class DMF(Baseline):
    """DMF model: :class:`~fastreid_dmf.modeling.backbone.DMFBackbone` + fast-reid ``EmbeddingHead`` (BNNeck).

    Input (fast-reid batch dict):
        ``images``: float ``(B, 3, H, W)`` in 0..255 (as fast-reid's loaders give);
        ``targets``: int ``(B,)`` identity labels (training);
        ``modalities`` (optional): int ``(B,)``, 0 = image, 1 = text; absent = all images;
        ``texts`` (with text samples): list of B descriptions ("" for images).

    Output:
        training: ``{"loss_cls": ..., "loss_triplet": ...}`` scalars (names from
        ``MODEL.LOSSES.NAME``); inference: float ``(B, D)`` image features
        before or after the BNNeck (``MODEL.DMF.TEST_FEAT``).
    """

    @configurable
    def __init__(self, *, backbone, heads, pixel_mean, pixel_std, loss_kwargs=None, test_feat: str = "before",
                 triplet_squared: bool = True) -> None:
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean, pixel_std=pixel_std,
                         loss_kwargs=loss_kwargs)
        self.test_feat = test_feat
        self.triplet_squared = triplet_squared

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
        """ID loss (cross-entropy on BNNeck logits) + soft-margin batch-hard triplet (Eq. 1), Eq. 2."""
        log_accuracy(outputs["pred_class_logits"].detach(), gt_labels)
        names = self.loss_kwargs["loss_names"]
        unknown = set(names) - {"CrossEntropyLoss", "TripletLoss"}
        if unknown:
            raise ValueError(f"MODEL.LOSSES.NAME has {sorted(unknown)}; DMF supports CrossEntropyLoss and TripletLoss")
        losses = {}
        if "CrossEntropyLoss" in names:
            ce = self.loss_kwargs["ce"]
            losses["loss_cls"] = cross_entropy_loss(outputs["cls_outputs"], gt_labels, ce["eps"], ce["alpha"]) \
                * ce["scale"]
        if "TripletLoss" in names:
            tri = self.loss_kwargs["tri"]
            losses["loss_triplet"] = batch_hard_triplet_loss(outputs["features"], gt_labels, tri["margin"],
                                                             self.triplet_squared) * tri["scale"]
        return losses
