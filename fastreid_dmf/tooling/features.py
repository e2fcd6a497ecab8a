"""Image features of a trained DMF / MMET model, written to a file: checkpoint + images -> ``(N, D)`` float32.

``tools/extract_features.py`` is the command line; this module is its logic, also used by
:mod:`.onnx_export` to read check images.

Images come from a folder (every ``.jpg``/``.jpeg``/``.png``/``.bmp`` below it, any letter case, recursive,
sorted by their path relative to the folder) or from a registered fast-reid dataset (its ``query`` then its
``gallery`` items, the order of ``build_dmf_test_loader``, with pids, camids and the split of each).

The features are the ones fast-reid's ``ReidEvaluator`` scores for the same images:

* each image is read with fast-reid's ``read_image`` (what its ``CommDataset`` uses) and transformed with
  ``build_transforms(cfg, is_train=False)`` (resize to ``INPUT.SIZE_TEST``, tensor in 0..255);
* the model feature is :class:`~fastreid_dmf.engine.inference.ImageFeatureModel` (``MODEL.DMF.TEST_FEAT``,
  image branch), under ``torch.no_grad`` in eval mode;
* with ``TEST.FLIP.ENABLED`` the feature is the mean of the image's and its horizontal flip's features, as
  fast-reid's ``inference_on_dataset(..., flip_test=True)`` computes it (:class:`FlipAveragedFeatureModel`).

Features are not L2-normalised (the evaluator normalises for ``TEST.METRIC cosine`` itself). One exception
to "what the evaluator gets": an image that ``read_image`` leaves with other than 3 channels (RGBA, LA)
is converted to RGB, where fast-reid's evaluation would fail on the channel count.

Output, chosen by the suffix of the output path:

* ``.npy``: the ``(N, D)`` float32 array (``numpy.save``) plus a sidecar ``<stem>.json`` holding the metadata;
* ``.safetensors``: tensor ``"features"`` ``(N, D)`` float32; the file's metadata (strings only) maps each
  metadata key to its value as JSON text (``"paths"`` -> a JSON list of strings, ...).

Metadata keys: ``paths`` (N strings, row order), ``pids`` / ``camids`` / ``splits`` (N values each, dataset
only; ``None`` for a folder), ``num_query`` (dataset only, else ``None``), ``source`` (``{"images": folder}`` or
``{"dataset": name, "root": root}``), ``checkpoint``, ``config_file``, ``meta_architecture``, ``test_feat``,
``size_test``, ``flip_test``, ``feature_dim``, ``num_images``. :func:`read_features` reads either format back.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from numbers import Integral

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

__all__ = ["IMAGE_SUFFIXES", "FEATURE_SUFFIXES", "FlipAveragedFeatureModel", "find_images", "dataset_images",
           "read_image_rgb", "image_batches", "compute_features", "feature_model", "output_paths",
           "check_outputs_free", "write_features", "read_features", "extract_features"]

logger = logging.getLogger(__name__)

#: Image file suffixes :func:`find_images` collects (compared in lower case).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")
#: Output suffixes :func:`write_features` writes.
FEATURE_SUFFIXES: tuple[str, ...] = (".npy", ".safetensors")


class FlipAveragedFeatureModel(nn.Module):
    """Mean of a feature model's outputs on images and their horizontal flips (fast-reid's ``flip_test``).

    Args:
        model: maps float32 ``(B, 3, H, W)`` to ``(B, D)`` (an ``ImageFeatureModel``).

    Input: float32 ``(B, 3, H, W)``; output float32 ``(B, D)`` = ``(model(x) + model(x.flip(3))) / 2``, the
    computation of ``fastreid.evaluation.inference_on_dataset`` with ``flip_test=True``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """See class docstring."""
        return (self.model(images) + self.model(images.flip(dims=[3]))) / 2


def feature_model(model: nn.Module, flip_test: bool) -> nn.Module:
    """The evaluator's feature of a DMF / MMET model: ``ImageFeatureModel``, flip-averaged when ``flip_test``.

    Input float32 ``(B, 3, H, W)`` images in 0..255 at ``INPUT.SIZE_TEST``; output float32 ``(B, D)``.
    Source: :class:`~fastreid_dmf.engine.inference.ImageFeatureModel`, :class:`FlipAveragedFeatureModel`.

    Raises:
        TypeError: ``model`` has no image branch.
    """
    from ..engine.inference import ImageFeatureModel

    wrapped: nn.Module = ImageFeatureModel(model)
    if flip_test:
        wrapped = FlipAveragedFeatureModel(wrapped)
    return wrapped.eval()


