"""Text-to-image person retrieval, scored as fast-reid scores image Re-ID.

Protocol (text-based person search: CUHK-PEDES, Li et al. CVPR 2017; as IRRA, Jiang & Ye CVPR 2023, evaluates
it): each query is one description, the gallery is images, a gallery image matches when it shows the query's
identity. Nothing is removed from the gallery (a description has no camera, so fast-reid's same-camera rule
does not apply). Metrics are fast-reid's (``fastreid.evaluation.rank.evaluate_rank``): Rank-1/5/10 (CMC), mAP,
mINP, and ``metric`` = (mAP + Rank-1) / 2, in percent, under the same keys as ``ReidEvaluator``.

Datasets (``DATASETS.TEXT_TESTS``): any registered dataset with a ``text_queries`` attribute
(``[(description, pid)]``) and a ``gallery``: the bundled ``SynthMarket`` / ``SynthMSMT`` (one description per
query identity, from ``descriptions.json``) and the text-based person search sets ``CUHKPEDES``,
``ICFGPEDES``, ``RSTPReid`` (every caption of every evaluation image, ``DATASETS.TEXT_SPLIT``).

Features: gallery images go through fast-reid's ``inference_on_dataset`` exactly as in ``ReidEvaluator``
(test transform, ``TEST.FLIP``); descriptions through ``text_test_features`` (same space, same BNNeck rule).
Distances: ``TEST.METRIC`` via fast-reid's ``build_dist``. Query expansion and re-ranking are image-query
techniques and are not applied.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from fastreid.evaluation.evaluator import DatasetEvaluator, inference_context
from fastreid.utils.compute_dist import build_dist

from .gathering import gathered_predictions

__all__ = ["TextToImageSet", "TextToImageEvaluator", "load_text_to_image_set", "text_to_image_metrics",
           "encode_texts_batched", "RESULT_SUFFIX"]

logger = logging.getLogger(__name__)

#: Results of text test set ``NAME`` are stored under ``NAME + RESULT_SUFFIX`` beside the image Re-ID results.
RESULT_SUFFIX = " (text->image)"


@dataclass(frozen=True)
class TextToImageSet:
    """A text-to-image test set.

    Attributes:
        name: the registered dataset name.
        queries: ``[(description, pid)]``.
        gallery: fast-reid gallery tuples ``(img_path, pid, camid)``.
    """

    name: str
    queries: list[tuple[str, int]]
    gallery: list[tuple]


def load_text_to_image_set(cfg, dataset_name: str) -> TextToImageSet:
    """Build the registered dataset ``dataset_name`` (its config arguments included) and take its text queries.

    Raises:
        KeyError: the name is not registered (fast-reid's message).
        ValueError: the dataset has no ``text_queries`` (names ``DATASETS.TEXT_TESTS`` and what qualifies), no
            queries or an empty gallery, or a query identity absent from the gallery.
        FileNotFoundError: from the dataset (missing folders, a missing ``descriptions.json``).
    """
    from fastreid.data.datasets import DATASET_REGISTRY

    from ..data.build import datasets_root
    from ..data.datasets.from_config import dataset_kwargs

    cls = DATASET_REGISTRY.get(dataset_name)
    if not hasattr(cls, "text_queries"):
        raise ValueError(f"config DATASETS.TEXT_TESTS holds {dataset_name!r}, which has no descriptions; expected "
                         "a dataset with text queries (SynthMarket, SynthMSMT, CUHKPEDES, ICFGPEDES, RSTPReid)")
    data = cls(root=datasets_root(), **dataset_kwargs(cfg, dataset_name))
    queries = [(str(text), int(pid)) for text, pid in data.text_queries]
    gallery = list(data.gallery)
    if not queries or not gallery:
        raise ValueError(f"text-to-image test set {dataset_name!r}: {len(queries)} text queries and {len(gallery)} "
                         "gallery images; expected both non-empty")
    gallery_pids = {int(item[1]) for item in gallery}
    lost = sorted({pid for _, pid in queries} - gallery_pids)
    if lost:
        raise ValueError(f"text-to-image test set {dataset_name!r}: query identities {lost[:5]} have no gallery "
                         "image; every description needs at least one matching image")
    return TextToImageSet(dataset_name, queries, gallery)


def text_to_image_metrics(distmat: np.ndarray, query_pids: np.ndarray, gallery_pids: np.ndarray,
                          gallery_camids: np.ndarray) -> OrderedDict:
    """CMC / mAP / mINP of a text-to-image distance matrix with fast-reid's ``evaluate_rank``.

    Args:
        distmat: float ``(Q, G)`` distances, smaller = closer.
        query_pids: int ``(Q,)``; gallery_pids, gallery_camids: int ``(G,)``.

    Returns:
        ``OrderedDict`` with ``Rank-1``, ``Rank-5``, ``Rank-10``, ``mAP``, ``mINP``, ``metric`` in percent.

    Raises:
        ValueError: shapes that disagree.
    """
    from fastreid.evaluation.rank import evaluate_rank

    distmat = np.asarray(distmat, dtype=np.float32)
    if distmat.shape != (len(query_pids), len(gallery_pids)) or len(gallery_camids) != len(gallery_pids):
        raise ValueError(f"distance matrix {distmat.shape} for {len(query_pids)} queries and {len(gallery_pids)} "
                         f"gallery images ({len(gallery_camids)} camera ids)")
    # A description has no camera: a query camera id no gallery image has keeps every gallery image.
    query_camids = np.full(len(query_pids), int(np.min(gallery_camids)) - 1, dtype=np.int64)
    cmc, all_ap, all_inp = evaluate_rank(distmat, np.asarray(query_pids, dtype=np.int64),
                                         np.asarray(gallery_pids, dtype=np.int64), query_camids,
                                         np.asarray(gallery_camids, dtype=np.int64), max_rank=10)
    results = OrderedDict()
    for rank in (1, 5, 10):
        results[f"Rank-{rank}"] = float(cmc[min(rank, len(cmc)) - 1]) * 100
    results["mAP"] = float(np.mean(all_ap)) * 100
    results["mINP"] = float(np.mean(all_inp)) * 100
    results["metric"] = (results["mAP"] + results["Rank-1"]) / 2
    return results


@torch.no_grad()
def encode_texts_batched(model: torch.nn.Module, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """``model.text_test_features`` over ``texts`` in batches, in eval mode: float32 ``(len(texts), D)`` on the CPU.

    ``model`` may be wrapped in ``DistributedDataParallel`` (its ``module`` is used).

    Raises:
        RuntimeError: the model has no text encoder.
    """
    module = getattr(model, "module", model)
    if not hasattr(module, "text_test_features"):
        raise RuntimeError(f"{type(module).__name__} cannot encode descriptions (no text branch); text-to-image "
                           "retrieval needs a DMF or MMET model with a text encoder")
    features = []
    with inference_context(module):
        for start in range(0, len(texts), max(1, int(batch_size))):
            features.append(module.text_test_features(list(texts[start:start + batch_size])).float().cpu())
    return torch.cat(features)


class TextToImageEvaluator(DatasetEvaluator):
    """fast-reid ``DatasetEvaluator`` for text-to-image retrieval: collects gallery features, then scores queries.

    Use as ``ReidEvaluator``: ``inference_on_dataset(model, gallery_loader, evaluator, flip_test)`` feeds it the
    gallery batches (``process``); ``evaluate`` encodes the descriptions with the same model and returns the
    metrics of :func:`text_to_image_metrics` (on the main process; ``{}`` elsewhere under DDP, as upstream).

    Args:
        cfg: the run's config (``TEST.METRIC``, ``TEST.IMS_PER_BATCH``).
        model: the model being tested (also encodes the descriptions).
        queries: ``[(description, pid)]``.
    """

    def __init__(self, cfg, model: torch.nn.Module, queries: Sequence[tuple[str, int]]) -> None:
        self.cfg, self.model, self.queries = cfg, model, list(queries)
        self._predictions: list[dict] = []

    def reset(self) -> None:
        """Forget collected gallery features."""
        self._predictions = []

    def process(self, inputs: dict, outputs: torch.Tensor) -> None:
        """Keep a gallery batch: ``outputs`` float ``(B, D)``, ``inputs["targets"]`` / ``["camids"]`` int ``(B,)``."""
        self._predictions.append({"feats": outputs.to("cpu", torch.float32), "pids": inputs["targets"].cpu(),
                                  "camids": inputs["camids"].cpu()})

    def evaluate(self) -> OrderedDict | dict:
        """See class docstring."""
        gathered = gathered_predictions(self._predictions)
        if gathered is None:  # not the main process
            return {}
        gallery, gallery_pids, gallery_camids = gathered
        texts = [text for text, _ in self.queries]
        query = encode_texts_batched(self.model, texts, self.cfg.TEST.IMS_PER_BATCH)
        distmat = build_dist(query, gallery, self.cfg.TEST.METRIC)
        query_pids = np.array([pid for _, pid in self.queries], dtype=np.int64)
        return text_to_image_metrics(distmat, query_pids, gallery_pids, gallery_camids)
