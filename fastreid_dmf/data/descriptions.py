"""Text descriptions of FineGPR images, built from their attributes.

DMF pre-trains on FineGPR images *and* a text for each image (Xiang et al.,
"Deep Multimodal Fusion for Generalizable Person Re-identification",
arXiv 2211.00933, Sec. 3 and Fig. 2). The text of one image combines the
identity attributes (read from the attribute file with
:func:`fastreid_dmf.data.finegpr_format.read_attribute_file`) with the
environment codes of the image's file name (:class:`FineGPRCodes`).

Two modes (:data:`DESCRIPTION_MODES`):

``"sentence"``
    A template sentence in the style of the FineGPR-C captions (Xiang et al.
    2021, github JeremyXSC/FineGPR), e.g. the published caption "There is a
    young male with short hair, who wears blue upper-body clothes, blue
    lower-body clothes, and light shoes in a overcast afternoon, and with
    front viewpoint, this person also wears boots and takes a hat." This
    module keeps that template but (a) covers every identity attribute
    (sleeve and top length are added to the upper-body clothes; glasses,
    dress, boots, hat and bag to the closing sentence), (b) fixes the grammar
    ("an overcast afternoon", "with a front viewpoint", a second sentence for
    the accessories, "wears a hat", "carries a bag"). The scene (urban/wild)
    is not part of the sentence, as in FineGPR-C.

``"keywords"``
    A comma-separated list of attribute keywords, as drawn in DMF Fig. 2,
    e.g. "male, adult, short hair, blue upper clothes, black lower clothes,
    short sleeves, short top, light shoes, hat, overcast, afternoon, front
    view"; with the environment the scene is appended ("urban scene").

In both modes a yes/no accessory (glasses, dress, boots, hat, bag) is named
when its value is "yes" and left out when "no"; every other attribute always
contributes its value. Age words: teenager -> "young", adult -> "adult",
older -> "old" (both modes). Descriptions are deterministic: the same inputs
always give the same string.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from .finegpr_format import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUES,
    ILLUMINATIONS,
    WEATHERS,
    FineGPRCodes,
    parse_finegpr_filename,
    scene_name,
    viewpoint_name,
)

__all__ = [
    "AGE_WORDS",
    "DESCRIPTION_MODES",
    "build_description",
    "check_attributes",
    "check_description_mode",
    "describe_images",
    "environment_words",
    "keyword_description",
    "sentence_description",
]

#: Allowed values of the ``mode`` argument of :func:`build_description`.
DESCRIPTION_MODES: tuple[str, ...] = ("sentence", "keywords")

#: FineGPR age value -> word used in descriptions (FineGPR-C uses "young" for teenagers).
AGE_WORDS: dict[str, str] = {"teenager": "young", "adult": "adult", "older": "old"}

# Yes/no accessories in the order they are named, with their sentence phrase.
_WORN_ACCESSORIES: tuple[tuple[str, str], ...] = (
    ("glasses", "glasses"),
    ("dress", "a dress"),
    ("boots", "boots"),
    ("hat", "a hat"),
)
_CARRIED_ACCESSORIES: tuple[tuple[str, str], ...] = (("bag", "a bag"),)


def check_description_mode(mode: str, allowed: tuple[str, ...] = DESCRIPTION_MODES) -> str:
    """Validate a description (text) mode.

    Args:
        mode: requested mode.
        allowed: the valid modes (default :data:`DESCRIPTION_MODES`, the modes
            built from attributes; the FineGPR dataset adds "caption").

    Returns:
        ``mode`` unchanged.

    Raises:
        ValueError: ``mode`` is not in ``allowed``; the message names the
            value and the allowed ones.
    """
    if mode not in allowed:
        raise ValueError(f"unknown FineGPR text mode {mode!r}; expected one of {', '.join(map(repr, allowed))}")
    return mode


def check_attributes(attributes: Mapping[str, str]) -> None:
    """Check that an identity's attributes are complete and use the known value words.

    Args:
        attributes: ``{attribute name: value word}`` for one identity, as
            returned (per pid) by ``read_attribute_file``.

    Raises:
        ValueError: an attribute of :data:`ATTRIBUTE_NAMES` is missing or its
            value is not one of :data:`ATTRIBUTE_VALUES`; the message names it.
    """
    for name in ATTRIBUTE_NAMES:
        if name not in attributes:
            raise ValueError(f"FineGPR attributes {dict(attributes)!r} lack attribute {name!r}")
        if attributes[name] not in ATTRIBUTE_VALUES[name]:
            raise ValueError(
                f"unknown value {attributes[name]!r} for FineGPR attribute {name!r}; expected one of "
                f"{', '.join(ATTRIBUTE_VALUES[name])} (read_attribute_file normalises raw values)"
            )


def environment_words(codes: FineGPRCodes) -> dict[str, str]:
    """Words for the environment of one image.

    Args:
        codes: codes parsed from the image's file name.

    Returns:
        ``{"weather", "illumination", "viewpoint", "scene"}`` -> word, e.g.
        ``{"weather": "overcast", "illumination": "afternoon", "viewpoint":
        "front", "scene": "urban"}`` (viewpoint/scene words from
        ``finegpr_format.viewpoint_name`` / ``scene_name``).

    Raises:
        ValueError: a code is out of range.
    """
    if not 1 <= codes.weather <= len(WEATHERS):
        raise ValueError(f"FineGPR weather code {codes.weather} is out of range 1..{len(WEATHERS)}")
    if not 1 <= codes.illumination <= len(ILLUMINATIONS):
        raise ValueError(
            f"FineGPR illumination code {codes.illumination} is out of range 1..{len(ILLUMINATIONS)}"
        )
    return {
        "weather": WEATHERS[codes.weather - 1],
        "illumination": ILLUMINATIONS[codes.illumination - 1],
        "viewpoint": viewpoint_name(codes.camera),
        "scene": scene_name(codes.scene),
    }


def _article(word: str) -> str:
    """Indefinite article for ``word`` (vowel-letter rule; enough for this vocabulary)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def _join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def sentence_description(attributes: Mapping[str, str], codes: FineGPRCodes | None = None) -> str:
    """FineGPR-C-style template sentence (caption template of Xiang et al. 2021, grammar fixed).

    Args:
        attributes: one identity's attributes (see :func:`check_attributes`).
        codes: the image's environment codes; ``None`` leaves the environment
            (weather, illumination, viewpoint) out.

    Returns:
        e.g. "There is a young male with short hair, who wears short blue
        upper-body clothes with short sleeves, blue lower-body clothes, and
        light shoes in an overcast afternoon, with a front viewpoint. This
        person also wears boots and a hat."

    Raises:
        ValueError: incomplete or unknown attributes, or an out-of-range code.
    """
    check_attributes(attributes)
    age = AGE_WORDS[attributes["age"]]
    text = (
        f"There is {_article(age)} {age} {attributes['gender']} with {attributes['hair_length']} hair, "
        f"who wears {attributes['top_length']} {attributes['upper_color']} upper-body clothes "
        f"with {'short' if attributes['short_sleeve'] == 'yes' else 'long'} sleeves, "
        f"{attributes['lower_color']} lower-body clothes, and {attributes['shoes']} shoes"
    )
    if codes is not None:
        env = environment_words(codes)
        viewpoint = env["viewpoint"].replace(" ", "-")
        text += (
            f" in {_article(env['weather'])} {env['weather']} {env['illumination']},"
            f" with {_article(viewpoint)} {viewpoint} viewpoint"
        )
    text += "."
    worn = [phrase for name, phrase in _WORN_ACCESSORIES if attributes[name] == "yes"]
    carried = [phrase for name, phrase in _CARRIED_ACCESSORIES if attributes[name] == "yes"]
    clauses = []
    if worn:
        clauses.append("wears " + _join(worn))
    if carried:
        clauses.append("carries " + _join(carried))
    if clauses:
        text += " This person also " + ", and ".join(clauses) + "."
    return text