def find_images(folder: str) -> list[str]:
    """Every image file (:data:`IMAGE_SUFFIXES`, any case) below ``folder``, recursive, sorted.

    Args:
        folder: a folder of images (sub-folders are searched too; symlinked folders are followed).

    Returns:
        Paths ``os.path.join(abspath(folder), relative)``, sorted by the relative path with ``/`` separators.
        Source: ``os.walk``.

    Raises:
        NotADirectoryError: ``folder`` is not a folder (names it).
        ValueError: no image file below ``folder`` (names it and the suffixes).
    """
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"--images {folder!r} is not a folder")
    root = os.path.abspath(folder)
    relative = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
        for name in filenames:
            if name.lower().endswith(IMAGE_SUFFIXES):
                relative.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    if not relative:
        raise ValueError(f"no images in folder {folder!r} (looked for {', '.join(IMAGE_SUFFIXES)} files, "
                         "recursively)")
    return [os.path.join(root, *rel.split("/")) for rel in sorted(relative)]


def _plain(value: object) -> object:
    """A JSON-friendly pid / camid (numpy integers -> int)."""
    return int(value) if isinstance(value, Integral) else value if isinstance(value, (str, float)) else str(value)


def dataset_images(cfg, name: str) -> dict:
    """Query then gallery images of a registered fast-reid dataset, as ``build_dmf_test_loader`` orders them.

    Args:
        cfg: the run's config (dataset constructor arguments come from it, ``dataset_kwargs``).
        name: a ``DATASET_REGISTRY`` name (e.g. ``Market1501``, ``SynthMarket``), read under fast-reid's dataset
            root (``$FASTREID_DATASETS`` when fastreid was imported).

    Returns:
        ``{"paths", "pids", "camids", "splits" ("query"/"gallery"), "num_query", "root"}``, lists of length N.
        Source: ``fastreid.data.datasets.DATASET_REGISTRY``, :func:`~fastreid_dmf.data.build.dataset_kwargs`.

    Raises:
        ValueError: ``name`` is not registered (lists the names), the dataset cannot be read (fast-reid's
            datasets raise RuntimeError for a missing folder; the message names the root), or it has no images.
        FileNotFoundError: raised as such by the dataset class.
    """
    from fastreid.data.datasets import DATASET_REGISTRY

    from ..data.build import dataset_kwargs, datasets_root

    registered = sorted(DATASET_REGISTRY._obj_map)  # fvcore Registry: name -> class
    if name not in registered:
        raise ValueError(f"--dataset {name!r} is not a registered dataset; known: {', '.join(registered)}")
    root = datasets_root()
    try:
        data = DATASET_REGISTRY.get(name)(root=root, **dataset_kwargs(cfg, name))
    except RuntimeError as err:  # fast-reid's check_before_run: '"<dir>" is not found'
        raise ValueError(f"dataset {name} under root {root!r} (FASTREID_DATASETS): {err}") from err
    items = [(item, "query") for item in data.query] + [(item, "gallery") for item in data.gallery]
    if not items:
        raise ValueError(f"dataset {name} under root {root!r} has no query or gallery images")
    return {"paths": [str(item[0]) for item, _ in items], "pids": [_plain(item[1]) for item, _ in items],
            "camids": [_plain(item[2]) for item, _ in items], "splits": [split for _, split in items],
            "num_query": len(data.query), "root": root}


def read_image_rgb(path: str):
    """An image as fast-reid's test set reads it (``fastreid.data.data_utils.read_image``), always 3 channels.

    Returns:
        A ``PIL.Image`` in mode RGB (EXIF orientation applied, grey images repeated to 3 channels by
        ``read_image``; other modes such as RGBA converted with ``Image.convert("RGB")``).
        Source: ``fastreid.data.data_utils.read_image``, PIL.

    Raises:
        ValueError: the file cannot be opened or fully decoded (missing, not an image, truncated); the message
            names ``path`` and PIL's reason.
    """
    from fastreid.data.data_utils import read_image

    from ..data.multimodal_dataset import IMAGE_READ_ERRORS

    try:
        image = read_image(path)
        return image if image.mode == "RGB" else image.convert("RGB")
    except IMAGE_READ_ERRORS as err:
        raise ValueError(f"cannot read image {path!r}: {type(err).__name__}: {' '.join(str(err).split())}") from err


class _TransformedImages(Dataset):
    """``paths[i]`` read and transformed; a read error comes back as a string (raised in the main process)."""

    def __init__(self, paths: Sequence[str], transform: Callable) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor | None, str]:
        try:
            return self.transform(read_image_rgb(self.paths[index])), ""
        except ValueError as err:
            return None, str(err)


def _collate(samples: list[tuple[torch.Tensor | None, str]]) -> tuple[torch.Tensor | None, str]:
    errors = [error for _, error in samples if error]
    if errors:
        return None, errors[0]
    return torch.stack([image for image, _ in samples]).float(), ""


