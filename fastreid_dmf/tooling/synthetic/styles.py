"""Per-domain looks of the renderer: the styles, their cameras, capture conditions and the finishing pass.

Three domain styles (:data:`STYLES`):

* ``"finegpr"``: clean game-engine look with FineGPR's weather, illumination
  and scene (36 viewpoint "cameras");
* ``"synth_market"``: sunny textured campus, 6 cameras with a colour cast
  each, slight blur;
* ``"synth_msmt"``: 15 cameras (13..15 indoor), darker, low resolution,
  noisy; persons are drawn at 0.95 of the usual size.

:class:`Environment` holds the capture conditions of one image;
:func:`finish_image` applies a style's light, colour cast, blur/resampling
and pixel noise to the downsampled canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ...data.finegpr_format import ILLUMINATIONS, WEATHERS, FineGPRCodes, viewpoint_degrees
from .canvas import IMAGE_SIZE

__all__ = ["STYLES", "STYLE_CAMERAS", "PERSON_SCALE", "MSMT_INDOOR_CAMERAS", "Environment", "check_environment",
           "casts_shadow", "finish_image"]

#: Domain styles understood by the renderer.
STYLES: tuple[str, ...] = ("finegpr", "synth_market", "synth_msmt")
#: Number of cameras of each style (valid :attr:`Environment.camera` values are 1..N).
STYLE_CAMERAS: dict[str, int] = {"finegpr": 36, "synth_market": 6, "synth_msmt": 15}
#: Person height multiplier of each style (unitless; SynthMSMT shows people a little smaller).
PERSON_SCALE: dict[str, float] = {"finegpr": 1.0, "synth_market": 1.0, "synth_msmt": 0.95}
#: Indoor cameras of the ``"synth_msmt"`` style (no ground shadow, fixed indoor light).
MSMT_INDOOR_CAMERAS = frozenset({13, 14, 15})


@dataclass(frozen=True)
class Environment:
    """Capture conditions of one image.

    Attributes:
        viewpoint: body orientation in degrees, 0..359 (0 faces the camera,
            180 shows the back; FineGPR's ``cXX`` via :meth:`from_finegpr`).
        weather: one of :data:`~fastreid_dmf.data.finegpr_format.WEATHERS`
            (``"finegpr"`` style only).
        illumination: one of
            :data:`~fastreid_dmf.data.finegpr_format.ILLUMINATIONS`. The
            ``"synth_msmt"`` style reads ``forenoon``/``noon``/``afternoon``
            as its morning/noon/afternoon light; ``"synth_market"`` ignores it.
        scene: FineGPR scene code 1..9 (urban or wild, see
            :func:`~fastreid_dmf.data.finegpr_format.scene_name`).
        camera: 1-based camera index of the target styles (1..6 for
            ``"synth_market"``, 1..15 for ``"synth_msmt"``).
    """

    viewpoint: int = 0
    weather: str = "neutral"
    illumination: str = "noon"
    scene: int = 1
    camera: int = 1

    @classmethod
    def from_finegpr(cls, codes: FineGPRCodes) -> Environment:
        """Environment of a FineGPR image from its parsed file-name codes."""
        return cls(viewpoint=viewpoint_degrees(codes.camera), weather=WEATHERS[codes.weather - 1],
                   illumination=ILLUMINATIONS[codes.illumination - 1], scene=codes.scene, camera=1)



def check_environment(style: str, env: Environment) -> None:
    """Check that ``env`` can be drawn in ``style``.

    Raises:
        ValueError: unknown style, weather or illumination, or a scene or
            camera code out of range for the style (scene 1..9, camera
            1..:data:`STYLE_CAMERAS` ``[style]``).
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if env.weather not in WEATHERS:
        raise ValueError(f"unknown weather {env.weather!r}; expected one of {', '.join(WEATHERS)}")
    if env.illumination not in ILLUMINATIONS:
        raise ValueError(f"unknown illumination {env.illumination!r}; expected one of {', '.join(ILLUMINATIONS)}")
    if not 1 <= env.scene <= 9:
        raise ValueError(f"scene code {env.scene} is out of range 1..9")
    cams = STYLE_CAMERAS[style]
    if not 1 <= env.camera <= cams:
        raise ValueError(f"camera {env.camera} is out of range 1..{cams} for style {style!r}")


def casts_shadow(style: str, env: Environment) -> bool:
    """Whether a person casts a ground shadow (everywhere but SynthMSMT's indoor cameras)."""
    return style != "synth_msmt" or env.camera not in MSMT_INDOOR_CAMERAS


# --------------------------------------------------------------------------- finishing pass

_ILLUMINATION = {  # gain, RGB cast
    "midnight": (0.45, (0.8, 0.9, 1.25)), "dawn": (0.8, (1.15, 0.95, 0.8)), "forenoon": (1.0, (1.0, 1.0, 1.0)),
    "noon": (1.06, (1.02, 1.02, 1.0)), "afternoon": (0.97, (1.06, 1.0, 0.92)), "dusk": (0.68, (1.2, 0.9, 0.72)),
    "night": (0.5, (1.1, 1.0, 0.8)),
}
_MARKET_CAST = ((1.08, 1.0, 0.9), (0.92, 1.0, 1.1), (1.0, 1.08, 0.95), (1.1, 0.95, 1.05), (0.95, 0.97, 1.0),
                (1.05, 1.04, 0.85))
_MSMT_TIME = {"forenoon": 0.78, "noon": 0.9, "afternoon": 0.62}


def _snow(arr: np.ndarray, rng: np.random.Generator, count: int) -> None:
    h, w = arr.shape[:2]
    ys, xs = rng.integers(0, h, count), rng.integers(0, w, count)
    arr[ys, xs] = 245.0
    big = count // 3
    arr[np.minimum(ys[:big] + 1, h - 1), xs[:big]] = 235.0


def _post_finegpr(arr: np.ndarray, env: Environment, rng: np.random.Generator) -> np.ndarray:
    gain, cast = _ILLUMINATION[env.illumination]
    arr = arr * (gain * np.asarray(cast, np.float32))
    if env.weather == "sunny":
        arr = (arr - 128) * 1.12 + 128
    elif env.weather == "overcast":
        grey = arr.mean(axis=2, keepdims=True)
        arr = 0.65 * arr + 0.35 * grey
    elif env.weather == "cloudy":
        arr *= 0.94
    fog = {"foggy": 0.45, "blizzard": 0.35, "snowlight": 0.12}.get(env.weather, 0.0)
    if fog:
        arr = arr * (1 - fog) + np.asarray((200, 202, 206), np.float32) * gain * fog
    if env.weather in ("blizzard", "snowlight"):
        _snow(arr, rng, 120 if env.weather == "blizzard" else 40)
    return arr + rng.normal(0.0, 2.5, arr.shape).astype(np.float32)


def _post_market(img: Image.Image, env: Environment, rng: np.random.Generator) -> np.ndarray:
    img = img.filter(ImageFilter.GaussianBlur(radius=0.6))
    arr = np.asarray(img, np.float32)
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + (arr - grey) * 1.15  # sunny, saturated
    arr = arr * 1.05 * np.asarray(_MARKET_CAST[(env.camera - 1) % 6], np.float32)
    return arr + rng.normal(0.0, 3.5, arr.shape).astype(np.float32)


def _post_msmt(img: Image.Image, env: Environment, rng: np.random.Generator) -> np.ndarray:
    crng = np.random.default_rng((0x3517, env.camera))
    small_w = int(crng.integers(22, 33)) + int(rng.integers(-2, 3))
    small = img.resize((small_w, small_w * 2), Image.BILINEAR)
    arr = np.asarray(small.resize(IMAGE_SIZE, Image.BILINEAR), np.float32)
    if env.camera in MSMT_INDOOR_CAMERAS:
        gain, cast = 0.85, np.asarray((0.95, 1.05, 1.0), np.float32)
    else:
        gain = _MSMT_TIME.get(env.illumination, 0.8)
        cast = np.asarray(crng.uniform(0.88, 1.1, 3), np.float32)
    arr = (arr - 128) * 0.85 + 128  # flat, low contrast
    arr = arr * gain * cast
    return arr + rng.normal(0.0, 6.5, arr.shape).astype(np.float32)



def finish_image(style: str, image: Image.Image, env: Environment, rng: np.random.Generator) -> np.ndarray:
    """Apply ``style``'s light, colour cast, blur or resampling and pixel noise to a downsampled canvas.

    Args:
        style: one of :data:`STYLES`.
        image: RGB image of :data:`~.canvas.IMAGE_SIZE` (the canvas box-filtered down).
        env: its capture conditions (illumination and weather for
            ``"finegpr"``, camera for the target styles).
        rng: randomness (snow specks, Gaussian pixel noise).

    Returns:
        float32 array of shape ``(128, 64, 3)``, unclipped sRGB values (the
        caller rounds and clips to 0..255).
    """
    if style == "finegpr":
        return _post_finegpr(np.asarray(image, np.float32), env, rng)
    if style == "synth_market":
        return _post_market(image, env, rng)
    return _post_msmt(image, env, rng)
