"""The MMET meta-architecture: FLAVA's encoders + fast-reid's BNNeck head, trained on three tasks with MMM.

MMET (Xiang et al., arXiv 2304.09498; abstract only): a multi-modal equivalent transformer learns
visual-semantic embeddings on visual, textual and visual-textual tasks, with Masked Multimodal Modeling
(MMM) masking image patches and text tokens dynamically. Its official code is FLAVA plus a Re-ID head
(BNNeck on [CLS], ID loss + soft-margin batch-hard triplet). Here:

* the Re-ID feature is the [cls] of the branch that saw the sample (:class:`.backbone.MMETBackbone`):
  visual -> projected image [cls], textual -> projected text [CLS], visual-textual -> fused [cls_m]; one
  fast-reid ``EmbeddingHead`` (BNNeck) and the Re-ID losses of
  :class:`~fastreid_dmf.modeling.reid_baseline.ReIDBaseline` (ID loss + DMF Eq. 1 triplet, mined across
  modalities) run on all of them, always;
* MMM losses (:mod:`.losses`), when the batch carries masks (``data/mmm.py``): MIM on masked patches of
  visual samples, MLM on masked tokens of textual samples, fusion-level MIM and MLM on visual-textual
  samples, plus image-text matching and the global contrastive loss on visual-textual samples; each
  weighted by ``MODEL.MMET.LOSSES.*`` (0 = off);
* MIM target: normalised pixels (MAE) by default, DALL-E dVAE codebook ids with ``MODEL.MMET.MIM.TARGET``
  "dvae" and a local ``MODEL.MMET.MIM.DVAE_PATH`` (:class:`.heads.DVAETargets`);
* inference: the visual feature (target datasets have no captions), or the fused feature of each image
  with its description (``MODEL.MMET.TEST_INPUT`` "fused"; the test set must provide ``texts``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from fastreid.config import configurable
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils import comm
from torch import nn

from ...data.masking import IGNORE_INDEX
from ...multimodal_batch import IMAGE, MODALITY_NAMES, PAIR, TEXT
from ..distributed import gather_across_processes, sum_over_processes
from ..reid_baseline import ReIDBaseline
from .heads import DVAETargets, MaskedPredictionHead
from .losses import contrastive_loss, itm_loss, mim_pixel_loss, mim_token_loss, mlm_loss

__all__ = ["MMET", "MIM_TARGETS", "TEST_INPUTS", "mismatched_partners"]

logger = logging.getLogger(__name__)

#: Values of ``MODEL.MMET.MIM.TARGET``.
MIM_TARGETS = ("pixel", "dvae")
#: Values of ``MODEL.MMET.TEST_INPUT``.
TEST_INPUTS = ("image", "fused")
#: ``MODEL.MMET.LOSSES`` keys -> loss names in the training loss dict.
LOSS_NAMES = {"MIM": "loss_mim", "MLM": "loss_mlm", "MM_MIM": "loss_mm_mim", "MM_MLM": "loss_mm_mlm",
              "ITM": "loss_itm", "CONTRASTIVE": "loss_contrastive"}


def mismatched_partners(targets: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor | None:
    """For each sample, a random other sample of another identity (ITM negatives; FLAVA swaps captions).

    Args:
        targets: int ``(B,)`` identities.
        generator: torch generator for the draw (None: torch's global one, seeded by ``SEED``).

    Returns:
        int64 ``(B,)`` partner indices with ``targets[partner] != targets``, or None when the batch has a
        single identity.
    """
    order = torch.randperm(len(targets), generator=generator).to(targets.device)
    differs = targets[order][None, :] != targets[:, None]  # (B, B) over the shuffled order
    if not differs.any(dim=1).all():
        return None
    return order[differs.int().argmax(dim=1)]


@META_ARCH_REGISTRY.register()
class MMET(ReIDBaseline):
    """MMET model: :class:`.backbone.MMETBackbone` + fast-reid ``EmbeddingHead`` + MMM pre-training heads.

    Input (fast-reid batch dict, :mod:`fastreid_dmf.multimodal_batch`):
        ``images`` float ``(B, 3, H, W)`` in 0..255; ``targets`` int ``(B,)`` (training);
        ``modalities`` int ``(B,)`` IMAGE / TEXT / PAIR (absent = all images); ``texts`` list of B str;
        with MMM: ``patch_mask`` bool ``(B, N)``, ``input_ids`` / ``attention_mask`` / ``mlm_labels`` int64
        ``(B, L)`` (without them text is tokenised here, unmasked).

    Output:
        training: scalar losses ``loss_cls`` / ``loss_triplet`` (etc., ``MODEL.LOSSES.NAME``) plus the MMM
        losses present in the batch (``loss_mim``, ``loss_mlm``, ``loss_mm_mim``, ``loss_mm_mlm``,
        ``loss_itm``, ``loss_contrastive``), already weighted; inference: float ``(B, D_m)`` features
        before or after the BNNeck (``MODEL.DMF.TEST_FEAT``).

    Raises:
        ValueError: (construction) see :class:`~fastreid_dmf.modeling.reid_baseline.ReIDBaseline`; an unknown
            MIM target or test input; a dVAE target without ``dvae_path``; pixel MIM with overlapping patches.
    """

    @configurable
    def __init__(self, *, backbone, heads, pixel_mean, pixel_std, loss_kwargs=None, test_feat: str = "before",
                 triplet_squared: bool = True, triplet_across_processes: bool = True,
                 loss_weights: dict[str, float] | None = None,
                 mim_target: str = "pixel", norm_pix: bool = True, dvae_path: str = "",
                 test_input: str = "image") -> None:
        super().__init__(backbone=backbone, heads=heads, pixel_mean=pixel_mean, pixel_std=pixel_std,
                         loss_kwargs=loss_kwargs, test_feat=test_feat, triplet_squared=triplet_squared,
                         triplet_across_processes=triplet_across_processes)
        if mim_target not in MIM_TARGETS:
            raise ValueError(f"config MODEL.MMET.MIM.TARGET={mim_target!r}: expected one of {MIM_TARGETS}")
        if test_input not in TEST_INPUTS:
            raise ValueError(f"config MODEL.MMET.TEST_INPUT={test_input!r}: expected one of {TEST_INPUTS}")
        self.loss_weights = {name: float((loss_weights or {}).get(key, 1.0)) for key, name in LOSS_NAMES.items()}
        self.mim_target, self.norm_pix, self.test_input = mim_target, bool(norm_pix), test_input
        image = backbone.image_encoder
        self.patch_size = image.patch_size
        self.dvae = None
        if mim_target == "dvae":
            if not dvae_path:
                raise ValueError("config MODEL.MMET.MIM.TARGET='dvae' needs MODEL.MMET.MIM.DVAE_PATH, a local "
                                 "FlavaImageCodebook folder (or use MIM.TARGET 'pixel')")
            self.dvae = DVAETargets(dvae_path, image.grid)
            mim_out = self.dvae.vocab_size
        else:
            if tuple(image.patch_embed.patch_size) != (self.patch_size, self.patch_size) or \
                    image.grid[0] * image.grid[1] != image.num_patches or \
                    image.patch_embed.proj.stride != (self.patch_size, self.patch_size):
                raise ValueError("pixel MIM needs non-overlapping patches: set MODEL.BACKBONE.STRIDE_SIZE to "
                                 f"MODEL.DMF.PATCH_SIZE ({self.patch_size})")
            mim_out = self.patch_size * self.patch_size * 3
        eps = image.norm.eps
        self.mim_head = MaskedPredictionHead(image.embed_dim, mim_out, eps)
        text = backbone.text_encoder
        if text is not None:
            fused_dim = backbone.fusion.embed_dim
            self.mlm_head = MaskedPredictionHead(text.hidden_size, text.vocab_size, eps)
            self.mm_mim_head = MaskedPredictionHead(fused_dim, mim_out, eps)
            self.mm_mlm_head = MaskedPredictionHead(fused_dim, text.vocab_size, eps)
            self.itm_head = nn.Sequential(nn.Linear(fused_dim, fused_dim), nn.Tanh(), nn.Linear(fused_dim, 2))

    @classmethod
    def from_config(cls, cfg) -> dict:
        """ReIDBaseline's arguments plus ``MODEL.MMET.LOSSES``, ``MIM.*`` and ``TEST_INPUT``."""
        args = super().from_config(cfg)
        mmet = cfg.MODEL.MMET
        args.update(loss_weights={key: mmet.LOSSES[key] for key in LOSS_NAMES}, mim_target=mmet.MIM.TARGET,
                    norm_pix=mmet.MIM.NORM_PIX, dvae_path=mmet.MIM.DVAE_PATH, test_input=mmet.TEST_INPUT)
        return args

    # ----------------------------------------------------------------- features (also the public API)
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Visual Re-ID features ``(B, D_m)`` (before BNNeck) of un-normalised images ``(B, 3, H, W)`` in 0..255."""
        return self.backbone.image_feature(self.backbone.image_encoder(self.preprocess_image(images))[1])

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Textual Re-ID features ``(B, D_m)`` (before BNNeck) of B descriptions.

        Raises:
            RuntimeError: the model has no text encoder. ValueError: an empty description.
        """
        text = self.backbone.require_text()
        tokens = text.tokenize(texts, self.device)
        return self.backbone.text_feature(text(tokens["input_ids"], tokens["attention_mask"])[1])

    def encode_pairs(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """Fused Re-ID features ``(B, D_m)`` of B images (0..255) with their descriptions (no masking).

        Raises:
            RuntimeError: the model has no text encoder. ValueError: an empty description.
        """
        text = self.backbone.require_text()
        tokens = text.tokenize(texts, self.device)
        image_hidden, _ = self.backbone.image_encoder(self.preprocess_image(images))
        text_hidden, _ = text(tokens["input_ids"], tokens["attention_mask"])
        return self.backbone.fusion(image_hidden, text_hidden, tokens["attention_mask"])[:, 0]

    def forward(self, batched_inputs):
        """See class docstring."""
        if not self.training:
            return self.test_features(self._inference_features(batched_inputs))
        if "targets" not in batched_inputs:
            raise KeyError("person ID annotation 'targets' missing from the training batch")
        targets = batched_inputs["targets"].to(self.device)
        if targets.sum() < 0:  # fast-reid's PreciseBN passes all-negative targets
            targets.zero_()
        modalities = batched_inputs.get("modalities")
        modalities = torch.full_like(targets, IMAGE) if modalities is None else \
            torch.as_tensor(modalities, device=self.device)
        features, parts = None, {}
        for modality in (IMAGE, TEXT, PAIR):
            index = (modalities == modality).nonzero().flatten()
            if len(index) == 0:
                continue
            feats, losses = self._task(modality, batched_inputs, index, targets[index])
            if features is None:
                features = feats.new_empty(len(targets), feats.shape[1])
            features[index] = feats
            parts.update({name: (value, count, len(index)) for name, (value, count) in losses.items()})
        pretrain_losses = self._combine_task_losses(parts, len(targets), features)
        outputs = self.heads(features[:, :, None, None], targets)
        losses = self.losses(outputs, targets)
        losses.update({name: value * self.loss_weights[name] for name, value in pretrain_losses.items()
                       if self.loss_weights[name] > 0})
        return losses

    def _inference_features(self, batched_inputs) -> torch.Tensor:
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        if self.test_input == "image":
            return self.encode_images(images)
        texts = batched_inputs.get("texts") if isinstance(batched_inputs, dict) else None
        if not texts or any(not t for t in texts):
            raise ValueError("MODEL.MMET.TEST_INPUT='fused' needs a description for every query and gallery image "
                             "(a test set with 'texts'); use TEST_INPUT 'image' for image-only test sets")
        return self.encode_pairs(images, texts)

    # ----------------------------------------------------------------- one task's features and MMM losses
    def _select(self, batched_inputs: dict, key: str, index: torch.Tensor) -> torch.Tensor | None:
        value = batched_inputs.get(key)
        return None if value is None else value.to(self.device)[index]

    def _tokens(self, batched_inputs: dict, index: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(input_ids, attention_mask, mlm_labels or None)`` of the selected samples, cut to their longest text."""
        ids = self._select(batched_inputs, "input_ids", index)
        if ids is None:
            texts = [batched_inputs["texts"][i] for i in index.tolist()]
            tokens = self.backbone.require_text().tokenize(texts, self.device)
            return tokens["input_ids"], tokens["attention_mask"], None
        valid = self._select(batched_inputs, "attention_mask", index)
        labels = self._select(batched_inputs, "mlm_labels", index)
        length = max(int(valid.sum(dim=1).max()), 1)
        return ids[:, :length], valid[:, :length], labels[:, :length]

    def _task(self, modality: int, batched_inputs: dict, index: torch.Tensor, targets: torch.Tensor
              ) -> tuple[torch.Tensor, dict[str, tuple[torch.Tensor, int]]]:
        """Re-ID features ``(b, D_m)`` and the unweighted MMM losses of the samples ``index`` of one task,
        each with the number of elements it averages (masked patches or tokens, pairs)."""
        losses: dict[str, torch.Tensor] = {}
        backbone = self.backbone
        if modality in (IMAGE, PAIR):
            raw = batched_inputs["images"][index.to(batched_inputs["images"].device)].to(self.device)
            images = self.preprocess_image(raw)
            patch_mask = self._select(batched_inputs, "patch_mask", index)
            if patch_mask is not None and not patch_mask.any():
                patch_mask = None
            image_hidden, image_out = backbone.image_encoder(images, patch_mask)
        if modality in (TEXT, PAIR):
            text = backbone.require_text()
            ids, valid, labels = self._tokens(batched_inputs, index)
            text_hidden, text_out = text(ids, valid)
        if modality == IMAGE:
            if patch_mask is not None:
                losses["loss_mim"] = (self._mim(self.mim_head, image_out[:, 1:], raw, images, patch_mask),
                                      int(patch_mask.sum()))
            return backbone.image_feature(image_out), losses
        if modality == TEXT:
            if labels is not None:
                losses["loss_mlm"] = self._mlm(self.mlm_head, text_out, labels), int((labels != IGNORE_INDEX).sum())
            return backbone.text_feature(text_out), losses
        if modality not in MODALITY_NAMES:
            raise ValueError(f"unknown modality {modality}")
        fused = backbone.fusion(image_hidden, text_hidden, valid)
        num_image = image_hidden.shape[1]
        if patch_mask is not None:
            losses["loss_mm_mim"] = (self._mim(self.mm_mim_head, fused[:, 2:1 + num_image], raw, images, patch_mask),
                                     int(patch_mask.sum()))
        if labels is not None:
            losses["loss_mm_mlm"] = (self._mlm(self.mm_mlm_head, fused[:, 1 + num_image:], labels),
                                     int((labels != IGNORE_INDEX).sum()))
        if self.loss_weights["loss_contrastive"] > 0:
            # over the global batch of every process (FLAVA gathers too); the same value on each process
            pairs = gather_across_processes(backbone.image_feature(image_out), backbone.text_feature(text_out),
                                            targets)
            losses["loss_contrastive"] = contrastive_loss(*pairs[:2], backbone.logit_scale, pairs[2]), len(targets)
        if self.loss_weights["loss_itm"] > 0:
            partners = mismatched_partners(targets)
            if partners is not None:
                negatives = backbone.fusion(image_hidden, text_hidden[partners], valid[partners])
                logits = self.itm_head(torch.cat((fused[:, 0], negatives[:, 0])))
                matched = torch.arange(2 * len(targets), device=logits.device) < len(targets)
                losses["loss_itm"] = itm_loss(logits, matched), len(matched)
        return fused[:, 0], losses

    def _combine_task_losses(self, parts: dict[str, tuple[torch.Tensor, int, int]], batch_size: int,
                             features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each MMM loss weighted by its task's share of the batch, over all processes.

        ``parts[name] = (mean, count, samples)``: the loss averaged over ``count`` elements (masked patches or
        tokens, pairs) of a task with ``samples`` of the ``batch_size`` samples. One process: ``mean x
        samples / batch_size``. N processes: ``mean x count x S / (C x batch_size)`` with C, S the sums of
        ``count`` and ``samples`` over the processes, so DDP's average over processes is the mean over all
        processes' elements times the task's share of the global batch, as one process computes it; a loss
        another process has and this one has not is 0 here, and every process returns the same names.
        """
        names = [name for name in LOSS_NAMES.values() if self.loss_weights[name] > 0]
        if comm.get_world_size() <= 1:
            return {name: parts[name][0] * parts[name][2] / batch_size for name in names if name in parts}
        local = torch.tensor([parts[name][1:] if name in parts else (0, 0) for name in names],
                             dtype=torch.float64, device=features.device).reshape(len(names), 2)
        totals = sum_over_processes(local).tolist()
        combined = {}
        for name, (count, samples) in zip(names, totals):
            if count == 0:
                continue
            if name in parts:
                mean, local_count, _ = parts[name]
                combined[name] = mean * (local_count * samples / (count * batch_size))
            else:
                combined[name] = features.new_zeros(())
        return combined

    def _mim(self, head: nn.Module, patch_states: torch.Tensor, raw: torch.Tensor, images: torch.Tensor,
             patch_mask: torch.Tensor) -> torch.Tensor:
        """MIM loss of ``(b, N, D)`` patch states (the model's own or fused) at the masked patches."""
        if self.dvae is None:
            return mim_pixel_loss(head(patch_states), images, patch_mask, self.patch_size, norm_pix=self.norm_pix)
        targets = self.dvae(raw)[patch_mask]
        logits = head(patch_states[patch_mask])
        return mim_token_loss(logits[None], targets[None], torch.ones_like(targets, dtype=torch.bool)[None])

    @staticmethod
    def _mlm(head: nn.Module, token_states: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MLM loss of ``(b, L, D)`` token states at the labelled (masked) positions only."""
        chosen = labels != IGNORE_INDEX
        logits = head(token_states[:, : labels.shape[1]][chosen])
        return mlm_loss(logits[None], labels[chosen][None])