def image_batches(paths: Sequence[str], transform: Callable, batch_size: int,
                  num_workers: int = 0) -> Iterator[torch.Tensor]:
    """Transformed images of ``paths`` in order, ``batch_size`` at a time.

    Args:
        paths: image files.
        transform: fast-reid's test transform (``build_transforms(cfg, is_train=False)``): PIL -> float
            ``(3, H, W)`` in 0..255.
        batch_size: images per batch (the last batch may be smaller).
        num_workers: ``torch.utils.data.DataLoader`` worker processes (0 = read in this process).

    Yields:
        float32 ``(B, 3, H, W)`` tensors on the CPU. Source: ``torch.utils.data.DataLoader``.

    Raises:
        ValueError: ``batch_size`` < 1, or an image cannot be read (:func:`read_image_rgb`, names the file).
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: expected a positive number of images per batch")
    loader = DataLoader(_TransformedImages(paths, transform), batch_size=batch_size, shuffle=False,
                        num_workers=max(0, num_workers), collate_fn=_collate)
    for images, error in loader:
        if error:
            raise ValueError(error)
        yield images


def compute_features(model: nn.Module, batches: Iterator[torch.Tensor], total: int,
                     progress: bool = True) -> np.ndarray:
    """Run ``model`` on every batch without gradients and stack the outputs.

    Args:
        model: float32 ``(B, 3, H, W)`` -> ``(B, D)`` (:func:`feature_model`), in eval mode; batches are moved to
            the device of its first parameter.
        batches: from :func:`image_batches`.
        total: number of images, for the ``tqdm`` progress bar.
        progress: show the bar (on stderr).

    Returns:
        float32 ``(N, D)`` numpy array. Source: ``torch.no_grad``, ``tqdm``.
    """
    from tqdm import tqdm

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    chunks = []
    with torch.no_grad(), tqdm(total=total, unit="img", desc="features", disable=not progress) as bar:
        for images in batches:
            chunks.append(model(images.to(device)).float().cpu())
            bar.update(images.shape[0])
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


def output_paths(output: str) -> list[str]:
    """Files :func:`write_features` writes for ``output``: ``[output]`` or ``[output, <stem>.json]`` for ``.npy``.

    Returns:
        The paths, output first (string operations only, nothing is read).

    Raises:
        ValueError: the suffix is not one of :data:`FEATURE_SUFFIXES`.
    """
    stem, suffix = os.path.splitext(output)
    if suffix.lower() not in FEATURE_SUFFIXES:
        raise ValueError(f"output {output!r}: the suffix chooses the format; expected one of "
                         f"{', '.join(FEATURE_SUFFIXES)}")
    return [output, stem + ".json"] if suffix.lower() == ".npy" else [output]


def check_outputs_free(paths: Sequence[str], overwrite: bool) -> None:
    """Refuse to replace existing files unless ``overwrite`` (``os.path.exists``).

    Raises:
        FileExistsError: one of ``paths`` exists and ``overwrite`` is False (names it, mentions ``--overwrite``).
    """
    for path in paths:
        if os.path.exists(path) and not overwrite:
            raise FileExistsError(f"{path} already exists; pass --overwrite to replace it")


def write_features(output: str, features: np.ndarray, metadata: dict, overwrite: bool = False) -> list[str]:
    """Write features and metadata in the format chosen by ``output``'s suffix (module docstring).

    Args:
        output: ``.npy`` or ``.safetensors`` path (its folder is created).
        features: float32 ``(N, D)``.
        metadata: JSON-serialisable values (``paths`` etc.).
        overwrite: replace existing files.

    Returns:
        The written paths. Each file is written atomically (:func:`~fastreid_dmf.fileio.atomic_write`).
        Source: ``numpy.save``, ``safetensors.torch.save``.

    Raises:
        ValueError: a bad suffix, or ``features`` not 2-D.
        FileExistsError: see :func:`check_outputs_free`.
    """
    from ..fileio import atomic_write

    paths = output_paths(output)
    check_outputs_free(paths, overwrite)
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    if len(paths) == 2:
        atomic_write(paths[0], lambda handle: np.save(handle, features, allow_pickle=False))
        text = json.dumps(metadata, indent=1).encode()
        atomic_write(paths[1], lambda handle: handle.write(text))
    else:
        from safetensors.torch import save

        data = save({"features": torch.from_numpy(features)},
                    metadata={key: json.dumps(value) for key, value in metadata.items()})
        atomic_write(paths[0], lambda handle: handle.write(data))
    return paths


def read_features(path: str) -> tuple[np.ndarray, dict]:
    """Read a file written by :func:`write_features`.

    Returns:
        ``(features float32 (N, D), metadata dict)``. Source: ``numpy.load``, ``safetensors.safe_open``.

    Raises:
        FileNotFoundError: ``path`` (or the ``.npy`` sidecar ``.json``) is missing.
        ValueError: a bad suffix, or a safetensors file without a ``"features"`` tensor.
    """
    sidecar = output_paths(path)[1:]
    for name in [path, *sidecar]:
        if not os.path.isfile(name):
            raise FileNotFoundError(f"features file {name!r} not found")
    if sidecar:
        with open(sidecar[0]) as handle:
            return np.load(path, allow_pickle=False), json.load(handle)
    from safetensors import safe_open

    with safe_open(path, framework="np") as handle:
        if "features" not in handle.keys():
            raise ValueError(f"{path}: no 'features' tensor (keys: {', '.join(handle.keys())})")
        meta = {key: json.loads(value) for key, value in (handle.metadata() or {}).items()}
        return handle.get_tensor("features"), meta


def extract_features(checkpoint: str, output: str, images: str = "", dataset: str = "", config_file: str = "",
                     opts: Sequence[str] = (), batch_size: int = 64, num_workers: int | None = None,
                     device: str = "", overwrite: bool = False, progress: bool = True) -> dict:
    """Checkpoint + images -> features file (module docstring): the body of ``tools/extract_features.py``.

    Args:
        checkpoint: DMF / MMET checkpoint (``model_final.pth``).
        output: ``.npy`` or ``.safetensors`` path.
        images: a folder of images (exactly one of ``images`` / ``dataset``).
        dataset: a registered dataset name (query + gallery).
        config_file: the run's config; "" = ``config.yaml`` beside the checkpoint.
        opts: ``KEY VALUE`` config overrides (e.g. ``TEST.FLIP.ENABLED False``).
        batch_size: images per forward pass.
        num_workers: image reading processes; None = ``DATALOADER.NUM_WORKERS``.
        device: "cpu" / "cuda"; "" = ``MODEL.DEVICE``.
        overwrite: replace existing output files.
        progress: show a ``tqdm`` bar.

    Returns:
        ``{"outputs": written paths, "num_images": N, "feature_dim": D, "metadata": {...}}``; the file holds
        float32 ``(N, D)``. Source: :func:`~fastreid_dmf.engine.inference.load_inference_model`,
        fast-reid's ``build_transforms(cfg, is_train=False)``.

    Raises:
        ValueError: not exactly one of ``images`` / ``dataset``, bad suffix, empty folder, unknown dataset,
            unreadable image (names the file), bad config value.
        FileExistsError: an output exists and not ``overwrite``.
        FileNotFoundError, NotADirectoryError: missing checkpoint, config or folder (names the path).
    """
    from fastreid.data.transforms import build_transforms

    from ..engine.inference import default_config_file, load_inference_model

    if bool(images) == bool(dataset):
        raise ValueError("give exactly one of --images FOLDER and --dataset NAME")
    check_outputs_free(output_paths(output), overwrite)
    if images:
        paths = find_images(images)  # before the model: a bad folder fails fast
    cfg, model = load_inference_model(checkpoint, config_file, opts, device)
    config_file = config_file or default_config_file(checkpoint)
    if images:
        listing: dict = {"paths": paths, "pids": None, "camids": None, "splits": None, "num_query": None}
        source: dict = {"images": os.path.abspath(images)}
    else:
        listing = dataset_images(cfg, dataset)
        source = {"dataset": dataset, "root": listing.pop("root")}
    flip_test = bool(cfg.TEST.FLIP.ENABLED)
    net = feature_model(model, flip_test)
    workers = cfg.DATALOADER.NUM_WORKERS if num_workers is None else num_workers
    batches = image_batches(listing["paths"], build_transforms(cfg, is_train=False), batch_size, workers)
    logger.info("Extracting features of %d images (%s) with %s%s", len(listing["paths"]), source,
                cfg.MODEL.META_ARCHITECTURE, " (flip-averaged, TEST.FLIP.ENABLED)" if flip_test else "")
    features = compute_features(net, batches, len(listing["paths"]), progress)
    metadata = {**listing, "source": source, "checkpoint": os.path.abspath(checkpoint) if checkpoint else "",
                "config_file": os.path.abspath(config_file), "meta_architecture": cfg.MODEL.META_ARCHITECTURE,
                "test_feat": cfg.MODEL.DMF.TEST_FEAT, "size_test": [int(s) for s in cfg.INPUT.SIZE_TEST],
                "flip_test": flip_test, "feature_dim": int(features.shape[1]), "num_images": int(features.shape[0])}
    written = write_features(output, features, metadata, overwrite)
    return {"outputs": written, "num_images": int(features.shape[0]), "feature_dim": int(features.shape[1]),
            "metadata": metadata}
