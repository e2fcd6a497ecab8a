"""The DMF meta-architecture: fast-reid's Baseline with mixed image/text batches.

DMF (Xiang et al., arXiv 2211.00933) Fig. 2 and Eq. 2: shared transformer
global feature -> soft-margin triplet loss (Eq. 1); the same feature after the
BNNeck -> identity classifier -> cross-entropy ID loss; total = sum.
Heads, losses and config checks are :class:`~fastreid_dmf.modeling.reid_baseline.ReIDBaseline`'s
(fast-reid's ``Baseline`` with DMF's triplet loss); this class adds the mixed image/text batches.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

from ...multimodal_batch import TEXT
from ..reid_baseline import FASTREID_LOSSES, ReIDBaseline

__all__ = ["DMF", "FASTREID_LOSSES"]


@META_ARCH_REGISTRY.register()
class DMF(ReIDBaseline):
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

    Losses, config checks and image normalisation: :class:`~fastreid_dmf.modeling.reid_baseline.ReIDBaseline`.
    """

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
            return self.image_test_features(batched_inputs["images"] if isinstance(batched_inputs, dict)
                                            else batched_inputs)
        if "targets" not in batched_inputs:
            raise KeyError("person ID annotation 'targets' missing from the training batch")
        targets = batched_inputs["targets"].to(self.device)
        # fast-reid's PreciseBN passes all-negative targets; keep its convention.
        if targets.sum() < 0:
            targets.zero_()
        features = self._mixed_features(batched_inputs)
        outputs = self.heads(features[:, :, None, None], targets)
        return self.losses(outputs, targets)
