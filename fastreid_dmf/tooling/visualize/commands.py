"""The bodies of ``tools/visualize_ranking.py`` and ``tools/visualize_attention.py``: inputs, models, files.

Both check every argument and output path before a model is loaded, refuse to replace existing outputs
without ``overwrite`` (nothing is overwritten silently), and raise ``ValueError`` / ``OSError`` subclasses
whose message names the bad option, file or key (``fastreid_dmf.engine.cli.run_cli`` prints them as one line).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence

import numpy as np
import torch

from .attention import CAM_METHODS, METHODS, image_maps, model_has_text, text_token_attention
from .figures import GalleryTile, RankingLayout, attention_figure, contact_sheet, draw_ranking_list, token_bar_figure
from .ranking import (
    QUERY_MODES,
    check_dataset_name,
    evaluator_distances,
    extract_test_features,
    rank_queries,
    select_queries,
)

__all__ = ["RANKING_FILES", "check_output_folder", "replace_earlier_outputs", "load_test_images",
           "query_image_paths", "visualize_attention", "visualize_ranking"]

logger = logging.getLogger(__name__)

#: What ``visualize_ranking`` writes into its folder (``query_*.png`` one per query drawn).
RANKING_FILES = ("ranking.json", "contact_sheet.png")


def check_output_folder(out: str, overwrite: bool, contents: str) -> None:
    """Refuse a non-empty ``out`` without ``overwrite`` or a file at ``out`` (before any work is done).

    Args:
        out: the output folder. overwrite: an earlier run's files may be replaced. contents: what the tool writes
            (named in the message).

    Raises:
        NotADirectoryError: ``out`` is a file. FileExistsError: ``out`` holds files and not ``overwrite``.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"--out {out!r} exists and is not a folder; expected a new or empty folder")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise FileExistsError(f"--out {out!r} exists and is not empty; pass --overwrite to replace its {contents}, "
                              "or choose a new folder")


def replace_earlier_outputs(out: str, names: Sequence[str]) -> None:
    """Create ``out`` and remove what an earlier run wrote there: ``names`` and ``query_*.png`` (nothing else)."""
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name in names or (name.startswith("query_") and name.endswith(".png")):
            os.remove(os.path.join(out, name))


