"""Backgrounds of the renderer, drawn on the supersampled canvas.

* ``"finegpr"`` style: a clean game-engine-like street (urban scene codes) or
  countryside (wild scene codes) under FineGPR's weather; the layout is fixed
  per scene code, the horizon and shift vary per image.
* target styles: a fixed wide panorama per (style, camera) (brick, trees or
  glass campus walls for ``"synth_market"``; offices or corridors for
  ``"synth_msmt"``), of which each image shows a random window.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

from ...data.finegpr_format import scene_name
from .canvas import CANVAS_SIZE, darker
from .styles import MSMT_INDOOR_CAMERAS, STYLES, Environment

__all__ = ["draw_background"]

_W, _H = CANVAS_SIZE


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int, channels: int = 1) -> np.ndarray:
    """Low-frequency noise in [0, 1], float32 array of ``shape + (channels,)``."""
    h, w = shape
    small = (rng.random((max(2, h // cell + 2), max(2, w // cell + 2), channels)) * 255).astype(np.uint8)
    out = np.empty((h, w, channels), dtype=np.float32)
    for c in range(channels):
        up = Image.fromarray(small[:, :, c]).resize((w, h), Image.BICUBIC)
        out[:, :, c] = np.asarray(up, dtype=np.float32) / 255.0
    return out


def _vertical_gradient(top: tuple[float, ...], bottom: tuple[float, ...], h: int, w: int) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    return (np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t) * np.ones((1, w, 1),
                                                                                                   np.float32)


_SKY = {"sunny": (110, 165, 232), "cloudy": (168, 182, 204), "overcast": (158, 160, 166), "foggy": (192, 194, 198),
        "neutral": (148, 180, 216), "blizzard": (204, 208, 214), "snowlight": (184, 194, 210)}


def _finegpr_background(env: Environment, rng: np.random.Generator) -> np.ndarray:
    """Clean game-engine-like street (urban) or countryside (wild) scene, uint8 (H, W, 3)."""
    srng = np.random.default_rng((0xF1E6, env.scene))  # scene layout is fixed per scene code
    horizon = int(_H * (0.40 + 0.1 * srng.random()) + rng.integers(-6, 7))
    sky = np.asarray(_SKY[env.weather], np.float32)
    arr = _vertical_gradient(tuple(sky * 0.85), tuple(sky * 1.05), _H, _W)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    shift = int(rng.integers(-30, 31))
    snowy = {"blizzard": 0.7, "snowlight": 0.45}.get(env.weather, 0.0)
    if scene_name(env.scene) == "urban":
        x = -40 + shift
        while x < _W + 40:
            bw = int(srng.integers(40, 90))
            top = int(horizon - srng.integers(50, 110))
            shade = srng.integers(95, 185)
            colour = (int(shade), int(shade + srng.integers(-8, 9)), int(shade + srng.integers(-4, 14)))
            draw.rectangle([x, top, x + bw, horizon], fill=colour)
            win = darker(colour, 0.62)
            for wy in range(top + 8, horizon - 10, 18):
                for wx in range(x + 6, x + bw - 8, 14):
                    draw.rectangle([wx, wy, wx + 7, wy + 9], fill=win)
            x += bw + int(srng.integers(0, 12))
        ground = np.array([132, 132, 136]) + srng.integers(-10, 11)
        draw.rectangle([0, horizon, _W, _H], fill=tuple(int(v) for v in ground))
        line = darker(tuple(int(v) for v in ground), 0.8)
        y, step = horizon + 6, 6.0
        while y < _H:
            draw.line([(0, y), (_W, y)], fill=line, width=1)
            step *= 1.25
            y += int(step)
        draw.rectangle([0, horizon, _W, horizon + 4], fill=(160, 160, 160))
    else:
        hill = (int(60 + srng.integers(0, 30)), int(110 + srng.integers(0, 30)), int(60 + srng.integers(0, 20)))
        pts = [(0, _H)] + [(x, horizon - 20 - 25 * math.sin(x / 30 + srng.random() * 6)) for x in range(0, _W + 8, 8)]
        draw.polygon(pts + [(_W, _H)], fill=hill)
        for _ in range(int(srng.integers(2, 5))):
            tx = int(srng.integers(0, _W)) + shift
            ty = horizon - int(srng.integers(5, 20))
            draw.rectangle([tx - 3, ty, tx + 3, ty + 28], fill=(80, 56, 34))
            draw.ellipse([tx - 20, ty - 40, tx + 20, ty + 8], fill=(30, int(90 + srng.integers(0, 30)), 40))
        ground = (int(90 + srng.integers(0, 40)), int(110 + srng.integers(0, 30)), int(50 + srng.integers(0, 20)))
        draw.rectangle([0, horizon + 10, _W, _H], fill=ground)
    arr = np.asarray(img, dtype=np.float32)
    if scene_name(env.scene) == "wild":
        tex = _smooth_noise(rng, (_H, _W), 8)
        arr[horizon + 10:] *= 0.8 + 0.4 * tex[horizon + 10:]
    if snowy:
        arr[horizon:] = arr[horizon:] * (1 - snowy) + 238 * snowy
    return np.clip(arr, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=32)
def _camera_panorama(style: str, camera: int) -> np.ndarray:
    """Fixed wide background of one target-domain camera, uint8 (H, 3W, 3); read-only."""
    rng = np.random.default_rng((0x7A6, STYLES.index(style), camera))
    h, w = _H, 3 * _W
    horizon = int(h * rng.uniform(0.35, 0.55))
    if style == "synth_market":
        kind = ("brick", "trees", "glass")[camera % 3]
        wall = {"brick": (150, 78, 58), "trees": (60, 120, 52), "glass": (118, 150, 170)}[kind]
        ground_col = (178, 172, 160) if camera % 2 else (150, 150, 146)
        tex = _smooth_noise(rng, (h, w), 10, 3)
        tex = 0.8 * tex.mean(axis=2, keepdims=True) + 0.2 * tex  # mostly luminance texture
        fine = _smooth_noise(rng, (h, w), 3, 1)
        arr = np.empty((h, w, 3), np.float32)
        arr[:horizon] = np.asarray(wall, np.float32) * (0.7 + 0.6 * tex[:horizon]) * (0.85 + 0.3 * fine[:horizon])
        arr[horizon:] = np.asarray(ground_col, np.float32) * (0.85 + 0.3 * tex[horizon:]) * (0.9 + 0.2 * fine[horizon:])
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        if kind == "brick":
            for y in range(4, horizon, 9):
                draw.line([(0, y), (w, y)], fill=(110, 60, 48), width=1)
            for x in range(int(rng.integers(0, 40)), w, 70):
                draw.rectangle([x, 14, x + 30, 50], fill=(60, 70, 80))
        elif kind == "glass":
            for x in range(0, w, 22):
                draw.line([(x, 0), (x, horizon)], fill=(200, 205, 210), width=2)
        else:
            for _ in range(6):
                x = int(rng.integers(0, w))
                draw.ellipse([x - 30, -20, x + 30, horizon - 10], fill=(34, int(rng.integers(80, 120)), 38))
        for x in range(0, w, 32):  # paving joints
            draw.line([(x, horizon), (x - 40, h)], fill=(140, 136, 126), width=1)
        # sunny shadows cast by trees/buildings on the ground
        shade = _smooth_noise(rng, (h, w), 24)
        arr = np.asarray(img, np.float32)
        arr[horizon:] *= np.where(shade[horizon:] > 0.6, 0.62, 1.0)
    else:
        indoor = camera in MSMT_INDOOR_CAMERAS
        if indoor:
            wall, floor = (196, 186, 164), (150, 146, 140)
        else:
            wall = (96, 100, 108) if camera % 2 else (64, 90, 60)
            floor = (92, 94, 98)
        tex = _smooth_noise(rng, (h, w), 12, 3)
        arr = np.empty((h, w, 3), np.float32)
        arr[:horizon] = np.asarray(wall, np.float32) * (0.8 + 0.4 * tex[:horizon])
        arr[horizon:] = np.asarray(floor, np.float32) * (0.8 + 0.4 * tex[horizon:])
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        if indoor:
            for x in range(int(rng.integers(0, 60)), w, 90):
                draw.rectangle([x, horizon - 90, x + 34, horizon], fill=(120, 96, 70))  # doors
            for y in range(horizon, h, 16):
                draw.line([(0, y), (w, y)], fill=(120, 118, 112), width=1)  # floor tiles
            for x in range(0, w, 24):
                draw.line([(x, horizon), (x, h)], fill=(120, 118, 112), width=1)
        else:
            for x in range(int(rng.integers(0, 40)), w, 60):
                draw.rectangle([x, horizon - 120, x + 40, horizon], fill=(70, 74, 82))
                draw.rectangle([x + 6, horizon - 100, x + 16, horizon - 86], fill=(170, 170, 120))
            draw.line([(0, horizon + 40), (w, horizon + 40)], fill=(180, 180, 170), width=2)
        arr = np.asarray(img, np.float32)
    out = np.clip(arr, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def _target_background(style: str, env: Environment, rng: np.random.Generator) -> np.ndarray:
    pano = _camera_panorama(style, env.camera)
    x0 = int(rng.integers(0, pano.shape[1] - _W + 1))
    return pano[:, x0:x0 + _W].copy()


def draw_background(style: str, env: Environment, rng: np.random.Generator) -> np.ndarray:
    """Background of one image in ``style`` under ``env``.

    Args:
        style: one of :data:`~.styles.STYLES` (not checked here; see
            :func:`~.styles.check_environment`).
        env: capture conditions (scene and weather for ``"finegpr"``,
            camera for the target styles).
        rng: randomness (horizon jitter, shift, window of the panorama, texture).

    Returns:
        uint8 array of shape ``(256, 128, 3)`` (canvas height, width, RGB).
    """
    if style == "finegpr":
        return _finegpr_background(env, rng)
    return _target_background(style, env, rng)
