"""FineGPR on-disk format: file names, environment codes and the attribute file.

FineGPR (Xiang et al., "Taking a Closer Look at Synthesis: Fine-grained
Attribute Analysis for Person Re-Identification", github JeremyXSC/FineGPR)
stores images as ``FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg``:

* ``cXX`` viewpoint, c01..c36 = 90, 100, ..., 350, 0, ..., 80 degrees (c28 = 0);
* ``wXX`` weather, w01..w07 (:data:`WEATHERS`);
* ``lXX`` illumination, l01..l07 (:data:`ILLUMINATIONS`);
* ``pXX`` scene, p01..p09, Urban except p03, p05, p08 which are Wild.

The per-identity attribute annotation format of the download is not
published, so this project defines one (documented in README, "FineGPR
attribute file"): a UTF-8 CSV file with a header row and one row per
identity::

    pid,gender,age,hair_length,glasses,short_sleeve,dress,boots,hat,bag,top_length,shoes,upper_color,lower_color
    1,male,adult,short,no,yes,no,no,yes,no,short,dark,blue,black

``pid`` is the integer identity (the folder name without leading zeros is
fine); every other column holds one of the words in :data:`ATTRIBUTE_VALUES`.
Colours may also be given as FineGPR's two-digit codes ``01``..``09``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass

__all__ = [
    "ATTRIBUTE_VALUES",
    "ATTRIBUTE_NAMES",
    "COLORS",
    "WEATHERS",
    "ILLUMINATIONS",
    "WILD_SCENES",
    "NUM_VIEWPOINTS",
    "FineGPRCodes",
    "parse_finegpr_filename",
    "format_finegpr_filename",
    "viewpoint_degrees",
    "viewpoint_name",
    "scene_name",
    "read_attribute_file",
    "write_attribute_file",
]

#: FineGPR's 9 clothing colours; the code of ``COLORS[i]`` is ``f"{i + 1:02d}"``.
COLORS: tuple[str, ...] = ("black", "white", "red", "purple", "gray", "yellow", "blue", "green", "brown")

#: Allowed value words of every identity attribute, in file column order.
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "gender": ("male", "female"),
    "age": ("teenager", "adult", "older"),
    "hair_length": ("long", "short"),
    "glasses": ("yes", "no"),
    "short_sleeve": ("yes", "no"),
    "dress": ("yes", "no"),
    "boots": ("yes", "no"),
    "hat": ("yes", "no"),
    "bag": ("yes", "no"),
    "top_length": ("long", "short"),
    "shoes": ("dark", "light"),
    "upper_color": COLORS,
    "lower_color": COLORS,
}
ATTRIBUTE_NAMES: tuple[str, ...] = tuple(ATTRIBUTE_VALUES)

#: w01..w07
WEATHERS: tuple[str, ...] = ("sunny", "cloudy", "overcast", "foggy", "neutral", "blizzard", "snowlight")
#: l01..l07
ILLUMINATIONS: tuple[str, ...] = ("midnight", "dawn", "forenoon", "noon", "afternoon", "dusk", "night")
#: Scene codes that are "Wild"; all other p01..p09 are "Urban".
WILD_SCENES: frozenset[int] = frozenset({3, 5, 8})
NUM_VIEWPOINTS = 36
NUM_SCENES = 9

_FILENAME_RE = re.compile(r"^(\d{4})_c(\d{2})_w(\d{2})_l(\d{2})_p(\d{2})\.jpg$")


@dataclass(frozen=True)
class FineGPRCodes:
    """Codes parsed from one FineGPR file name (all 1-based, as in the name).

    Attributes:
        pid: identity, 0..9999.
        camera: viewpoint code 1..36 (see :func:`viewpoint_degrees`).
        weather: 1..7, index into :data:`WEATHERS` plus one.
        illumination: 1..7, index into :data:`ILLUMINATIONS` plus one.
        scene: 1..9 (see :func:`scene_name`).
    """

    pid: int
    camera: int
    weather: int
    illumination: int
    scene: int


def parse_finegpr_filename(file_name: str) -> FineGPRCodes:
    """Parse ``<pid4>_cXX_wXX_lXX_pXX.jpg`` (a base name or a path).

    Raises:
        ValueError: the name does not match the layout or a code is out of
            range; the message names the file and the expected pattern.
    """
    base = os.path.basename(file_name)
    match = _FILENAME_RE.match(base)
    if match is None:
        raise ValueError(
            f"FineGPR file name {file_name!r} does not match the layout "
            "'<pid4>_cXX_wXX_lXX_pXX.jpg' (e.g. '0001_c05_w02_l04_p01.jpg')"
        )
    pid, cam, weather, light, scene = (int(g) for g in match.groups())
    limits = (("c", cam, NUM_VIEWPOINTS), ("w", weather, len(WEATHERS)),
              ("l", light, len(ILLUMINATIONS)), ("p", scene, NUM_SCENES))
    for letter, value, top in limits:
        if not 1 <= value <= top:
            raise ValueError(
                f"FineGPR file name {file_name!r}: code {letter}{value:02d} is out of range "
                f"{letter}01..{letter}{top:02d}"
            )
    return FineGPRCodes(pid, cam, weather, light, scene)


def format_finegpr_filename(codes: FineGPRCodes) -> str:
    """Inverse of :func:`parse_finegpr_filename` (base name only)."""
    return (f"{codes.pid:04d}_c{codes.camera:02d}_w{codes.weather:02d}"
            f"_l{codes.illumination:02d}_p{codes.scene:02d}.jpg")


def viewpoint_degrees(camera: int) -> int:
    """Viewpoint angle in degrees (0..350) of code ``cXX``: c01 = 90, c28 = 0."""
    return (90 + 10 * (camera - 1)) % 360


def viewpoint_name(camera: int) -> str:
    """Coarse viewpoint word used in descriptions.

    Convention of this project (FineGPR does not define one): 0 degrees faces
    the camera; within 45 degrees of 0 is "front", of 180 "back", 45..135
    "right side", 225..315 "left side" (boundaries go to front/back).
    """
    deg = viewpoint_degrees(camera)
    if deg <= 45 or deg >= 315:
        return "front"
    if 135 <= deg <= 225:
        return "back"
    return "right side" if deg < 180 else "left side"


def scene_name(scene: int) -> str:
    """"wild" for p03, p05, p08, else "urban"."""
    return "wild" if scene in WILD_SCENES else "urban"


def _normalise_value(attribute: str, raw: str, where: str) -> str:
    value = raw.strip().lower()
    if attribute in ("upper_color", "lower_color") and value.isdigit():
        code = int(value)
        if 1 <= code <= len(COLORS):
            return COLORS[code - 1]
    if attribute in ("glasses", "short_sleeve", "dress", "boots", "hat", "bag"):
        value = {"1": "yes", "0": "no", "true": "yes", "false": "no"}.get(value, value)
    if value not in ATTRIBUTE_VALUES[attribute]:
        raise ValueError(
            f"{where}: unknown value {raw!r} for attribute '{attribute}'; expected one of "
            f"{', '.join(ATTRIBUTE_VALUES[attribute])}"
        )
    return value


def read_attribute_file(path: str) -> dict[int, dict[str, str]]:
    """Read a FineGPR attribute CSV (format in the module docstring).

    Returns:
        ``{pid: {attribute: value word}}`` with every name of
        :data:`ATTRIBUTE_NAMES` present for every identity.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: missing/unknown column, bad pid, duplicate pid or unknown
            value; the message names the file, line and column.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FineGPR attribute file {path!r} not found; expected a CSV with header "
            f"'pid,{','.join(ATTRIBUTE_NAMES)}' (see README, 'FineGPR attribute file')"
        )
    table: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        missing = [c for c in ("pid", *ATTRIBUTE_NAMES) if c not in header]
        unknown = [c for c in header if c not in ("pid", *ATTRIBUTE_NAMES)]
        if missing or unknown:
            raise ValueError(
                f"{path}: bad header; missing columns {missing}, unknown columns {unknown}; "
                f"expected 'pid,{','.join(ATTRIBUTE_NAMES)}'"
            )
        for line_no, row in enumerate(reader, start=2):
            where = f"{path}, line {line_no}"
            try:
                pid = int(str(row["pid"]).strip())
            except ValueError:
                raise ValueError(f"{where}: pid {row['pid']!r} is not an integer") from None
            if pid in table:
                raise ValueError(f"{where}: pid {pid} appears twice")
            table[pid] = {a: _normalise_value(a, str(row[a] or ""), where) for a in ATTRIBUTE_NAMES}
    return table


def write_attribute_file(path: str, table: dict[int, dict[str, str]]) -> None:
    """Write ``{pid: {attribute: value}}`` in the format read by :func:`read_attribute_file`.

    Raises:
        ValueError: an identity lacks an attribute or has an unknown value.
    """
    for pid, attrs in table.items():
        for name in ATTRIBUTE_NAMES:
            if name not in attrs:
                raise ValueError(f"identity {pid} has no value for attribute '{name}'")
            _normalise_value(name, attrs[name], f"identity {pid}")
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("pid", *ATTRIBUTE_NAMES))
        for pid in sorted(table):
            writer.writerow((pid, *(table[pid][a] for a in ATTRIBUTE_NAMES)))