def keyword_description(attributes: Mapping[str, str], codes: FineGPRCodes | None = None) -> str:
    """Attribute keyword list as drawn in DMF Fig. 2 (Xiang et al., arXiv 2211.00933).

    Args:
        attributes: one identity's attributes (see :func:`check_attributes`).
        codes: the image's environment codes; ``None`` leaves the environment
            (weather, illumination, viewpoint, scene) out.

    Returns:
        e.g. "male, adult, short hair, blue upper clothes, black lower
        clothes, short sleeves, short top, light shoes, hat, overcast,
        afternoon, front view, urban scene".

    Raises:
        ValueError: incomplete or unknown attributes, or an out-of-range code.
    """
    check_attributes(attributes)
    words = [
        attributes["gender"],
        AGE_WORDS[attributes["age"]],
        f"{attributes['hair_length']} hair",
        f"{attributes['upper_color']} upper clothes",
        f"{attributes['lower_color']} lower clothes",
        "short sleeves" if attributes["short_sleeve"] == "yes" else "long sleeves",
        f"{attributes['top_length']} top",
        f"{attributes['shoes']} shoes",
    ]
    words += [name for name, _ in (*_WORN_ACCESSORIES, *_CARRIED_ACCESSORIES) if attributes[name] == "yes"]
    if codes is not None:
        env = environment_words(codes)
        words += [env["weather"], env["illumination"], f"{env['viewpoint']} view", f"{env['scene']} scene"]
    return ", ".join(words)