def visualize_ranking(checkpoint: str, dataset: str, out: str, config_file: str = "", opts: Sequence[str] = (),
                      k: int = 10, queries: str | None = None, num: int = 8, ids: Sequence[int] = (),
                      seed: int = 0, cell_height: int = 128, overwrite: bool = False, device: str = "") -> dict:
    """Draw top-k ranking lists of chosen queries of a test set (DMF Fig. 4) into the folder ``out``.

    Writes ``query_<nn>_<row>.png`` per query drawn (``nn``: 1-based order of drawing, ``row``: the query's
    row in the test loader), each of ``figures.RankingLayout`` size (see :mod:`.figures`), the
    ``contact_sheet.png`` stacking them, and ``ranking.json`` (run settings, mAP and per query: path, pid,
    camid, AP, skipped count, and the top-k gallery images with path, pid, camid, distance and match flag).

    Args:
        checkpoint, config_file, opts, device: see :func:`fastreid_dmf.engine.inference.load_inference_model`.
        dataset: a registered fast-reid dataset name (its query / gallery split).
        out: output folder (created; must be new or empty unless ``overwrite``).
        k: gallery images per list. queries: a :data:`.ranking.QUERY_MODES` value, default "ids" when ``ids``
            are given, else "worst". num, ids, seed: see :func:`.ranking.select_queries`.
        cell_height: height in pixels of each image in the lists.
        overwrite: replace an earlier run's files in ``out`` (other files are left alone).

    Returns:
        The ``ranking.json`` content (a dict).

    Raises:
        ValueError: a bad option (names it), unknown dataset, or a config / checkpoint error.
        FileExistsError, NotADirectoryError: ``out`` is not usable. FileNotFoundError: missing checkpoint,
            config or dataset folder.
    """
    from ...engine.inference import load_inference_model

    queries = queries or ("ids" if ids else "worst")
    if queries not in QUERY_MODES:
        raise ValueError(f"--queries {queries!r}: expected one of {QUERY_MODES}")
    if num < 1:
        raise ValueError(f"--num {num}: expected at least 1")
    if k < 1:
        raise ValueError(f"--k {k}: expected at least 1 gallery image per list")
    if cell_height < 16:
        raise ValueError(f"--cell-height {cell_height}: expected at least 16 pixels")
    check_dataset_name(dataset)
    check_output_folder(out, overwrite, "ranking lists")
    cfg, model = load_inference_model(checkpoint, config_file, opts, device)
    layout = RankingLayout.for_test_size(k, cell_height, cfg.INPUT.SIZE_TEST)
    features = extract_test_features(cfg, model, dataset)
    dist = evaluator_distances(cfg, features.query, features.gallery)
    rankings, mean_ap = rank_queries(dist, features, k)
    chosen = select_queries(rankings, features.query_pids, queries, num, ids, seed)
    metric = cfg.TEST.METRIC + (" + AQE" if cfg.TEST.AQE.ENABLED else "") + \
        (" + re-ranking" if cfg.TEST.RERANK.ENABLED else "")
    records, pictures = [], []
    for order, row in enumerate(chosen, start=1):
        ranking = rankings[row]
        tiles = [GalleryTile(features.gallery_paths[g], rank, int(features.gallery_pids[g]), float(d), bool(m))
                 for rank, (g, d, m) in enumerate(zip(ranking.top, ranking.distances, ranking.matches), start=1)]
        ap_text = "no match in gallery" if ranking.ap is None else f"AP {ranking.ap:.3f}"
        title = f"{dataset} query {row}: id {features.query_pids[row]}, camera {features.query_camids[row]} · {ap_text}"
        caption = (f"{ranking.skipped} same-id same-camera gallery image(s) skipped (Market-1501 protocol); "
                   f"top {len(tiles)} of {ranking.kept} by {metric} distance")
        pictures.append(draw_ranking_list(layout, features.query_paths[row], int(features.query_pids[row]),
                                          int(features.query_camids[row]), tiles, title, caption))
        records.append({
            "png": f"query_{order:02d}_{row}.png", "query_index": row, "path": features.query_paths[row],
            "pid": int(features.query_pids[row]), "camid": int(features.query_camids[row]), "ap": ranking.ap,
            "skipped_same_pid_same_camera": ranking.skipped, "ranked_gallery": ranking.kept,
            "top_k": [{"rank": t.rank, "gallery_index": int(g), "path": t.path, "pid": t.pid,
                       "camid": int(features.gallery_camids[g]), "distance": t.distance, "match": t.match}
                      for t, g in zip(tiles, ranking.top)],
        })
    width, height = layout.size
    summary = {
        "checkpoint": os.path.abspath(checkpoint), "config_file": os.path.abspath(config_file) if config_file else "",
        "opts": list(opts), "dataset": dataset, "metric": metric, "flip_test": bool(cfg.TEST.FLIP.ENABLED),
        "k": k, "queries": queries, "num": num, "ids": list(ids), "seed": seed,
        "num_query": len(features.query_pids), "num_gallery": len(features.gallery_pids), "mAP": mean_ap,
        "rule": "gallery images of the query's identity and camera are skipped (Market-1501 protocol, as "
                "fast-reid's evaluate_rank)",
        "image_size": {"width": width, "height": height, "cell_width": layout.cell_w, "cell_height": layout.cell_h},
        "contact_sheet": "contact_sheet.png", "queries_drawn": records,
    }
    replace_earlier_outputs(out, RANKING_FILES)
    for record, picture in zip(records, pictures):
        picture.save(os.path.join(out, record["png"]))
    contact_sheet(pictures).save(os.path.join(out, "contact_sheet.png"))
    with open(os.path.join(out, "ranking.json"), "w") as handle:
        json.dump(summary, handle, indent=1)
    logger.info("Wrote %d ranking lists of %s (mAP %s) to %s", len(records), dataset,
                "n/a" if mean_ap is None else f"{100 * mean_ap:.2f}%", out)
    return summary


def query_image_paths(cfg, dataset: str, num: int) -> list[str]:
    """The first ``num`` query images of a registered fast-reid dataset: one per identity first, in query order.

    Args:
        cfg: a model's config (the dataset's constructor arguments, ``dataset_kwargs``).

    Raises:
        ValueError: ``num`` < 1 or an unknown dataset (lists the registered names).
        FileNotFoundError: from the dataset class (its folder under the dataset root is missing).
    """
    from fastreid.data.datasets import DATASET_REGISTRY

    from ...data.build import dataset_kwargs, datasets_root

    if num < 1:
        raise ValueError(f"--num {num}: expected at least 1")
    check_dataset_name(dataset)
    data = DATASET_REGISTRY.get(dataset)(root=datasets_root(), **dataset_kwargs(cfg, dataset))
    seen: set[int] = set()
    first, rest = [], []
    for path, pid, _ in data.query:
        (rest if pid in seen else first).append(path)
        seen.add(pid)
    return (first + rest)[:num]


