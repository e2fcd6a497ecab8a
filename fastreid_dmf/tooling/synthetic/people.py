"""Drawing one person on the renderer's supersampled canvas.

:func:`draw_person` lays the body out from an :class:`~.identities.Identity`
and an :class:`~.styles.Environment` (viewpoint) with per-image jitter, draws
legs, footwear, dress, top with its mark, arms, bag and head (hair, face,
glasses, hat), and returns where the parts landed (:class:`BodyBoxes`).

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

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .canvas import CANVAS_SIZE, SUPERSAMPLING, darker
from .identities import HiddenTraits, Identity
from .styles import Environment

__all__ = ["BodyBoxes", "draw_person"]

_SS = SUPERSAMPLING
_W, _H = CANVAS_SIZE


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
    draw.line([(g.cx - bottom_w, y1), (g.cx + bottom_w, y1)], fill=darker(tr.upper_rgb, 0.75), width=2)


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
    strap = darker(tr.bag_rgb, 0.7)
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
    draw.rectangle([hx - r * 1.0, band_y, hx + r * 1.0, band_y + r * 0.16], fill=darker(tr.hat_rgb, 0.8))
    if g.view == "front":
        draw.ellipse([hx - r * 1.15, band_y - r * 0.05, hx + r * 1.15, band_y + r * 0.32], fill=tr.hat_rgb)
    elif g.view == "side":
        tip = hx + g.facing * r * 1.6
        draw.polygon([(hx, band_y), (tip, band_y + r * 0.12), (tip, band_y + r * 0.25), (hx, band_y + r * 0.2)],
                     fill=tr.hat_rgb)


def _draw_parts(img: Image.Image, g: _Geometry, identity: Identity) -> tuple:
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


def draw_person(canvas: Image.Image, identity: Identity, env: Environment, rng: np.random.Generator,
                zoom: float = 1.0, partial: bool = False, shadow: bool = True) -> BodyBoxes:
    """Draw ``identity`` on the supersampled ``canvas`` (in place) and say where its parts are.

    Args:
        canvas: RGB image of :data:`~.canvas.CANVAS_SIZE` holding the background.
        identity: who to draw (attributes and hidden traits).
        env: capture conditions; only the viewpoint is read here.
        rng: randomness for the per-image jitter (height scale 0.95..1.04,
            position, leg spread / stride, arm swing).
        zoom: person size multiplier (1.0 normal; 1.6..2.4 for a bad detection).
        partial: a bad detection: the body is placed so that only a piece of
            it is in the crop.
        shadow: draw a soft ground shadow under the feet first.

    Returns:
        :class:`BodyBoxes` in output pixel coordinates (the canvas divided by
        :data:`~.canvas.SUPERSAMPLING`).
    """
    g = _geometry(identity, env, rng, zoom=zoom, partial=partial)
    if shadow:
        mask = Image.new("L", canvas.size, 0)
        ImageDraw.Draw(mask).ellipse([g.cx - g.hip * 2.2, g.y(0.97), g.cx + g.hip * 2.2, g.y(1.02)], fill=90)
        canvas.paste((0, 0, 0), mask=mask)
    head = _draw_parts(canvas, g, identity)
    s = 1.0 / _SS
    r = g.head_r
    hx = (head[0] + head[2]) / 2
    tw = _torso_half_width(g, 0.32) * 0.5
    thigh = _thigh_box(g, -1)
    return BodyBoxes(
        head=tuple(v * s for v in head),
        hat_top=((hx - 0.5 * r) * s, (g.top - 0.3 * r) * s, (hx + 0.5 * r) * s, (g.top + 0.1 * r) * s),
        upper=((g.cx - tw) * s, g.y(0.24) * s, (g.cx + tw) * s, g.y(0.40) * s),
        lower=tuple(v * s for v in thigh),
    )
