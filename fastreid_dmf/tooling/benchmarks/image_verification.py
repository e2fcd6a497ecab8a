"""Cost of ``DATASETS.VERIFY_IMAGES``: PIL header check (``Image.verify``) vs full decode.

Training verifies every training image before it starts
(:func:`fastreid_dmf.data.build.verify_images`). It used to call
``PIL.Image.verify``, which reads headers only (and, for PNG, checksums), so a
JPEG cut in half passed; it now decodes every pixel
(:func:`fastreid_dmf.data.build.image_read_error`). :func:`compare_checks`
times both on the same files in one process: the files are read once first so
that both timings see a warm file-system cache, then the two checks alternate
for ``repeats`` rounds and the best round of each is kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

__all__ = ["IMAGE_EXTENSIONS", "list_images", "header_check_error", "compare_checks"]

#: File name endings counted as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")


def list_images(root: str) -> list[str]:
    """Every image file (:data:`IMAGE_EXTENSIONS`, any case) under ``root``, sorted.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} not found")
    paths = []
    for folder, _, names in os.walk(root):
        paths.extend(os.path.join(folder, n) for n in names if n.lower().endswith(IMAGE_EXTENSIONS))
    return sorted(paths)


def header_check_error(path: str) -> str | None:
    """The former check: ``PIL.Image.open`` + ``verify()`` (no pixel decoding); None if it passes."""
    from PIL import Image

    from fastreid_dmf.data.multimodal_dataset import IMAGE_READ_ERRORS

    try:
        with Image.open(path) as image:
            image.verify()
    except IMAGE_READ_ERRORS as err:
        return f"{type(err).__name__}: {err}"
    return None


def _timed_pass(check: Callable[[str], str | None], paths: Sequence[str]) -> tuple[float, int]:
    start = time.perf_counter()
    failed = sum(check(p) is not None for p in paths)
    return time.perf_counter() - start, failed


def compare_checks(paths: Sequence[str], repeats: int = 3) -> dict[str, object]:
    """Time the header check and the full decode over ``paths`` (see the module docstring).

    Args:
        paths: image files.
        repeats: timed rounds of each check; the best is kept.

    Returns:
        ``images``, ``megabytes``; for ``header_check`` (``Image.verify``) and
        ``full_decode`` (``Image.load``, as ``verify_images`` runs it): best
        ``seconds``, ``ms_per_image`` and ``flagged`` (files the check
        rejects); ``ratio`` = full decode seconds / header check seconds.

    Raises:
        ValueError: no paths, or ``repeats`` < 1.
    """
    from fastreid_dmf.data.build import image_read_error, truncated_images_rejected

    if not paths:
        raise ValueError("no images to time")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    size = 0
    for path in paths:  # warm the file-system cache for both checks
        with open(path, "rb") as handle:
            size += len(handle.read())
    checks = {"header_check": header_check_error, "full_decode": image_read_error}
    best = {name: (float("inf"), 0) for name in checks}
    with truncated_images_rejected():
        for _ in range(repeats):
            for name, check in checks.items():
                seconds, failed = _timed_pass(check, paths)
                if seconds < best[name][0]:
                    best[name] = (seconds, failed)
    results: dict[str, object] = {"images": len(paths), "megabytes": round(size / 2**20, 1)}
    for name, (seconds, failed) in best.items():
        results[name] = {"seconds": round(seconds, 3), "ms_per_image": round(1000 * seconds / len(paths), 4),
                         "flagged": failed}
    results["ratio"] = round(best["full_decode"][0] / best["header_check"][0], 2)
    return results