def load_test_images(cfg, paths: Sequence[str]) -> torch.Tensor:
    """Images as the test loader gives them: fast-reid's ``read_image`` (RGB) + test transforms.

    Returns:
        float32 ``(N, 3, H, W)`` in 0..255, H x W = ``INPUT.SIZE_TEST``.

    Raises:
        ValueError: no paths. FileNotFoundError: a missing file. OSError: an unreadable image (names it).
    """
    from fastreid.data.data_utils import read_image
    from fastreid.data.transforms import build_transforms
    from PIL import UnidentifiedImageError

    if not paths:
        raise ValueError("no images given; pass --images PATH [PATH ...] or --dataset NAME --num N")
    transform = build_transforms(cfg, is_train=False)
    tensors = []
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image {path!r} is not a file")
        try:
            tensors.append(transform(read_image(path, "RGB")))
        except (UnidentifiedImageError, OSError) as err:
            raise OSError(f"image {path!r} cannot be read: {err}") from err
    return torch.stack(tensors).float()


def _output_paths(out: str) -> dict[str, str]:
    """Every file :func:`visualize_attention` may write for ``--out FILE.png``."""
    stem = out[:-len(".png")]
    return {"figure": out, "maps": stem + ".npy", "json": stem + ".json", "text_figure": stem + "_text.png"}


