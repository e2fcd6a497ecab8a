"""Procedural pedestrian renderer for the bundled synthetic Re-ID benchmark.

Draws one 64 x 128 RGB pedestrian crop (PIL size ``(64, 128)``, the size of
Market-1501 crops) with PIL and NumPy only, from

* an :class:`Identity`: FineGPR's 13 identity attributes (see
  :mod:`fastreid_dmf.data.finegpr_format`) plus hidden per-identity traits
  (:class:`HiddenTraits`) that are *not* in the attributes, so that two
  identities sharing every attribute still look different;
* an :class:`Environment`: viewpoint, weather, illumination and scene as in
  FineGPR's file name codes, plus a camera index for the target styles;
* a domain style (:data:`STYLES`): ``"finegpr"`` (clean game-engine look with
  FineGPR's weather/illumination/scene), ``"synth_market"`` (sunny textured
  campus, per-camera colour cast, slight blur) or ``"synth_msmt"`` (15
  cameras, indoor/outdoor mix, darker, low resolution, noisy).

All randomness comes from the ``numpy.random.Generator`` passed in, so a
seeded generator gives the same pixels every time. Drawing happens on a
2x supersampled canvas that is box-filtered down to 64 x 128.

Conventions (this project's, FineGPR does not define them): viewpoint 0
degrees faces the camera, 180 shows the back; front/side/back views use the
boundaries of :func:`~fastreid_dmf.data.finegpr_format.viewpoint_name`
(within 45 degrees of 0 front, of 180 back, boundaries included); in a side
view the person faces image-left between 0 and 180 degrees, image-right
between 180 and 360. The body is narrower the more it is turned sideways
(width factor ``0.5 + 0.5 |cos(viewpoint)|``); the face and glasses are not
drawn from the back, and the bag moves to the other side.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ...data.finegpr_format import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUES,
    COLORS,
    ILLUMINATIONS,
    WEATHERS,
    FineGPRCodes,
    scene_name,
    viewpoint_degrees,
)

__all__ = [
    "IMAGE_SIZE",
    "STYLES",
    "COLOR_RGB",
    "HiddenTraits",
    "Identity",
    "Environment",
    "BodyBoxes",
    "sample_attributes",
    "sample_traits",
    "sample_identity",
    "render_person",
    "render_person_with_boxes",
    "render_distractor",
]

#: Output image size, PIL convention ``(width, height)`` in pixels.
IMAGE_SIZE: tuple[int, int] = (64, 128)
#: Domain styles understood by :func:`render_person`.
STYLES: tuple[str, ...] = ("finegpr", "synth_market", "synth_msmt")

_SS = 2  # supersampling factor of the drawing canvas
_W, _H = IMAGE_SIZE[0] * _SS, IMAGE_SIZE[1] * _SS

#: Nominal sRGB value of each of FineGPR's 9 clothing colours (this project's choice).
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32),
    "white": (232, 232, 226),
    "red": (192, 32, 38),
    "purple": (112, 50, 142),
    "gray": (128, 128, 128),
    "yellow": (232, 200, 40),
    "blue": (38, 72, 172),
    "green": (40, 132, 62),
    "brown": (122, 76, 40),
}

_SKIN_TONES = ((241, 206, 180), (224, 180, 145), (198, 150, 112), (160, 110, 75), (112, 74, 50))
_HAIR_COLOURS = ((28, 24, 20), (58, 38, 24), (98, 64, 36), (186, 152, 92), (118, 52, 30))
_HAIR_WEIGHTS = (0.4, 0.3, 0.15, 0.08, 0.07)
_ACCESSORY_COLOURS = ((30, 30, 34), (84, 52, 30), (150, 110, 70), (40, 50, 90), (150, 30, 40),
                      (200, 200, 195), (70, 90, 60), (120, 120, 125))
_PATTERNS = ("plain", "stripes", "logo", "zip", "collar")
_PATTERN_WEIGHTS = (0.4, 0.2, 0.2, 0.1, 0.1)

# Sampling frequencies of the attributes (this project's choice, loosely like pedestrians).
_UPPER_WEIGHTS = (0.2, 0.15, 0.1, 0.05, 0.15, 0.06, 0.14, 0.07, 0.08)
_LOWER_WEIGHTS = (0.32, 0.06, 0.04, 0.03, 0.15, 0.03, 0.25, 0.05, 0.07)


@dataclass(frozen=True)
class HiddenTraits:
    """Per-identity appearance that the FineGPR attributes do not describe.

    Colours are sRGB ``(r, g, b)`` tuples of ints in 0..255; proportions are
    unitless factors. Sampled by :func:`sample_traits`.

    Attributes:
        skin: skin colour.
        upper_rgb: exact shade of the upper-body colour (declared colour + jitter).
        lower_rgb: exact shade of the lower-body colour.
        hair_rgb: hair colour (grey for ``age == "older"``).
        hat_rgb: hat colour (used only with ``hat == "yes"``).
        bag_rgb: bag colour (used only with ``bag == "yes"``).
        shoe_rgb: shoe/boot colour, dark or light as ``shoes`` says.
        pattern: mark on the top: one of ``plain, stripes, logo, zip, collar``.
        pattern_rgb: colour of that mark.
        height: body height as a fraction of the image height, 0.84..0.95.
        build: width multiplier, 0.88..1.12.
        head_scale: head size multiplier, 0.92..1.08.
        bag_side: +1 or -1, side of the body the bag hangs on (seen from the front).
        bag_size: bag size multiplier, 0.8..1.25.
    """

    skin: tuple[int, int, int]
    upper_rgb: tuple[int, int, int]
    lower_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int]
    hat_rgb: tuple[int, int, int]
    bag_rgb: tuple[int, int, int]
    shoe_rgb: tuple[int, int, int]
    pattern: str
    pattern_rgb: tuple[int, int, int]
    height: float
    build: float
    head_scale: float
    bag_side: int
    bag_size: float


@dataclass(frozen=True)
class Identity:
    """One synthetic person.

    Attributes:
        pid: integer identity label.
        attributes: ``{name: value word}`` for every name in
            :data:`~fastreid_dmf.data.finegpr_format.ATTRIBUTE_NAMES`.
        traits: hidden per-identity appearance (:class:`HiddenTraits`).
    """

    pid: int
    attributes: Mapping[str, str]
    traits: HiddenTraits


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


@dataclass(frozen=True)
class BodyBoxes:
    """Where body parts were drawn, in output pixel coordinates ``(x0, y0, x1, y1)``.

    Boxes are float, inclusive-exclusive, in the 64 x 128 image (x right, y down).

    Attributes:
        head: bounding box of the head (skin ellipse, without hair or hat).
        hat_top: region just above the head where a hat crown is drawn.
        upper: central part of the torso (upper-body clothing).
        lower: middle of one thigh, below a long top (lower-body clothing or the skirt).
    """

    head: tuple[float, float, float, float]
    hat_top: tuple[float, float, float, float]
    upper: tuple[float, float, float, float]
    lower: tuple[float, float, float, float]


# --------------------------------------------------------------------------- identities

def sample_attributes(rng: np.random.Generator) -> dict[str, str]:
    """Draw FineGPR's 13 identity attributes with plausible correlations.

    Returns:
        ``{name: value word}`` in :data:`ATTRIBUTE_NAMES` order, every value
        taken from :data:`ATTRIBUTE_VALUES`.
    """
    def yes(p: float) -> str:
        return "yes" if rng.random() < p else "no"

    female = rng.random() < 0.5
    attrs = {
        "gender": "female" if female else "male",
        "age": str(rng.choice(ATTRIBUTE_VALUES["age"], p=(0.2, 0.6, 0.2))),
        "hair_length": "long" if rng.random() < (0.75 if female else 0.1) else "short",
        "glasses": yes(0.25),
        "short_sleeve": yes(0.45),
        "dress": yes(0.35 if female else 0.02),
        "boots": yes(0.3 if female else 0.12),
        "hat": yes(0.25),
        "bag": yes(0.4),
        "top_length": "long" if rng.random() < 0.35 else "short",
        "shoes": "dark" if rng.random() < 0.6 else "light",
        "upper_color": str(rng.choice(COLORS, p=_UPPER_WEIGHTS)),
        "lower_color": str(rng.choice(COLORS, p=_LOWER_WEIGHTS)),
    }
    return {name: attrs[name] for name in ATTRIBUTE_NAMES}


def _jitter(rng: np.random.Generator, rgb: tuple[int, int, int], sigma: float) -> tuple[int, int, int]:
    vals = np.clip(np.asarray(rgb, dtype=np.float64) + rng.normal(0.0, sigma, 3), 0, 255)
    return (int(round(vals[0])), int(round(vals[1])), int(round(vals[2])))


def _pick(rng: np.random.Generator, options: tuple, weights: tuple[float, ...] | None = None):
    return options[int(rng.choice(len(options), p=weights))]


def sample_traits(rng: np.random.Generator, attributes: Mapping[str, str]) -> HiddenTraits:
    """Draw the hidden traits of an identity whose attributes are ``attributes``.

    The traits respect the attributes (hair is grey for ``older``, shoes are
    dark or light as declared, clothing shades stay near the declared colour:
    per-channel Gaussian jitter with sigma 9) and add what they leave open.
    """
    older = attributes["age"] == "older"
    if older:
        grey = int(rng.integers(150, 205))
        hair = (grey, grey, grey + int(rng.integers(-4, 5)))
    else:
        hair = _jitter(rng, _pick(rng, _HAIR_COLOURS, _HAIR_WEIGHTS), 6)
    shoe_base = (35, 32, 30) if attributes["shoes"] == "dark" else (222, 218, 210)
    upper = _jitter(rng, COLOR_RGB[attributes["upper_color"]], 9)
    pattern_base = _pick(rng, tuple(c for c in COLORS if c != attributes["upper_color"]))
    return HiddenTraits(
        skin=_jitter(rng, _pick(rng, _SKIN_TONES), 6),
        upper_rgb=upper,
        lower_rgb=_jitter(rng, COLOR_RGB[attributes["lower_color"]], 9),
        hair_rgb=hair,
        hat_rgb=_jitter(rng, _pick(rng, _ACCESSORY_COLOURS), 10),
        bag_rgb=_jitter(rng, _pick(rng, _ACCESSORY_COLOURS), 10),
        shoe_rgb=_jitter(rng, shoe_base, 10),
        pattern=_pick(rng, _PATTERNS, _PATTERN_WEIGHTS),
        pattern_rgb=_jitter(rng, COLOR_RGB[pattern_base], 8),
        height=float(rng.uniform(0.84, 0.95)),
        build=float(rng.uniform(0.88, 1.12)),
        head_scale=float(rng.uniform(0.92, 1.08)),
        bag_side=1 if rng.random() < 0.5 else -1,
        bag_size=float(rng.uniform(0.8, 1.25)),
    )


def sample_identity(rng: np.random.Generator, pid: int, attributes: Mapping[str, str] | None = None) -> Identity:
    """A new :class:`Identity` with label ``pid``.

    Args:
        rng: source of randomness.
        pid: identity label stored in the result.
        attributes: fixed attributes to use (e.g. shared with another identity
            so that only the hidden traits differ); drawn with
            :func:`sample_attributes` when ``None``.

    Raises:
        ValueError: ``attributes`` lacks a name or holds an unknown value.
    """
    if attributes is None:
        attributes = sample_attributes(rng)
    for name in ATTRIBUTE_NAMES:
        if attributes.get(name) not in ATTRIBUTE_VALUES[name]:
            raise ValueError(f"identity {pid}: attribute '{name}' = {attributes.get(name)!r} is not one of "
                             f"{', '.join(ATTRIBUTE_VALUES[name])}")
    attrs = {name: attributes[name] for name in ATTRIBUTE_NAMES}
    return Identity(pid=pid, attributes=attrs, traits=sample_traits(rng, attrs))


# --------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class _Geometry:
    """Body layout on the supersampled canvas (pixels)."""

    cx: float        # body centre x
    top: float       # head top y
    ph: float        # person height
    cos_v: float     # cos(viewpoint): 1 front, -1 back
    facing: int      # image direction the nose points in a side view (+1 right, -1 left)
    view: str        # "front", "back" or "side"
    shoulder: float  # shoulder half width
    hip: float       # hip half width
    head_r: float    # head radius (vertical)
    spread: float    # leg spread / stride, fraction of ph
    swing: float     # arm swing, fraction of ph

    def y(self, frac: float) -> float:
        """Canvas y of a height fraction measured from the head top."""
        return self.top + frac * self.ph


def _geometry(identity: Identity, env: Environment, rng: np.random.Generator, zoom: float = 1.0,
              partial: bool = False) -> _Geometry:
    attrs, traits = identity.attributes, identity.traits
    age_factor = {"teenager": 0.88, "adult": 1.0, "older": 0.97}[attrs["age"]]
    ph = min(_H * traits.height * age_factor * float(rng.uniform(0.95, 1.04)), _H * 0.97) * zoom
    if partial:  # bad detection: a zoomed-in piece of the body
        top = -float(rng.uniform(0.05, 0.55)) * ph
        cx = _W / 2 + float(rng.uniform(-0.35, 0.35)) * _W
    else:
        top = (_H - ph) * float(rng.uniform(0.25, 0.75))
        cx = _W / 2 + float(rng.uniform(-0.05, 0.05)) * _W
    deg = env.viewpoint % 360
    rad = math.radians(deg)
    cos_v, sin_v = math.cos(rad), math.sin(rad)
    # same boundaries as finegpr_format.viewpoint_name: 45 and 315 are front, 135 and 225 back
    view = "front" if deg <= 45 or deg >= 315 else ("back" if 135 <= deg <= 225 else "side")
    width_factor = (0.5 + 0.5 * abs(cos_v)) * traits.build
    male = attrs["gender"] == "male"
    teen = 0.92 if attrs["age"] == "teenager" else 1.0
    return _Geometry(
        cx=cx, top=top, ph=ph, cos_v=cos_v, facing=-1 if sin_v > 0 else 1, view=view,
        shoulder=ph * (0.150 if male else 0.125) * teen * width_factor,
        hip=ph * (0.108 if male else 0.128) * width_factor,
        head_r=ph * 0.066 * traits.head_scale,
        spread=float(rng.uniform(0.0, 0.07)) if view != "side" else float(rng.uniform(0.03, 0.12)),
        swing=float(rng.uniform(-0.05, 0.05)),
    )


# --------------------------------------------------------------------------- drawing

def _darker(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return (int(rgb[0] * f), int(rgb[1] * f), int(rgb[2] * f))


def _limb(draw: ImageDraw.ImageDraw, p0: tuple[float, float], p1: tuple[float, float], width: float,
          colour: tuple[int, int, int]) -> None:
    """Thick segment with round ends."""
    draw.line([p0, p1], fill=colour, width=max(1, int(round(width))))
    r = width / 2
    for x, y in (p0, p1):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)


def _torso_half_width(g: _Geometry, frac: float) -> float:
    """Half width of the torso at height fraction ``frac`` (0.17 shoulders .. 0.62 hips)."""
    if frac <= 0.30:
        return g.shoulder * (0.97 - 0.05 * (frac - 0.17) / 0.13)
    t = min(1.0, (frac - 0.30) / 0.20)
    return g.shoulder * 0.92 * (1 - t) + g.hip * 1.02 * t


def _leg(g: _Geometry, side: int) -> tuple[float, float, float, float]:
    """``(x_hip, x_ankle, half width at the hip, half width at the ankle)`` of leg ``side`` (-1 or +1)."""
    if g.view == "side":
        return g.cx, g.cx + side * g.spread * g.ph, 0.065 * g.ph, 0.038 * g.ph
    x_hip = g.cx + side * g.hip * 0.5
    w_ankle = max(0.036 * g.ph * (0.6 + 0.4 * abs(g.cos_v)), 2.0)
    return x_hip, x_hip + side * g.spread * g.ph * 0.5, g.hip * 0.52, w_ankle


def _thigh_box(g: _Geometry, side: int) -> tuple[float, float, float, float]:
    """Canvas box in the middle of the thigh of leg ``side``, below a long top (0.64..0.71 of the height)."""
    x_hip, x_ankle, w_top, w_bottom = _leg(g, side)
    t = (0.675 - 0.49) / (0.74 - 0.49)  # position between hip and knee
    x = x_hip + (x_ankle - x_hip) / 2 * t
    half = 0.5 * (w_top + (w_bottom * 1.15 - w_top) * t)
    return x - half, g.y(0.64), x + half, g.y(0.71)


def _draw_legs(draw: ImageDraw.ImageDraw, g: _Geometry, a: Mapping[str, str], tr: HiddenTraits) -> None:
    y_hip, y_knee, y_ankle = g.y(0.49), g.y(0.74), g.y(0.955)
    for side in (-1, 1):
        x_hip, x_ankle, w_top, w_bottom = _leg(g, side)
        x_knee = (x_hip + x_ankle) / 2
        leg = [(x_hip - w_top, y_hip), (x_hip + w_top, y_hip),
               (x_knee + w_bottom * 1.15, y_knee), (x_ankle + w_bottom, y_ankle),
               (x_ankle - w_bottom, y_ankle), (x_knee - w_bottom * 1.15, y_knee)]
        draw.polygon(leg, fill=tr.lower_rgb)  # with a dress these are leggings in the lower colour
        # footwear
        toe = g.facing * 0.035 * g.ph if g.view == "side" else 0.0
        sw = w_bottom * 1.35
        if a["boots"] == "yes":
            y_boot = g.y(0.85)
            xb = x_ankle + (x_knee - x_ankle) * (y_ankle - y_boot) / (y_ankle - y_knee)
            draw.polygon([(xb - sw, y_boot), (xb + sw, y_boot), (x_ankle + sw, y_ankle),
                          (x_ankle - sw, y_ankle)], fill=tr.shoe_rgb)
        draw.ellipse([x_ankle - sw + min(toe, 0), y_ankle - 0.022 * g.ph,
                      x_ankle + sw + max(toe, 0), g.y(1.0)], fill=tr.shoe_rgb)


def _draw_dress(draw: ImageDraw.ImageDraw, g: _Geometry, tr: HiddenTraits) -> None:
    y0, y1 = g.y(0.45), g.y(0.73)
    top_w = _torso_half_width(g, 0.45)
    bottom_w = g.hip * 1.7 if g.view != "side" else g.hip * 1.5 + 0.03 * g.ph
    draw.polygon([(g.cx - top_w, y0), (g.cx + top_w, y0), (g.cx + bottom_w, y1), (g.cx - bottom_w, y1)],
                 fill=tr.upper_rgb)
    draw.line([(g.cx - bottom_w, y1), (g.cx + bottom_w, y1)], fill=_darker(tr.upper_rgb, 0.75), width=2)


def _draw_torso(draw: ImageDraw.ImageDraw, g: _Geometry, a: Mapping[str, str], tr: HiddenTraits) -> float:
    """Draw the top; returns its bottom height fraction."""
    bottom = 0.61 if a["top_length"] == "long" else 0.50
    fracs = [0.17, 0.24, 0.30, 0.40, 0.50]
    if bottom > 0.5:
        fracs.append(bottom)
    right = [(g.cx + _torso_half_width(g, f) * (1.08 if f > 0.5 else 1.0), g.y(f)) for f in fracs]
    left = [(g.cx - x + g.cx, y) for x, y in reversed(right)]
    neck_w = 0.05 * g.ph
    outline = [(g.cx - neck_w, g.y(0.155)), (g.cx + neck_w, g.y(0.155))] + right + left
    draw.polygon(outline, fill=tr.upper_rgb)
    _draw_pattern(draw, g, tr, bottom)
    return bottom


def _draw_pattern(draw: ImageDraw.ImageDraw, g: _Geometry, tr: HiddenTraits, bottom: float) -> None:
    col = tr.pattern_rgb
    if tr.pattern == "stripes":
        f = 0.22
        while f < bottom - 0.02:
            hw = _torso_half_width(g, f) - 1
            draw.line([(g.cx - hw, g.y(f)), (g.cx + hw, g.y(f))], fill=col, width=max(2, int(0.014 * g.ph)))
            f += 0.055
    elif tr.pattern == "logo" and g.view == "front":
        s = 0.035 * g.ph
        x, y = g.cx + 0.3 * g.shoulder * tr.bag_side * -1, g.y(0.26)
        draw.rectangle([x - s, y - s, x + s, y + s], fill=col)
    elif tr.pattern == "zip" and g.view == "front":
        draw.line([(g.cx, g.y(0.17)), (g.cx, g.y(bottom))], fill=col, width=max(2, int(0.012 * g.ph)))
    elif tr.pattern == "collar" and g.view != "side":
        w = 0.07 * g.ph
        draw.polygon([(g.cx - w, g.y(0.158)), (g.cx + w, g.y(0.158)), (g.cx, g.y(0.215))], fill=col)


def _draw_arms(draw: ImageDraw.ImageDraw, g: _Geometry, a: Mapping[str, str], tr: HiddenTraits) -> None:
    width = 0.055 * g.ph * tr.build
    sleeve_end = 0.27 if a["short_sleeve"] == "yes" else 0.46
    sides = (0,) if g.view == "side" else (-1, 1)
    for side in sides:
        if side == 0:
            sh = (g.cx - g.facing * 0.01 * g.ph, g.y(0.19))
            el = (g.cx + g.facing * g.swing * g.ph, g.y(0.33))
            wr = (g.cx + g.facing * g.swing * 2.2 * g.ph, g.y(0.46))
        else:
            x = g.cx + side * (g.shoulder - width * 0.35)
            sh = (x, g.y(0.19))
            el = (x + side * 0.012 * g.ph, g.y(0.33))
            wr = (x + side * (0.008 + abs(g.swing) * 0.3) * g.ph, g.y(0.46))
        # whole arm in skin, then the sleeve over it
        _limb(draw, sh, el, width, tr.skin)
        _limb(draw, el, wr, width * 0.9, tr.skin)
        t = (sleeve_end - 0.19) / (0.33 - 0.19)
        if t <= 1:
            mid = (sh[0] + (el[0] - sh[0]) * t, sh[1] + (el[1] - sh[1]) * t)
            _limb(draw, sh, mid, width * 1.08, tr.upper_rgb)
        else:
            t2 = (sleeve_end - 0.33) / (0.46 - 0.33)
            cuff = (el[0] + (wr[0] - el[0]) * t2, el[1] + (wr[1] - el[1]) * t2)
            _limb(draw, sh, el, width * 1.08, tr.upper_rgb)
            _limb(draw, el, cuff, width, tr.upper_rgb)
        hr = width * 0.55
        draw.ellipse([wr[0] - hr, wr[1] - hr * 0.6, wr[0] + hr, wr[1] + hr * 1.6], fill=tr.skin)


def _draw_bag(draw: ImageDraw.ImageDraw, g: _Geometry, tr: HiddenTraits) -> None:
    bw, bh = 0.075 * g.ph * tr.bag_size, 0.11 * g.ph * tr.bag_size
    strap = _darker(tr.bag_rgb, 0.7)
    if g.view == "side":
        bx = g.cx - g.facing * 0.02 * g.ph
        draw.line([(g.cx - g.facing * 0.01 * g.ph, g.y(0.17)), (bx, g.y(0.47))], fill=strap, width=3)
    else:
        side = tr.bag_side if g.view == "front" else -tr.bag_side  # the bag side flips from the back
        bx = g.cx + side * (g.hip + bw * 0.55)
        draw.line([(g.cx - side * g.shoulder * 0.75, g.y(0.175)), (bx, g.y(0.47))], fill=strap, width=3)
    draw.rounded_rectangle([bx - bw, g.y(0.46), bx + bw, g.y(0.46) + bh], radius=max(1.0, bw * 0.3),
                           fill=tr.bag_rgb)


def _draw_head(draw: ImageDraw.ImageDraw, g: _Geometry, a: Mapping[str, str], tr: HiddenTraits) -> tuple:
    """Draw neck, hair, face, glasses and hat; returns the head box on the canvas."""
    r = g.head_r
    shift = g.facing * 0.25 * r if g.view == "side" else 0.0
    hx, hy = g.cx + shift, g.top + r
    rx = r * 0.86
    head = (hx - rx, hy - r, hx + rx, hy + r)
    long_hair = a["hair_length"] == "long"
    hair = tr.hair_rgb
    # long hair hanging behind the head down to the shoulders
    if long_hair and g.view != "back":
        if g.view == "front":
            draw.rounded_rectangle([hx - rx * 1.18, hy - r * 0.5, hx + rx * 1.18, g.y(0.235)], radius=r * 0.5,
                                   fill=hair)
        else:
            back = hx - g.facing * rx * 0.35
            draw.rounded_rectangle([back - rx * 0.9, hy - r * 0.5, back + rx * 0.7, g.y(0.235)], radius=r * 0.5,
                                   fill=hair)
    # neck (over the hanging hair, so no "beard" shows under the chin)
    nw = 0.032 * g.ph
    draw.rectangle([g.cx - nw, hy + r * 0.6, g.cx + nw, g.y(0.175)], fill=tr.skin)
    draw.ellipse(head, fill=tr.skin)
    big = (hx - rx * 1.1, hy - r * 1.12, hx + rx * 1.1, hy + r * 0.95)
    if g.view == "back":
        draw.ellipse(big if long_hair else (hx - rx * 1.06, hy - r * 1.08, hx + rx * 1.06, hy + r * 0.75), fill=hair)
        if long_hair:
            draw.rounded_rectangle([hx - rx * 1.15, hy, hx + rx * 1.15, g.y(0.24)], radius=r * 0.5, fill=hair)
    else:
        draw.chord((hx - rx * 1.08, hy - r * 1.1, hx + rx * 1.08, hy + r * 0.55), 180, 360, fill=hair)
        if g.view == "side":
            bx = hx - g.facing * rx * 0.45
            draw.ellipse([bx - rx * 0.65, hy - r * 1.0, bx + rx * 0.65, hy + r * 0.65], fill=hair)
        _draw_face(draw, g, a, hx, hy, r)
    if a["hat"] == "yes":
        _draw_hat(draw, g, tr, hx, hy, r)
    return head


def _draw_face(draw: ImageDraw.ImageDraw, g: _Geometry, a: Mapping[str, str], hx: float, hy: float,
               r: float) -> None:
    eye_y, er = hy + 0.12 * r, max(1.0, 0.1 * r)
    eyes = (hx - 0.36 * r, hx + 0.36 * r) if g.view == "front" else (hx + g.facing * 0.5 * r,)
    for ex in eyes:
        draw.ellipse([ex - er, eye_y - er, ex + er, eye_y + er], fill=(30, 24, 22))
    if g.view == "front":
        draw.line([(hx - 0.2 * r, hy + 0.58 * r), (hx + 0.2 * r, hy + 0.58 * r)], fill=(150, 70, 60), width=1)
    if a["glasses"] == "yes":
        lw = max(2, int(round(0.1 * r)))
        s = 0.24 * r
        frame = (20, 20, 24)
        for ex in eyes:
            draw.rectangle([ex - s, eye_y - s * 0.8, ex + s, eye_y + s * 0.8], outline=frame, width=lw)
        if g.view == "front":
            draw.line([(eyes[0] + s, eye_y), (eyes[1] - s, eye_y)], fill=frame, width=lw)
        else:
            draw.line([(eyes[0] - g.facing * s, eye_y), (hx - g.facing * 0.3 * r, eye_y)], fill=frame, width=lw)


def _draw_hat(draw: ImageDraw.ImageDraw, g: _Geometry, tr: HiddenTraits, hx: float, hy: float, r: float) -> None:
    crown = (hx - r * 1.0, hy - r * 1.38, hx + r * 1.0, hy + r * 0.2)
    draw.chord(crown, 180, 360, fill=tr.hat_rgb)
    band_y = hy - r * 0.42
    draw.rectangle([hx - r * 1.0, band_y, hx + r * 1.0, band_y + r * 0.16], fill=_darker(tr.hat_rgb, 0.8))
    if g.view == "front":
        draw.ellipse([hx - r * 1.15, band_y - r * 0.05, hx + r * 1.15, band_y + r * 0.32], fill=tr.hat_rgb)
    elif g.view == "side":
        tip = hx + g.facing * r * 1.6
        draw.polygon([(hx, band_y), (tip, band_y + r * 0.12), (tip, band_y + r * 0.25), (hx, band_y + r * 0.2)],
                     fill=tr.hat_rgb)


def _draw_person(img: Image.Image, g: _Geometry, identity: Identity) -> tuple:
    """Draw ``identity`` with layout ``g`` on the canvas; returns the head box."""
    a, tr = identity.attributes, identity.traits
    draw = ImageDraw.Draw(img)
    _draw_legs(draw, g, a, tr)
    if a["dress"] == "yes":
        _draw_dress(draw, g, tr)
    _draw_torso(draw, g, a, tr)
    _draw_arms(draw, g, a, tr)
    if a["bag"] == "yes":  # drawn over the arms so that the attribute is always visible
        _draw_bag(draw, g, tr)
    return _draw_head(draw, g, a, tr)


# --------------------------------------------------------------------------- backgrounds

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
            win = _darker(colour, 0.62)
            for wy in range(top + 8, horizon - 10, 18):
                for wx in range(x + 6, x + bw - 8, 14):
                    draw.rectangle([wx, wy, wx + 7, wy + 9], fill=win)
            x += bw + int(srng.integers(0, 12))
        ground = np.array([132, 132, 136]) + srng.integers(-10, 11)
        draw.rectangle([0, horizon, _W, _H], fill=tuple(int(v) for v in ground))
        line = _darker(tuple(int(v) for v in ground), 0.8)
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
        indoor = camera in _MSMT_INDOOR
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


_MSMT_INDOOR = frozenset({13, 14, 15})


def _target_background(style: str, env: Environment, rng: np.random.Generator) -> np.ndarray:
    pano = _camera_panorama(style, env.camera)
    x0 = int(rng.integers(0, pano.shape[1] - _W + 1))
    return pano[:, x0:x0 + _W].copy()


# --------------------------------------------------------------------------- post-processing

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
    if env.camera in _MSMT_INDOOR:
        gain, cast = 0.85, np.asarray((0.95, 1.05, 1.0), np.float32)
    else:
        gain = _MSMT_TIME.get(env.illumination, 0.8)
        cast = np.asarray(crng.uniform(0.88, 1.1, 3), np.float32)
    arr = (arr - 128) * 0.85 + 128  # flat, low contrast
    arr = arr * gain * cast
    return arr + rng.normal(0.0, 6.5, arr.shape).astype(np.float32)


# --------------------------------------------------------------------------- public rendering

def _check(style: str, env: Environment) -> None:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    if env.weather not in WEATHERS:
        raise ValueError(f"unknown weather {env.weather!r}; expected one of {', '.join(WEATHERS)}")
    if env.illumination not in ILLUMINATIONS:
        raise ValueError(f"unknown illumination {env.illumination!r}; expected one of {', '.join(ILLUMINATIONS)}")
    if not 1 <= env.scene <= 9:
        raise ValueError(f"scene code {env.scene} is out of range 1..9")
    cams = {"finegpr": 36, "synth_market": 6, "synth_msmt": 15}[style]
    if not 1 <= env.camera <= cams:
        raise ValueError(f"camera {env.camera} is out of range 1..{cams} for style {style!r}")


def _render(identity: Identity | None, env: Environment, style: str, rng: np.random.Generator,
            partial: bool = False) -> tuple[Image.Image, BodyBoxes | None]:
    _check(style, env)
    if style == "finegpr":
        bg = _finegpr_background(env, rng)
    else:
        bg = _target_background(style, env, rng)
    canvas = Image.fromarray(bg)
    boxes = None
    if identity is not None:
        zoom = float(rng.uniform(1.6, 2.4)) if partial else (0.95 if style == "synth_msmt" else 1.0)
        g = _geometry(identity, env, rng, zoom=zoom, partial=partial)
        if style != "synth_msmt" or env.camera not in _MSMT_INDOOR:
            shadow = Image.new("L", canvas.size, 0)
            ImageDraw.Draw(shadow).ellipse([g.cx - g.hip * 2.2, g.y(0.97), g.cx + g.hip * 2.2, g.y(1.02)], fill=90)
            canvas.paste((0, 0, 0), mask=shadow)
        head = _draw_person(canvas, g, identity)
        s = 1.0 / _SS
        r = g.head_r
        hx = (head[0] + head[2]) / 2
        tw = _torso_half_width(g, 0.32) * 0.5
        thigh = _thigh_box(g, -1)
        boxes = BodyBoxes(
            head=tuple(v * s for v in head),
            hat_top=((hx - 0.5 * r) * s, (g.top - 0.3 * r) * s, (hx + 0.5 * r) * s, (g.top + 0.1 * r) * s),
            upper=((g.cx - tw) * s, g.y(0.24) * s, (g.cx + tw) * s, g.y(0.40) * s),
            lower=tuple(v * s for v in thigh),
        )
    small = canvas.reduce(_SS)
    if style == "finegpr":
        arr = _post_finegpr(np.asarray(small, np.float32), env, rng)
    elif style == "synth_market":
        arr = _post_market(small, env, rng)
    else:
        arr = _post_msmt(small, env, rng)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB"), boxes


def render_person_with_boxes(identity: Identity, environment: Environment, style: str = "finegpr",
                             rng: np.random.Generator | None = None) -> tuple[Image.Image, BodyBoxes]:
    """Like :func:`render_person`, also returning where the body parts were drawn.

    Returns:
        ``(image, boxes)``: the RGB image and a :class:`BodyBoxes` in its
        pixel coordinates.

    Raises:
        ValueError: as :func:`render_person`.
    """
    image, boxes = _render(identity, environment, style, rng if rng is not None else np.random.default_rng())
    assert boxes is not None
    return image, boxes


def render_person(identity: Identity, environment: Environment, style: str = "finegpr",
                  rng: np.random.Generator | None = None) -> Image.Image:
    """Draw one pedestrian crop.

    Args:
        identity: who to draw (attributes and hidden traits).
        environment: viewpoint, weather, illumination, scene, camera.
        style: one of :data:`STYLES`.
        rng: randomness for the per-image jitter (position +-5 % of the width,
            height scale 0.95..1.04, leg spread / stride, arm swing,
            background crop, snow specks, Gaussian pixel noise); a fresh
            unseeded generator when ``None``. The same seeded generator state
            gives byte-identical pixels.

    Returns:
        RGB ``PIL.Image.Image`` of size :data:`IMAGE_SIZE` (64 wide, 128 high).

    Raises:
        ValueError: unknown style, weather or illumination, or a scene/camera
            code out of range for the style.
    """
    return render_person_with_boxes(identity, environment, style, rng)[0]


def render_distractor(environment: Environment, style: str, rng: np.random.Generator,
                      identity: Identity | None = None) -> Image.Image:
    """Draw a bad detection: background only, or a zoomed-in piece of ``identity``.

    Used for Market-1501-style distractors (pid ``0000``) and junk images
    (pid ``-1``).

    Args:
        environment: capture conditions, as for :func:`render_person`.
        style: one of :data:`STYLES`.
        rng: randomness (crop, zoom 1.6..2.4, offsets, noise).
        identity: person partly visible in the crop; ``None`` for background only.

    Returns:
        RGB ``PIL.Image.Image`` of size :data:`IMAGE_SIZE`.

    Raises:
        ValueError: as :func:`render_person`.
    """
    return _render(identity, environment, style, rng, partial=identity is not None)[0]
