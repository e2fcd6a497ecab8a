"""Person search by description: descriptions + a trained DMF / MMET model + a gallery -> ranked images.

The body of ``tools/search_text.py``. DMF encodes descriptions and images into one space (DMF Sec. 3, Eq. 3-5:
modality-specific projections into one shared transformer); MMET projects its text and image [cls] into one
Re-ID space. So a description's test feature (``text_test_features``) is compared with the gallery images'
test features (the ones fast-reid's evaluator scores: :func:`~fastreid_dmf.tooling.features.feature_model`,
``TEST.FLIP`` honoured) by ``TEST.METRIC``, with the faiss
:class:`~fastreid_dmf.evaluation.search.Searcher`.

Gallery: a folder of images (identities unknown: neutral frames), or the gallery of a registered dataset
(identities known). Queries: descriptions given by the user (``--text`` / ``--text-file``), or with
``--dataset-queries N`` the first N text queries of a dataset with descriptions (``DATASETS.TEXT_TESTS``
sets); for queries of known identity the frames are green (same identity) / red, as in DMF Fig. 4.

Writes into a new or empty folder: ``query_<nn>.png`` per description (:func:`.visualize.figures.
draw_text_ranking_list`), ``contact_sheet.png`` and ``search.json`` (descriptions, ranked paths, pids,
distances, match flags).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np

__all__ = ["SEARCH_FILES", "read_descriptions", "search_by_text"]

logger = logging.getLogger(__name__)

#: Files :func:`search_by_text` writes besides ``query_<nn>.png``.
SEARCH_FILES = ("search.json", "contact_sheet.png")


def read_descriptions(path: str) -> list[str]:
    """Descriptions of a text file, one per non-empty line (UTF-8).

    Raises:
        FileNotFoundError: no such file. ValueError: no description in it (names the file).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--text-file {path!r} is not a file; expected one description per line")
    with open(path, encoding="utf-8") as handle:
        texts = [line.strip() for line in handle if line.strip()]
    if not texts:
        raise ValueError(f"--text-file {path!r} holds no description; expected one per line")
    return texts


