"""Synthetic identities: FineGPR's 13 attributes plus hidden per-identity traits.

An :class:`Identity` carries FineGPR's identity attributes (see
:mod:`fastreid_dmf.data.finegpr_format`) and :class:`HiddenTraits` that are
*not* in the attributes (exact clothing shades, skin, hair, proportions, bag
side, a mark on the top), so that two identities sharing every attribute
still look different. All sampling draws from the ``numpy.random.Generator``
passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ...data.finegpr_format import ATTRIBUTE_NAMES, ATTRIBUTE_VALUES, COLORS

__all__ = ["COLOR_RGB", "HiddenTraits", "Identity", "sample_attributes", "sample_traits", "sample_identity"]

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
