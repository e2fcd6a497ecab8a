"""FineGPR on-disk format: file names, environment codes, the attribute file and the caption file.

FineGPR (Xiang et al., "Taking a Closer Look at Synthesis: Fine-grained
Attribute Analysis for Person Re-Identification", github JeremyXSC/FineGPR)
stores images as ``FineGPR/<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg``:

* ``cXX`` viewpoint, c01..c36 = 90, 100, ..., 350, 0, ..., 80 degrees (c28 = 0);
* ``wXX`` weather, w01..w07 (:data:`WEATHERS`);
* ``lXX`` illumination, l01..l07 (:data:`ILLUMINATIONS`);
* ``pXX`` scene, p01..p09, Urban except p03, p05, p08 which are Wild.

The per-identity attribute annotation format of the download is not
published, so this project defines one (documented in README, "FineGPR
attribute file"): a UTF-8 CSV file (a byte-order mark, as spreadsheet
programs write it, is accepted) with a header row and one row per identity::

    pid,gender,age,hair_length,glasses,short_sleeve,dress,boots,hat,bag,top_length,shoes,upper_color,lower_color
    1,male,adult,short,no,yes,no,no,yes,no,short,dark,blue,black

``pid`` is the integer identity (the folder name without leading zeros is
fine); every other column holds one of the words in :data:`ATTRIBUTE_VALUES`.
Colours may also be given as FineGPR's two-digit codes ``01``..``09`` (or
``1``..``9``), and yes/no attributes as ``1``/``0`` or ``true``/``false``
(any case). ``tools/convert_finegpr_annotations.py`` converts other layouts
(JSON, other column names, numeric gender codes) to this file.

FineGPR caption file
--------------------

FineGPR-C (Xiang et al., "VTBR: Semantic-based Pretraining for Person
Re-Identification", arXiv 2110.05074; download linked from the FineGPR
README) gives every image one template sentence, e.g. "There is a young male
with short hair, who wears blue upper-body clothes, blue lower-body clothes,
and light shoes in a overcast afternoon, and with front viewpoint, this
person also wears boots and takes a hat." Its file format is not published
either, so this project defines the caption file read in text mode
``"caption"`` (``DATASETS.FINEGPR.CAPTION_FILE``, default
``<root>/FineGPR/captions.csv``): a UTF-8 CSV file (a byte-order mark is
accepted) with the header row ``image,caption`` and one row per image::

    image,caption
    0001_c01_w01_l01_p01.jpg,"There is a young male with short hair, who wears ..."
    0001/0001_c01_w01_l02_p01.jpg,There is a young male ...

* ``image`` is the image's file name (``<pid4>_cXX_wXX_lXX_pXX.jpg``) or its
  path relative to ``FineGPR/`` (``<pid4>/<file name>``, ``/`` or ``\\``);
  an image appears at most once (a file name and its path count as the same
  image);
* ``caption`` is the non-empty text of one line (no line breaks; quote it
  as usual in CSV when it contains commas or quotes); surrounding white
  space is removed;
* blank lines are skipped; any other column or a row with a different number
  of fields is an error.

:func:`read_caption_file` / :func:`write_caption_file` read and write it;
``tools/convert_finegpr_annotations.py`` converts JSON, COCO-style and plain
text caption files to it, or generates FineGPR-C-style captions from the
attribute file (``--generate-captions``).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..fileio import atomic_write

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
    "is_valid_finegpr_filename",
    "format_finegpr_filename",
    "viewpoint_degrees",
    "viewpoint_name",
    "scene_name",
    "CAPTION_HEADER",
    "normalise_attribute_value",
    "read_attribute_file",
    "format_attribute_file",
    "write_attribute_file",
    "caption_image_key",
    "read_caption_file",
    "format_caption_file",
    "write_caption_file",
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
# Fast path: matches exactly the valid names (every code in range); anything else takes the slow path for a
# precise error message. Valid names have fixed offsets: pid [0:4], c [6:8], w [10:12], l [14:16], p [18:20].
_VALID_FILENAME_RE = re.compile(r"\d{4}_c(?:0[1-9]|[12]\d|3[0-6])_w0[1-7]_l0[1-7]_p0[1-9]\.jpg")

#: Header row of the caption file (see the module docstring).
CAPTION_HEADER: tuple[str, str] = ("image", "caption")


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
    if _VALID_FILENAME_RE.fullmatch(base) is not None:
        return FineGPRCodes(int(base[0:4]), int(base[6:8]), int(base[10:12]), int(base[14:16]), int(base[18:20]))
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


def is_valid_finegpr_filename(base_name: str) -> bool:
    """Whether ``base_name`` (no folder) is a valid ``<pid4>_cXX_wXX_lXX_pXX.jpg`` with every code in range.

    Fast check for scanning large trees; :func:`parse_finegpr_filename`
    explains what is wrong with a name for which this returns False.
    """
    return _VALID_FILENAME_RE.fullmatch(base_name) is not None


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


def normalise_attribute_value(attribute: str, raw: str, where: str) -> str:
    """Value word of one attribute, accepting the raw forms of the attribute file.

    Args:
        attribute: a name of :data:`ATTRIBUTE_NAMES`.
        raw: the raw value: a word of :data:`ATTRIBUTE_VALUES` (any case,
            surrounding spaces ignored), a colour code ``01``..``09`` for
            ``upper_color``/``lower_color``, or ``1``/``0``/``true``/``false``
            for the yes/no attributes.
        where: location used in the error message (file and line, ...).

    Returns:
        The value word, e.g. ``"blue"`` for ``"07"``.

    Raises:
        ValueError: unknown attribute or value; the message starts with
            ``where`` and lists the allowed values.
    """
    if attribute not in ATTRIBUTE_VALUES:
        raise ValueError(f"{where}: unknown attribute {attribute!r}; expected one of {', '.join(ATTRIBUTE_NAMES)}")
    return _normalise_value(attribute, raw, where)


def read_attribute_file(path: str) -> dict[int, dict[str, str]]:
    """Read a FineGPR attribute CSV (format in the module docstring).

    Returns:
        ``{pid: {attribute: value word}}`` with every name of
        :data:`ATTRIBUTE_NAMES` present for every identity.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not UTF-8, missing/unknown column, bad pid, duplicate pid
            or unknown value; the message names the file, line and column.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FineGPR attribute file {path!r} not found; expected a CSV with header "
            f"'pid,{','.join(ATTRIBUTE_NAMES)}' (see README, 'FineGPR attribute file')"
        )
    try:
        return _read_attribute_rows(path)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected a UTF-8 CSV file") from None


