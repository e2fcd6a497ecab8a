"""The renderer's drawing canvas: output image size, supersampling, and a colour helper.

Persons (:mod:`.people`) and backgrounds (:mod:`.scenes`) are drawn on a
canvas :data:`SUPERSAMPLING` times larger than the output image in each
direction; :mod:`.render` box-filters it down to :data:`IMAGE_SIZE`.
"""

from __future__ import annotations

__all__ = ["IMAGE_SIZE", "SUPERSAMPLING", "CANVAS_SIZE", "darker"]

#: Output image size, PIL convention ``(width, height)`` in pixels.
IMAGE_SIZE: tuple[int, int] = (64, 128)
#: Supersampling factor of the drawing canvas (per direction).
SUPERSAMPLING = 2
#: Size of the drawing canvas, ``(width, height)`` in canvas pixels.
CANVAS_SIZE: tuple[int, int] = (IMAGE_SIZE[0] * SUPERSAMPLING, IMAGE_SIZE[1] * SUPERSAMPLING)


def darker(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    """``rgb`` (sRGB ints 0..255) with every channel scaled by ``f`` and truncated to an int."""
    return (int(rgb[0] * f), int(rgb[1] * f), int(rgb[2] * f))