def build_description(
    attributes: Mapping[str, str],
    codes: FineGPRCodes | None,
    mode: str = "sentence",
    with_environment: bool = True,
) -> str:
    """Text description of one FineGPR image (the text sample of DMF pre-training).

    Args:
        attributes: the identity's attributes, ``{name: value word}`` as
            returned per pid by ``read_attribute_file``.
        codes: codes parsed from the image's file name; may be ``None`` only
            when ``with_environment`` is false.
        mode: ``"sentence"`` (FineGPR-C caption template, Xiang et al. 2021)
            or ``"keywords"`` (DMF paper Fig. 2); see the module docstring.
        with_environment: add weather, illumination and viewpoint (and, in
            keyword mode, the scene); false gives the identity-only text,
            the same for every image of an identity.

    Returns:
        The description; deterministic in its inputs.

    Raises:
        ValueError: unknown ``mode`` (message names it and the allowed
            modes), ``codes`` is ``None`` with ``with_environment``, or
            incomplete/unknown attributes.
    """
    check_description_mode(mode)
    if with_environment and codes is None:
        raise ValueError("build_description: with_environment=True needs the image's FineGPRCodes, got None")
    env_codes = codes if with_environment else None
    if mode == "sentence":
        return sentence_description(attributes, env_codes)
    return keyword_description(attributes, env_codes)


def describe_images(
    attributes: Mapping[str, str],
    names: Iterable[str],
    mode: str = "sentence",
    with_environment: bool = True,
) -> Iterator[tuple[str, FineGPRCodes, str]]:
    """:func:`build_description` for many images of one identity, building each distinct text once.

    A description depends on the image only through its environment words, so an
    identity's 1,764 FineGPR images share at most a few hundred texts; images with
    the same words get the same string object.

    Args:
        attributes: the identity's attributes (see :func:`build_description`).
        names: FineGPR file names of that identity's images.
        mode, with_environment: as in :func:`build_description`.

    Yields:
        ``(name, codes, description)`` per name, in order.

    Raises:
        ValueError: a bad file name (``parse_finegpr_filename``) or as :func:`build_description`.
    """
    texts: dict[tuple[str, ...], str] = {}
    for name in names:
        codes = parse_finegpr_filename(name)
        key = tuple(environment_words(codes).values()) if with_environment else ()
        text = texts.get(key)
        if text is None:
            text = texts[key] = build_description(attributes, codes, mode, with_environment)
        yield name, codes, text