def _read_attribute_rows(path: str) -> dict[int, dict[str, str]]:
    """Body of :func:`read_attribute_file` (an existing file; undecodable bytes raise ``UnicodeDecodeError``)."""
    table: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: a leading BOM is dropped
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


def format_attribute_file(table: dict[int, dict[str, str]]) -> str:
    """The text of an attribute CSV for ``{pid: {attribute: value}}`` (read back by :func:`read_attribute_file`).

    Raises:
        ValueError: an identity lacks an attribute or has an unknown value.
    """
    for pid, attrs in table.items():
        for name in ATTRIBUTE_NAMES:
            if name not in attrs:
                raise ValueError(f"identity {pid} has no value for attribute '{name}'")
            _normalise_value(name, attrs[name], f"identity {pid}")
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(("pid", *ATTRIBUTE_NAMES))
    for pid in sorted(table):
        writer.writerow((pid, *(table[pid][a] for a in ATTRIBUTE_NAMES)))
    return text.getvalue()


def write_attribute_file(path: str, table: dict[int, dict[str, str]]) -> None:
    """Write ``{pid: {attribute: value}}`` in the format read by :func:`read_attribute_file`, atomically.

    Raises:
        ValueError: an identity lacks an attribute or has an unknown value (nothing is written).
    """
    text = format_attribute_file(table)
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def caption_image_key(image: str, where: str) -> str:
    """File name under which a caption file entry is stored.

    Args:
        image: the ``image`` field: ``<pid4>_cXX_wXX_lXX_pXX.jpg`` or
            ``<pid4>/<that name>`` (``/`` or ``\\`` as separator), relative to
            ``FineGPR/``.
        where: location used in error messages (file and line).

    Returns:
        The base file name, e.g. ``"0001_c01_w01_l01_p01.jpg"``.

    Raises:
        ValueError: empty, absolute or deeper path, a folder that is not the
            image's ``<pid4>``, or a bad file name; the message starts with
            ``where`` and names the value and the expected form.
    """
    text = image.strip().replace("\\", "/")
    expected = "expected '<pid4>_cXX_wXX_lXX_pXX.jpg' or '<pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg' relative to FineGPR/"
    if not text:
        raise ValueError(f"{where}: empty image name; {expected}")
    parts = text.split("/")
    if text.startswith("/") or len(parts) > 2 or (len(parts) == 2 and not re.fullmatch(r"\d{4}", parts[0])):
        raise ValueError(f"{where}: image {image!r} is not a FineGPR file name or <pid4>/<file name> path; {expected}")
    name = parts[-1]
    try:
        codes = parse_finegpr_filename(name)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    if len(parts) == 2 and int(parts[0]) != codes.pid:
        raise ValueError(f"{where}: image {image!r} lies in folder {parts[0]} but its file name has pid "
                         f"{codes.pid:04d}; expected <pid4>/<pid4>_cXX_wXX_lXX_pXX.jpg with the same pid")
    return name


