"""Procedural pedestrian renderer for the bundled synthetic Re-ID benchmark.

Draws one 64 x 128 RGB pedestrian crop (PIL size ``(64, 128)``, the size of
Market-1501 crops) with PIL and NumPy only, from

* an :class:`~.identities.Identity`: FineGPR's 13 identity attributes plus
  hidden per-identity traits (:mod:`.identities`);
* an :class:`~.styles.Environment`: viewpoint, weather, illumination and
  scene as in FineGPR's file name codes, plus a camera index for the target
  styles;
* a domain style (:data:`~.styles.STYLES`): ``"finegpr"``, ``"synth_market"``
  or ``"synth_msmt"`` (:mod:`.styles`).

An image is composed in three steps: the background (:mod:`.scenes`), the
person (:mod:`.people`, whose docstring gives the viewpoint conventions) on a
2x supersampled canvas, then the canvas box-filtered down to 64 x 128 and
finished in the style's look (:func:`~.styles.finish_image`). All randomness
comes from the ``numpy.random.Generator`` passed in, so a seeded generator
gives the same pixels every time.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .canvas import SUPERSAMPLING
from .identities import Identity
from .people import BodyBoxes, draw_person
from .scenes import draw_background
from .styles import PERSON_SCALE, Environment, casts_shadow, check_environment, finish_image

__all__ = ["render_person", "render_person_with_boxes", "render_distractor"]


def _render(identity: Identity | None, env: Environment, style: str, rng: np.random.Generator,
            partial: bool = False) -> tuple[Image.Image, BodyBoxes | None]:
    check_environment(style, env)
    canvas = Image.fromarray(draw_background(style, env, rng))
    boxes = None
    if identity is not None:
        zoom = float(rng.uniform(1.6, 2.4)) if partial else PERSON_SCALE[style]
        boxes = draw_person(canvas, identity, env, rng, zoom=zoom, partial=partial, shadow=casts_shadow(style, env))
    arr = finish_image(style, canvas.reduce(SUPERSAMPLING), env, rng)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB"), boxes


def render_person_with_boxes(identity: Identity, environment: Environment, style: str = "finegpr",
                             rng: np.random.Generator | None = None) -> tuple[Image.Image, BodyBoxes]:
    """Like :func:`render_person`, also returning where the body parts were drawn.

    Returns:
        ``(image, boxes)``: the RGB image and a :class:`~.people.BodyBoxes` in its
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
        style: one of :data:`~.styles.STYLES`.
        rng: randomness for the per-image jitter (position +-5 % of the width,
            height scale 0.95..1.04, leg spread / stride, arm swing,
            background crop, snow specks, Gaussian pixel noise); a fresh
            unseeded generator when ``None``. The same seeded generator state
            gives byte-identical pixels.

    Returns:
        RGB ``PIL.Image.Image`` of size :data:`~.canvas.IMAGE_SIZE` (64 wide, 128 high).

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
        style: one of :data:`~.styles.STYLES`.
        rng: randomness (crop, zoom 1.6..2.4, offsets, noise).
        identity: person partly visible in the crop; ``None`` for background only.

    Returns:
        RGB ``PIL.Image.Image`` of size :data:`~.canvas.IMAGE_SIZE`.

    Raises:
        ValueError: as :func:`render_person`.
    """
    return _render(identity, environment, style, rng, partial=identity is not None)[0]