def visualize_attention(checkpoint: str, out: str, config_file: str = "", compare_checkpoint: str = "",
                        compare_config: str = "", labels: Sequence[str] = (), images: Sequence[str] = (),
                        dataset: str = "", num: int = 4, method: str = "gradcam", texts: Sequence[str] = (),
                        reference: str = "", overwrite: bool = False, opts: Sequence[str] = (),
                        device: str = "") -> dict:
    """Attention maps of one or two models on the same images (DMF Fig. 5), optionally text-token bars.

    Writes, beside ``out`` (``FILE.png``): ``FILE.png`` (rows: images; columns: input, then each model's map
    overlaid), ``FILE.npy`` (float32 ``(N, M, H, W)`` maps in [0, 1] at the first model's ``INPUT.SIZE_TEST``,
    N images, M models), ``FILE.json`` (settings, images, labels and, with ``texts``, the tokens and weights)
    and with ``texts`` ``FILE_text.png`` (one bar chart per description and model; without ``texts`` an earlier
    run's ``FILE_text.png`` is removed, so the files always belong together). Any of the four existing stops
    the run unless ``overwrite``.

    Args:
        checkpoint, config_file: the first model (config "" = ``config.yaml`` beside the checkpoint).
        compare_checkpoint, compare_config: an optional second model (e.g. "DMF w/o Text" beside "DMF").
        labels: column titles, one per model (default: the checkpoints' folder names).
        images: image files; or ``dataset`` + ``num``: :func:`query_image_paths` (first model's config).
        method: "gradcam", "eigencam" or "rollout" (:mod:`.attention`).
        texts: descriptions for the token-attention bars (every model needs a text encoder).
        reference: Grad-CAM target = cosine similarity to this image's feature (default: each image's own).
        overwrite: replace existing output files. opts: ``KEY VALUE`` overrides for every model. device: see
            :func:`fastreid_dmf.engine.inference.load_inference_model`.

    Returns:
        The ``FILE.json`` content (a dict).

    Raises:
        ValueError: a bad option (names it), a model without text encoder given ``texts`` (names its
            checkpoint), or a config / checkpoint error.
        FileExistsError: an output exists and ``overwrite`` is False. FileNotFoundError: a missing checkpoint,
            config or image (names it). OSError: an unreadable image.
    """
    from ...engine.inference import load_inference_model

    if method not in METHODS:
        raise ValueError(f"--method {method!r}: expected one of {METHODS}")
    if not out.lower().endswith(".png"):
        raise ValueError(f"--out {out!r}: expected a .png file name")
    if compare_config and not compare_checkpoint:
        raise ValueError("--compare-config given without --compare-checkpoint")
    if bool(images) == bool(dataset):
        raise ValueError("give either --images PATH [PATH ...] or --dataset NAME --num N (got "
                         f"{'both' if images else 'neither'})")
    if reference and method != "gradcam":
        raise ValueError(f"--reference sets Grad-CAM's target; --method {method} has no target")
    if any(not text for text in texts):
        raise ValueError("--text: got an empty description")
    checkpoints = [checkpoint] + ([compare_checkpoint] if compare_checkpoint else [])
    configs = [config_file] + ([compare_config] if compare_checkpoint else [])
    if labels and len(labels) != len(checkpoints):
        raise ValueError(f"--labels: got {len(labels)} label(s) for {len(checkpoints)} model(s); give one per model")
    if not labels:
        names = [os.path.basename(os.path.dirname(os.path.abspath(c))) or c for c in checkpoints]
        labels = names if len(set(names)) == len(names) else [f"{n} ({i + 1})" for i, n in enumerate(names)]
    for path in checkpoints:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint {path!r} is not a file; expected a fast-reid checkpoint such as "
                                    "<OUTPUT_DIR>/model_final.pth")
    if dataset:
        check_dataset_name(dataset)
        if num < 1:
            raise ValueError(f"--num {num}: expected at least 1")
    for path in list(images) + ([reference] if reference else []):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"image {path!r} is not a file")
    outputs = _output_paths(out)
    existing = [p for p in outputs.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise FileExistsError(f"output {existing[0]!r} exists; pass --overwrite to replace it")
    models = [load_inference_model(c, f, opts, device) for c, f in zip(checkpoints, configs)]
    paths = list(images) if images else query_image_paths(models[0][0], dataset, num)
    if texts:
        for path, label, (_, model) in zip(checkpoints, labels, models):
            if not model_has_text(model):
                raise ValueError(f"--text: model {label!r} (checkpoint {path}) has no text encoder "
                                 "(MODEL.DMF.TEXT_ENCODER.NAME is empty); drop --text or use a model with text")
    display_cfg = models[0][0]
    display = load_test_images(display_cfg, paths)  # (N, 3, H, W) 0..255
    height, width = display.shape[-2:]
    all_maps = []
    for cfg, model in models:
        batch = load_test_images(cfg, paths).to(model.device)
        target = None
        if reference:
            with torch.no_grad():
                target = model.image_test_features(load_test_images(cfg, [reference]).to(model.device))[0]
        maps = image_maps(model, batch, method, target)
        if maps.shape[1:] != (height, width):
            import cv2

            maps = np.stack([cv2.resize(m, (int(width), int(height)), interpolation=cv2.INTER_LINEAR) for m in maps])
        all_maps.append(maps)
    maps = np.stack(all_maps, axis=1).astype(np.float32)  # (N, M, H, W)
    target_text = {"gradcam": f"Grad-CAM, target: {'cosine to the reference image' if reference else 'own feature'}",
                   "eigencam": "Eigen-CAM", "rollout": "attention rollout of [cls]"}[method]
    layer = "last block norm1" if method in CAM_METHODS else "all blocks"
    figure = attention_figure(display.permute(0, 2, 3, 1).numpy() / 255.0, maps, labels,
                              [os.path.basename(p) for p in paths], title=f"{target_text} ({layer})")
    text_results = []
    if texts:
        entries = []
        for text in texts:
            for label, (_, model) in zip(labels, models):
                tokens, weights = text_token_attention(model, text)
                entries.append((label, text, tokens, weights))
                text_results.append({"text": text, "model": label, "tokens": tokens,
                                     "weights": [float(w) for w in weights]})
        text_figure = token_bar_figure(entries, columns=len(models))
    summary = {
        "method": method, "target": target_text, "checkpoints": [os.path.abspath(c) for c in checkpoints],
        "labels": list(labels), "images": [os.path.abspath(p) for p in paths],
        "reference": os.path.abspath(reference) if reference else "", "opts": list(opts),
        "maps": os.path.basename(outputs["maps"]), "maps_shape": list(maps.shape), "text": text_results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    figure.savefig(outputs["figure"])
    np.save(outputs["maps"], maps)
    if texts:
        text_figure.savefig(outputs["text_figure"])
    elif os.path.exists(outputs["text_figure"]):  # an earlier run's bars (overwrite is set, else we stopped above)
        os.remove(outputs["text_figure"])
    with open(outputs["json"], "w") as handle:
        json.dump(summary, handle, indent=1)
    logger.info("Wrote %s maps of %d image(s) x %d model(s) to %s", method, len(paths), len(models), out)
    return summary