def _check_caption_text(caption: str, where: str) -> str:
    text = caption.strip()
    if not text:
        raise ValueError(f"{where}: empty caption; expected the image's description text")
    if "\n" in text or "\r" in text:
        raise ValueError(f"{where}: caption contains a line break; expected one line of text per caption")
    return text


def _first_line(path: str, key: str) -> int:
    """Line of the first row of ``path`` naming image ``key`` (error messages only)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        line_no = 0
        for row in reader:
            start, line_no = line_no + 1, reader.line_num
            if start > 1 and row:
                try:
                    if caption_image_key(row[0], "") == key:
                        return start
                except ValueError:
                    continue
    return 0


def read_caption_file(path: str) -> dict[str, str]:
    """Read a FineGPR caption CSV (format in the module docstring, "FineGPR caption file").

    Args:
        path: the caption file.

    Returns:
        ``{image file name: caption}`` in file order; keys are base names
        (``"0001_c01_w01_l01_p01.jpg"``) also where the file gives
        ``<pid4>/<name>`` paths; captions are stripped of surrounding space.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not UTF-8, empty file, header other than ``image,caption``,
            a row without exactly 2 fields, a bad image name, an empty or
            multi-line caption, an image listed twice; the message names the
            file and line number (and the first line for a duplicate).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FineGPR caption file {path!r} not found; expected a CSV with header '{','.join(CAPTION_HEADER)}' "
            "(see fastreid_dmf/data/finegpr_format.py, 'FineGPR caption file'; "
            "tools/convert_finegpr_annotations.py converts or generates one)"
        )
    captions: dict[str, str] = {}
    pool: dict[str, str] = {}  # one string object per distinct caption (template captions repeat a lot)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file; expected the header row '{','.join(CAPTION_HEADER)}'")
            if tuple(h.strip().lower() for h in header) != CAPTION_HEADER:
                raise ValueError(f"{path}, line 1: header {','.join(header)!r} is not the expected "
                                 f"'{','.join(CAPTION_HEADER)}' (missing header row, or other columns)")
            line_no = reader.line_num
            for row in reader:
                start, line_no = line_no + 1, reader.line_num
                if not row:
                    continue
                if len(row) != 2:
                    raise ValueError(f"{path}, line {start}: {len(row)} field(s), expected 2 (image,caption); "
                                     "quote captions that contain commas")
                key = row[0].strip()
                if _VALID_FILENAME_RE.fullmatch(key) is None:  # fast path: a plain valid file name
                    key = caption_image_key(row[0], f"{path}, line {start}")
                caption = row[1].strip()
                if not caption or "\n" in caption or "\r" in caption:
                    _check_caption_text(row[1], f"{path}, line {start}")  # raises
                if key in captions:
                    raise ValueError(f"{path}, line {start}: image {key!r} appears twice (first on line "
                                     f"{_first_line(path, key)}); expected one caption per image")
                captions[key] = pool.setdefault(caption, caption)
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err}); expected a UTF-8 CSV file") from None
        except csv.Error as err:
            raise ValueError(f"{path}, line {reader.line_num}: malformed CSV ({err})") from None
    return captions


def format_caption_file(captions: Mapping[str, str]) -> str:
    """The text of a caption CSV for ``{image: caption}`` (read back by :func:`read_caption_file`).

    Rows are sorted by file name; ``image`` is written as the base file name.

    Raises:
        ValueError: a bad image name, an empty or multi-line caption, or two
            keys naming the same image; the message names the entry.
    """
    rows: dict[str, str] = {}
    for image, caption in captions.items():
        key = image if isinstance(image, str) and _VALID_FILENAME_RE.fullmatch(image) else None
        if key is None:
            key = caption_image_key(str(image), f"caption entry {image!r}")
        if key in rows:
            raise ValueError(f"caption entry {image!r}: image {key!r} is given twice; expected one caption per image")
        if not isinstance(caption, str):
            raise ValueError(f"caption entry {image!r}: caption {caption!r} is not a string")
        text = caption.strip()
        if not text or "\n" in text or "\r" in text:
            _check_caption_text(caption, f"caption entry {image!r}")  # raises
        rows[key] = text
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CAPTION_HEADER)
    for key in sorted(rows):
        writer.writerow((key, rows[key]))
    return out.getvalue()


def write_caption_file(path: str, captions: Mapping[str, str], overwrite: bool = False) -> None:
    """Write ``{image: caption}`` in the format read by :func:`read_caption_file`, atomically.

    Everything is checked before the file is touched (:func:`format_caption_file`), and
    :func:`~fastreid_dmf.fileio.atomic_write` publishes it, so a failure leaves no partial file.

    Args:
        path: output file.
        captions: image file names (or ``<pid4>/<name>`` paths) -> caption.
        overwrite: replace an existing ``path``; False refuses.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: see :func:`format_caption_file`.
    """
    text = format_caption_file(captions)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"caption file {path!r} already exists; refusing to overwrite it (pass overwrite=True)")
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))