def search_by_text(checkpoint: str, out: str, texts: Sequence[str] = (), images: str = "", dataset: str = "",
                   dataset_queries: int = 0, config_file: str = "", opts: Sequence[str] = (), k: int = 10,
                   batch_size: int = 64, cell_height: int = 128, overwrite: bool = False, device: str = "",
                   progress: bool = True) -> dict:
    """Rank gallery images for each description; write the ranking PNGs and ``search.json`` into ``out``.

    Args:
        checkpoint: a DMF / MMET checkpoint with a text encoder (``model_final.pth``).
        out: output folder, new or empty (``overwrite`` replaces an earlier search's files only).
        texts: descriptions (ignored with ``dataset_queries``).
        images: gallery folder (exactly one of ``images`` / ``dataset``).
        dataset: registered dataset whose gallery is searched.
        dataset_queries: > 0: use the first N text queries of ``dataset`` (known identities) instead of ``texts``.
        config_file: the run's config ("" = ``config.yaml`` beside the checkpoint); opts: ``KEY VALUE`` overrides.
        k: images per ranking (>= 1); batch_size: images per forward pass; cell_height: image height in the PNGs.
        device: "cpu" / "cuda" ("" = ``MODEL.DEVICE``); progress: show a progress bar.

    Returns:
        ``{"queries": [{"description", "pid", "results": [{"rank", "path", "pid", "distance", "match"}]}],
        "gallery_size", "metric", "outputs"}`` (what ``search.json`` holds).

    Raises:
        ValueError: no description, a user's description longer than ``MODEL.DMF.TEXT_ENCODER.MAX_TOKENS`` (the
            dataset's own are cut as the evaluator cuts them), not exactly
            one gallery source, ``k`` < 1, an empty gallery folder, a dataset without text queries.
        RuntimeError: the model has no text encoder.
        FileExistsError / NotADirectoryError / FileNotFoundError: ``out`` not usable, a missing checkpoint, config
            or folder (names the path). All raised before any image is encoded.
    """
    from fastreid.data.transforms import build_transforms

    from ..engine.inference import check_description_lengths, load_inference_model
    from ..evaluation.search import Searcher
    from ..evaluation.text_to_image import encode_texts_batched, load_text_to_image_set
    from .features import compute_features, dataset_images, feature_model, find_images, image_batches
    from .visualize.commands import check_output_folder, replace_earlier_outputs
    from .visualize.figures import GalleryTile, RankingLayout, contact_sheet, draw_text_ranking_list

    if bool(images) == bool(dataset):
        raise ValueError("give exactly one gallery: --images FOLDER or --dataset NAME")
    if dataset_queries and not dataset:
        raise ValueError("--dataset-queries needs --dataset (the queries are that dataset's descriptions)")
    if k < 1:
        raise ValueError(f"--k {k}: expected at least 1 image per ranking")
    if not dataset_queries and not [t for t in texts if t.strip()]:
        raise ValueError("no description given: pass --text \"...\" (repeatable), --text-file FILE or "
                         "--dataset-queries N")
    gallery_paths = find_images(images) if images else []
    check_output_folder(out, overwrite, "earlier search's files")
    cfg, model = load_inference_model(checkpoint, config_file, opts, device)
    if dataset_queries:
        # The protocol's own descriptions: cut at MAX_TOKENS exactly as the evaluator cuts them.
        test_set = load_text_to_image_set(cfg, dataset)
        queries = [(text, pid) for text, pid in test_set.queries[:dataset_queries]]
    else:
        queries = [(text.strip(), None) for text in texts if text.strip()]
        check_description_lengths(model, [text for text, _ in queries])
    if dataset:
        listing = dataset_images(cfg, dataset)
        keep = [i for i, split in enumerate(listing["splits"]) if split == "gallery"]
        gallery_paths = [listing["paths"][i] for i in keep]
        gallery_pids = [listing["pids"][i] for i in keep]
    else:
        gallery_pids = [None] * len(gallery_paths)
    batches = image_batches(gallery_paths, build_transforms(cfg, is_train=False), batch_size, 0)
    gallery = compute_features(feature_model(model, bool(cfg.TEST.FLIP.ENABLED)), batches, len(gallery_paths),
                               progress)
    query_features = encode_texts_batched(model, [text for text, _ in queries], batch_size)
    searcher = Searcher(gallery, cfg.TEST.METRIC, labels=list(zip(gallery_paths, gallery_pids, strict=True)))
    found = searcher.search(query_features.numpy(), k)
    layout = RankingLayout.for_test_size(min(k, len(searcher)), cell_height, cfg.INPUT.SIZE_TEST)
    report: dict = {"queries": [], "gallery_size": len(searcher), "metric": cfg.TEST.METRIC, "outputs": []}
    replace_earlier_outputs(out, SEARCH_FILES)
    pictures = []
    for number, ((text, pid), labels, distances) in enumerate(zip(queries, found.labels, found.distances,
                                                                  strict=True), start=1):
        known = pid is not None
        tiles = [GalleryTile(path, rank, g_pid, float(distance), known and g_pid == pid)
                 for rank, ((path, g_pid), distance) in enumerate(zip(labels, distances, strict=True), start=1)]
        first = next((t.rank for t in tiles if t.match), None) if known else None
        title = f"text query {number}" + (f", id {pid}: first match at rank {first}" if first else
                                           f", id {pid}: no match in the top {len(tiles)}" if known else "")
        title += f" ({len(searcher)} gallery images, {cfg.TEST.METRIC} distance)"
        picture = draw_text_ranking_list(layout, text, tiles, title, f'"{text}"', known)
        path = os.path.join(out, f"query_{number:02d}.png")
        picture.save(path)
        pictures.append(picture)
        report["outputs"].append(path)
        report["queries"].append({"description": text, "pid": pid, "results": [
            {"rank": t.rank, "path": t.path, "pid": t.pid, "distance": t.distance, "match": t.match if known else None}
            for t in tiles]})
    sheet = os.path.join(out, "contact_sheet.png")
    contact_sheet(pictures).save(sheet)
    report["outputs"].append(sheet)
    report.update(checkpoint=os.path.abspath(checkpoint), k=int(k),
                  gallery_source={"images": os.path.abspath(images)} if images else {"dataset": dataset})
    with open(os.path.join(out, "search.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, default=lambda value: value.item() if isinstance(value, np.generic)
                  else str(value))
    return report
