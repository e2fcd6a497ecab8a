"""Convert FineGPR / FineGPR-C annotations to this project's attribute and caption files.

The annotation formats of the FineGPR download (github JeremyXSC/FineGPR) and
of the FineGPR-C captions (Xiang et al., arXiv 2110.05074) are not published,
so this module accepts the plausible forms and writes the files documented in
:mod:`fastreid_dmf.data.finegpr_format` (attribute file ``pid,gender,...``;
caption file ``image,caption``). ``tools/convert_finegpr_annotations.py`` is
its command line.

Attribute inputs (:func:`load_attribute_annotations`):

* JSON ``{pid: {attribute: value}}`` (``pid`` as ``"0001"`` or ``"1"``), or a
  list of records ``[{"pid": 1, "gender": ..., ...}]``;
* CSV (``.csv``) or TSV (``.tsv``, or a tab in the header line) with a header
  row; other column names are renamed with a column map
  (``--column-map id=pid,sex=gender,...``: input name = our name, our names
  being ``pid`` and :data:`~fastreid_dmf.data.finegpr_format.ATTRIBUTE_NAMES`);
  columns to leave out are named with ``--drop-columns``. Any other unknown
  column, a missing attribute or a duplicate pid is an error.
* Values: the words of ``ATTRIBUTE_VALUES`` (any case); colours as FineGPR's
  codes ``01``..``09`` (``1``..``9``, JSON numbers too); yes/no attributes as
  ``1``/``0``, ``true``/``false`` (JSON booleans too). Numeric gender codes
  are refused unless their meaning is given (``--gender-codes 0=male,1=female``,
  the Market-1501 attribute convention, or the reverse); any attribute can
  be given a code table the same way (``--codes age:0=teenager,1=adult,2=older``).

Caption inputs (:func:`load_caption_annotations`), one caption per image
kept (the first; further captions of an image are counted, not written):

* JSON ``{image: caption}`` (a caption may be a list of captions), or a list
  of records with the image under ``"image"`` or ``"file_name"`` and the
  caption under ``"caption"`` or ``"text"`` (other keys are ignored; the
  column map renames keys);
* COCO-style JSON ``{"images": [{"id", "file_name"}], "annotations":
  [{"image_id", "caption"}]}``; images without a caption are counted;
* plain text, one ``image<TAB>caption`` or ``image caption`` (first run of
  spaces) per line; blank lines and lines starting with ``#`` are skipped, as
  is a first line naming the columns (``image caption``);
* CSV/TSV with a header naming the image and caption columns (as for JSON
  records; other columns are ignored).

An image is named by its FineGPR file name ``<pid4>_cXX_wXX_lXX_pXX.jpg``;
folders in front of it are dropped and a missing ``.jpg`` is added. White
space inside a caption (line breaks included) is collapsed to single spaces.

:func:`generate_captions` writes FineGPR-C-style captions without the
FineGPR-C download: the project's sentence template
(:func:`fastreid_dmf.data.descriptions.sentence_description`, with the
image's environment) applied to the attribute file and the image tree.

Every converter refuses to replace an existing output unless ``overwrite``
is given, never writes over its input, writes through a temporary file in the
output's folder, and checks the result by reading it back with
``read_attribute_file`` / ``read_caption_file`` before it takes the output's
name.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass

from ..data.datasets.finegpr import scan_finegpr_tree, select_identity_subset
from ..data.descriptions import describe_images
from ..data.finegpr_format import (
    ATTRIBUTE_NAMES,
    format_attribute_file,
    format_caption_file,
    normalise_attribute_value,
    parse_finegpr_filename,
    read_attribute_file,
    read_caption_file,
)
from ..fileio import atomic_write

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "CAPTION_IMAGE_KEYS",
    "CAPTION_TEXT_KEYS",
    "INPUT_FORMATS",
    "CaptionAnnotations",
    "ConversionSummary",
    "convert_attributes",
    "convert_captions",
    "generate_captions",
    "load_attribute_annotations",
    "load_caption_annotations",
    "parse_code_map",
    "parse_code_maps",
    "parse_column_map",
    "write_generated_captions",
]

#: Column names of the attribute file (our names, targets of a column map).
ATTRIBUTE_COLUMNS: tuple[str, ...] = ("pid", *ATTRIBUTE_NAMES)
#: Keys/columns that name the image in caption inputs, in order of preference.
CAPTION_IMAGE_KEYS: tuple[str, ...] = ("image", "file_name")
#: Keys/columns that hold the caption in caption inputs, in order of preference.
CAPTION_TEXT_KEYS: tuple[str, ...] = ("caption", "text")
#: Values of the ``input_format`` arguments ("auto" decides from the extension, then the content).
INPUT_FORMATS: tuple[str, ...] = ("auto", "json", "coco", "csv", "tsv", "text")


@dataclass
class ConversionSummary:
    """Counts of one conversion (printed by the command-line tool).

    Attributes:
        kind: ``"attributes"`` or ``"captions"``.
        input_form: the input form read, e.g. ``"json-records"``, ``"coco"``,
            ``"text-lines"``, ``"csv"``, ``"generated"``.
        output: the file written.
        entries: identities (attributes) or images with a caption read from
            the input.
        written: rows written (equal to ``entries``; checked by reading back).
        extra_captions: captions beyond the first of an image (not written).
        images_without_caption: COCO images that have no caption (not written).
        identities: identities covered by the output.
    """

    kind: str
    input_form: str
    output: str
    entries: int
    written: int
    extra_captions: int = 0
    images_without_caption: int = 0
    identities: int = 0

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)


@dataclass
class CaptionAnnotations:
    """Captions read by :func:`load_caption_annotations`.

    Attributes:
        captions: ``{image file name: caption}`` (first caption per image).
        input_form: ``"json-dict"``, ``"json-records"``, ``"coco"``,
            ``"text-lines"``, ``"csv"`` or ``"tsv"``.
        extra_captions: captions beyond the first of an image.
        images_without_caption: COCO images without any caption.
    """

    captions: dict[str, str]
    input_form: str
    extra_captions: int = 0
    images_without_caption: int = 0


# ----------------------------------------------------------------------------------------------- option parsing


def _pairs(text: str, what: str, example: str) -> Iterator[tuple[str, str]]:
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what}: {part!r} is not of the form NAME=VALUE; expected e.g. {example!r}")
        yield key.strip(), value.strip()


def parse_column_map(text: str, allowed: Iterable[str] = ATTRIBUTE_COLUMNS) -> dict[str, str]:
    """Parse ``"input_name=our_name,..."`` (the ``--column-map`` option).

    Args:
        text: the option value; empty gives ``{}``.
        allowed: valid target names (ours), e.g. :data:`ATTRIBUTE_COLUMNS`.

    Returns:
        ``{input name: our name}``.

    Raises:
        ValueError: an item without ``=``, an unknown target, or an input
            name given twice; the message names the item.
    """
    allowed = tuple(allowed)
    mapping: dict[str, str] = {}
    for source, target in _pairs(text, "column map", "id=pid,sex=gender"):
        if target not in allowed:
            raise ValueError(f"column map: target {target!r} of {source!r} is not one of {', '.join(allowed)}")
        if source in mapping:
            raise ValueError(f"column map: input column {source!r} is mapped twice")
        mapping[source] = target
    return mapping


def parse_code_map(text: str, attribute: str) -> dict[str, str]:
    """Parse ``"code=word,..."`` for one attribute (e.g. ``--gender-codes 0=male,1=female``).

    Args:
        text: the option value.
        attribute: the attribute the codes belong to (a name of ``ATTRIBUTE_NAMES``).

    Returns:
        ``{code (lower case): value word}``.

    Raises:
        ValueError: unknown attribute, malformed item, a word that is not a
            value of the attribute, or a code given twice.
    """
    if attribute not in ATTRIBUTE_NAMES:
        raise ValueError(f"code map: unknown attribute {attribute!r}; expected one of {', '.join(ATTRIBUTE_NAMES)}")
    table: dict[str, str] = {}
    for code, word in _pairs(text, f"code map of {attribute}", "0=male,1=female"):
        value = normalise_attribute_value(attribute, word, f"code map of {attribute}, code {code!r}")
        if code.lower() in table:
            raise ValueError(f"code map of {attribute}: code {code!r} is given twice")
        table[code.lower()] = value
    return table


def parse_code_maps(specs: Iterable[str]) -> dict[str, dict[str, str]]:
    """Parse ``--codes`` options ``"attribute:code=word,..."`` (one attribute per option).

    Returns:
        ``{attribute: {code: word}}``.

    Raises:
        ValueError: a spec without ``attribute:``, an attribute given twice,
            or an error of :func:`parse_code_map`.
    """
    maps: dict[str, dict[str, str]] = {}
    for spec in specs:
        attribute, sep, rest = spec.partition(":")
        if not sep:
            raise ValueError(f"codes {spec!r}: expected 'attribute:code=word,...', "
                             "e.g. 'age:0=teenager,1=adult,2=older'")
        attribute = attribute.strip()
        if attribute in maps:
            raise ValueError(f"codes: attribute {attribute!r} is given twice")
        maps[attribute] = parse_code_map(rest, attribute)
    return maps


# ---------------------------------------------------------------------------------------------- reading inputs


def _check_format(input_format: str, allowed: tuple[str, ...]) -> None:
    if input_format not in allowed:
        raise ValueError(f"input format {input_format!r}: expected one of {', '.join(allowed)}")


def _detect_format(path: str, input_format: str, fallback: str) -> str:
    """Input format from ``input_format``, else the extension, else the first character."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file {path!r} not found")
    if input_format != "auto":
        return input_format
    ext = os.path.splitext(path)[1].lower()
    if ext in (".json", ".csv", ".tsv"):
        return ext[1:]
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        head = handle.read(4096).lstrip()
    if head[:1] in ("{", "["):
        return "json"
    if fallback == "delimited":
        return "tsv" if "\t" in head.split("\n", 1)[0] else "csv"
    return fallback


def _load_json(path: str) -> object:
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None


def _read_delimited(path: str, delimiter: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows of a CSV/TSV file (blank rows skipped)."""
    rows: list[tuple[int, list[str]]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file; expected a header row")
            header = [h.strip() for h in header]
            line_no = reader.line_num
            for row in reader:
                start, line_no = line_no + 1, reader.line_num
                if not row or all(not f.strip() for f in row):
                    continue
                if len(row) != len(header):
                    raise ValueError(f"{path}, line {start}: {len(row)} field(s), expected {len(header)} "
                                     f"(header {header})")
                rows.append((start, row))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    except csv.Error as err:
        raise ValueError(f"{path}: malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({err})") from None
    return header, rows


def _scalar_text(value: object, where: str, column: str) -> str:
    """A JSON/CSV value as stripped text (booleans -> true/false, integral floats -> integers)."""
    if value is None:
        raise ValueError(f"{where}: no value for {column!r}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        raise ValueError(f"{where}: value {value!r} of {column!r} is not a whole number")
    if isinstance(value, str):
        return value.strip()
    raise ValueError(f"{where}: value {value!r} of {column!r} is not a string or number")


# ------------------------------------------------------------------------------------------------- attributes


def _parse_pid(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: pid {value!r} is not an integer")
    text = _scalar_text(value, where, "pid")
    try:
        pid = int(text)
    except ValueError:
        raise ValueError(f"{where}: pid {text!r} is not an integer (e.g. 1 or '0001')") from None
    if not 0 <= pid <= 9999:
        raise ValueError(f"{where}: pid {pid} is out of range 0..9999 (FineGPR file names have 4-digit pids)")
    return pid


def _attribute_record(raw: Mapping[object, object], where: str, column_map: Mapping[str, str],
                      code_maps: Mapping[str, Mapping[str, str]], drop: frozenset[str],
                      pid: int | None = None) -> tuple[int, dict[str, str]]:
    """One identity's record -> ``(pid, {attribute: word})``; ``pid`` is given for the JSON dict form."""
    fields: dict[str, object] = {}
    unknown = []
    for key, value in raw.items():
        name = str(key).strip()
        if name in drop:
            continue
        target = column_map.get(name, name)
        if target not in ATTRIBUTE_COLUMNS:
            unknown.append(name)
            continue
        if target in fields:
            raise ValueError(f"{where}: two columns give {target!r} (after the column map)")
        fields[target] = value
    if unknown:
        raise ValueError(
            f"{where}: unknown column(s) {unknown}; expected {', '.join(ATTRIBUTE_COLUMNS)}. Rename them with "
            "--column-map NAME=OURS (e.g. sex=gender) or leave them out with --drop-columns NAME,..."
        )
    if "pid" in fields:
        record_pid = _parse_pid(fields.pop("pid"), where)
        if pid is not None and record_pid != pid:
            raise ValueError(f"{where}: record pid {record_pid} differs from its key {pid}")
        pid = record_pid
    if pid is None:
        raise ValueError(f"{where}: no pid; expected a 'pid' field (or map one with --column-map NAME=pid)")
    where = f"{where} (pid {pid})"
    missing = [a for a in ATTRIBUTE_NAMES if a not in fields]
    if missing:
        raise ValueError(f"{where}: missing attribute(s) {missing}; expected all of {', '.join(ATTRIBUTE_NAMES)} "
                         "(rename input columns with --column-map NAME=OURS)")
    attrs = {}
    for name in ATTRIBUTE_NAMES:
        text = _scalar_text(fields[name], where, name)
        text = code_maps.get(name, {}).get(text.lower(), text)
        if name == "gender" and text.isdigit():
            raise ValueError(f"{where}: gender is given as the code {text!r}; say what the codes mean with "
                             "--gender-codes 0=male,1=female (Market-1501 attribute convention) or 1=male,0=female")
        attrs[name] = normalise_attribute_value(name, text, where)
    return pid, attrs


def load_attribute_annotations(
    path: str,
    column_map: Mapping[str, str] | None = None,
    code_maps: Mapping[str, Mapping[str, str]] | None = None,
    drop_columns: Iterable[str] = (),
    input_format: str = "auto",
) -> tuple[dict[int, dict[str, str]], str]:
    """Read identity attributes from any accepted form (module docstring, "Attribute inputs").

    Args:
        path: the annotation file.
        column_map: ``{input column: our column}`` (see :func:`parse_column_map`).
        code_maps: ``{attribute: {code: word}}`` (see :func:`parse_code_maps`).
        drop_columns: input columns to ignore.
        input_format: "auto" (extension, then content), "json", "csv" or "tsv".

    Returns:
        ``({pid: {attribute: value word}}, input form)``, the form being
        ``"json-dict"``, ``"json-records"``, ``"csv"`` or ``"tsv"``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed file, unknown or missing column, bad pid,
            duplicate pid, unknown value or unmapped numeric gender; the
            message names the file, the line or record, and what was expected.
    """
    _check_format(input_format, ("auto", "json", "csv", "tsv"))
    form = _detect_format(path, input_format, "delimited")
    column_map = dict(column_map or {})
    code_maps = {a: {str(c).lower(): w for c, w in m.items()} for a, m in (code_maps or {}).items()}
    drop = frozenset(drop_columns)
    table: dict[int, dict[str, str]] = {}

    def add(pid: int, attrs: dict[str, str], where: str) -> None:
        if pid in table:
            raise ValueError(f"{where}: pid {pid} appears twice")
        table[pid] = attrs

    if form == "json":
        data = _load_json(path)
        if isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
            form = "json-dict"
            for key, record in data.items():
                where = f"{path}, key {key!r}"
                pid, attrs = _attribute_record(record, where, column_map, code_maps, drop, _parse_pid(key, where))
                add(pid, attrs, where)
        elif isinstance(data, list) and data and all(isinstance(v, dict) for v in data):
            form = "json-records"
            for index, record in enumerate(data, start=1):
                where = f"{path}, record {index}"
                pid, attrs = _attribute_record(record, where, column_map, code_maps, drop)
                add(pid, attrs, where)
        else:
            raise ValueError(f"{path}: expected a non-empty JSON object {{pid: {{attribute: value}}}} or a list of "
                             f"records [{{\"pid\": ..., \"gender\": ..., ...}}], got {type(data).__name__}")
    else:
        header, rows = _read_delimited(path, "\t" if form == "tsv" else ",")
        if len(set(header)) != len(header):
            raise ValueError(f"{path}, line 1: repeated column names in header {header}")
        for line_no, row in rows:
            where = f"{path}, line {line_no}"
            pid, attrs = _attribute_record(dict(zip(header, row)), where, column_map, code_maps, drop)
            add(pid, attrs, where)
        if not table:
            raise ValueError(f"{path}: no data rows after the header")
    return table, form


# --------------------------------------------------------------------------------------------------- captions


def _image_name(value: object, where: str) -> str:
    """FineGPR file name of an image reference: folders dropped, ``.jpg`` added when there is no extension."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: image {value!r} is not a file name; expected e.g. '0001_c01_w01_l01_p01.jpg'")
    name = value.strip().replace("\\", "/").rsplit("/", 1)[-1]
    if not os.path.splitext(name)[1]:
        name += ".jpg"
    try:
        parse_finegpr_filename(name)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return name


def _caption_texts(value: object, where: str) -> list[str]:
    """One caption or a list of captions -> non-empty texts with white space collapsed."""
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError(f"{where}: empty list of captions")
    texts = []
    for item in values:
        if not isinstance(item, str):
            raise ValueError(f"{where}: caption {item!r} is not a string")
        text = " ".join(item.split())
        if not text:
            raise ValueError(f"{where}: empty caption")
        texts.append(text)
    return texts


class _CaptionCollector:
    """First caption per image, with counts of the rest."""

    def __init__(self) -> None:
        self.captions: dict[str, str] = {}
        self.extra = 0

    def add(self, image: object, caption: object, where: str) -> None:
        name = _image_name(image, where)
        texts = _caption_texts(caption, where)
        if name in self.captions:
            self.extra += len(texts)
            return
        self.captions[name] = texts[0]
        self.extra += len(texts) - 1


def _pick(record: Mapping[str, object], keys: tuple[str, ...], column_map: Mapping[str, str], what: str,
          where: str) -> object:
    renamed = {column_map.get(str(k).strip(), str(k).strip()): v for k, v in record.items()}
    for key in keys:
        if key in renamed:
            return renamed[key]
    raise ValueError(f"{where}: no {what} field; expected one of {', '.join(map(repr, keys))} "
                     f"(rename with --column-map NAME={keys[0]}), got {sorted(map(str, record))}")


def _coco_captions(data: Mapping[str, object], path: str) -> CaptionAnnotations:
    images, annotations = data.get("images"), data.get("annotations")
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise ValueError(f"{path}: COCO-style captions need lists 'images' and 'annotations'")
    names: dict[object, str] = {}
    for index, image in enumerate(images, start=1):
        where = f"{path}, images[{index}]"
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise ValueError(f"{where}: expected an object with 'id' and 'file_name', got {image!r}")
        if image["id"] in names:
            raise ValueError(f"{where}: image id {image['id']!r} appears twice")
        names[image["id"]] = _image_name(image["file_name"], where)
    if len(set(names.values())) != len(names):
        raise ValueError(f"{path}: several COCO image ids have the same file name")
    collector = _CaptionCollector()
    for index, ann in enumerate(annotations, start=1):
        where = f"{path}, annotations[{index}]"
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            raise ValueError(f"{where}: expected an object with 'image_id' and 'caption', got {ann!r}")
        if ann["image_id"] not in names:
            raise ValueError(f"{where}: image_id {ann['image_id']!r} is not an id of 'images'")
        collector.add(names[ann["image_id"]], ann["caption"], where)
    without = sum(1 for name in names.values() if name not in collector.captions)
    return CaptionAnnotations(collector.captions, "coco", collector.extra, without)


def _text_line_captions(path: str) -> CaptionAnnotations:
    collector = _CaptionCollector()
    first = True
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, start=1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                where = f"{path}, line {line_no}"
                image, _, caption = text.partition("\t") if "\t" in text else text.partition(" ")
                if first and image.strip().lower() in CAPTION_IMAGE_KEYS and caption.strip().lower() in (
                        *CAPTION_TEXT_KEYS, "captions"):
                    first = False
                    continue
                first = False
                if not caption.strip():
                    raise ValueError(f"{where}: no caption after the image name; expected "
                                     "'<image><TAB or space><caption>'")
                collector.add(image, caption, where)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from None
    return CaptionAnnotations(collector.captions, "text-lines", collector.extra)


def load_caption_annotations(
    path: str,
    column_map: Mapping[str, str] | None = None,
    input_format: str = "auto",
) -> CaptionAnnotations:
    """Read captions from any accepted form (module docstring, "Caption inputs").

    Args:
        path: the caption annotation file.
        column_map: ``{input key: "image" | "caption"}`` for JSON records and
            CSV/TSV columns.
        input_format: "auto" (``.json``/``.csv``/``.tsv`` by extension, other
            files starting with ``{``/``[`` are JSON, else plain text lines),
            "json" (including COCO), "coco", "csv", "tsv" or "text".

    Returns:
        :class:`CaptionAnnotations` (the first caption of each image, counts).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: malformed file, no image or caption field, a bad image
            name, an empty caption, an unknown COCO image id; the message
            names the file, the line / record and what was expected.
    """
    _check_format(input_format, INPUT_FORMATS)
    form = _detect_format(path, input_format, "text")
    column_map = dict(column_map or {})
    if form in ("json", "coco"):
        data = _load_json(path)
        if isinstance(data, dict) and ("images" in data or "annotations" in data or form == "coco"):
            result = _coco_captions(data, path)
        elif form == "coco":
            raise ValueError(f"{path}: expected a COCO-style object with 'images' and 'annotations'")
        elif isinstance(data, dict) and data:
            collector = _CaptionCollector()
            for key, value in data.items():
                collector.add(key, value, f"{path}, key {key!r}")
            result = CaptionAnnotations(collector.captions, "json-dict", collector.extra)
        elif isinstance(data, list) and data:
            collector = _CaptionCollector()
            for index, record in enumerate(data, start=1):
                where = f"{path}, record {index}"
                if not isinstance(record, dict):
                    raise ValueError(f"{where}: expected an object with an image and a caption, got {record!r}")
                image = _pick(record, CAPTION_IMAGE_KEYS, column_map, "image", where)
                caption = _pick(record, (*CAPTION_TEXT_KEYS, "captions"), column_map, "caption", where)
                collector.add(image, caption, where)
            result = CaptionAnnotations(collector.captions, "json-records", collector.extra)
        else:
            raise ValueError(f"{path}: expected a non-empty JSON object {{image: caption}}, a list of "
                             "{\"image\": ..., \"caption\": ...} records or a COCO-style object")
    elif form in ("csv", "tsv"):
        header, rows = _read_delimited(path, "\t" if form == "tsv" else ",")
        collector = _CaptionCollector()
        for line_no, row in rows:
            where = f"{path}, line {line_no}"
            record = dict(zip(header, row))
            collector.add(_pick(record, CAPTION_IMAGE_KEYS, column_map, "image", where),
                          _pick(record, CAPTION_TEXT_KEYS, column_map, "caption", where), where)
        result = CaptionAnnotations(collector.captions, form, collector.extra)
    else:
        result = _text_line_captions(path)
    if not result.captions:
        raise ValueError(f"{path}: no captions found")
    return result


# ---------------------------------------------------------------------------------------------------- writing


def _check_output(output: str, overwrite: bool, inputs: Iterable[str] = ()) -> None:
    """Refuse an existing output (unless ``overwrite``), an output that is an input, or a missing folder."""
    for source in inputs:
        if os.path.exists(output) and os.path.exists(source) and os.path.samefile(output, source):
            raise ValueError(f"output {output!r} is the input file; write the converted file elsewhere")
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a folder; expected a file path")
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"output {output!r} already exists; refusing to overwrite it (pass --overwrite)")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder!r} does not exist")


def _write_checked(content: dict, output: str, overwrite: bool, format_text, read, what: str) -> None:
    """Publish ``format_text(content)`` at ``output`` atomically, once the written file reads back as ``content``.

    Raises:
        FileExistsError: ``output`` exists and ``overwrite`` is False.
        RuntimeError: the file does not read back as written (``output`` is untouched).
    """
    text = format_text(content)
    if os.path.exists(output) and not overwrite:
        raise FileExistsError(f"output {output!r} already exists; refusing to overwrite it (pass --overwrite)")

    def reads_back(tmp: str) -> None:
        if read(tmp) != content:
            raise RuntimeError(f"{what} file {tmp!r} does not read back as written")

    atomic_write(output, lambda handle: handle.write(text.encode("utf-8")), verify=reads_back)


def _write_attributes_checked(table: dict[int, dict[str, str]], output: str, overwrite: bool) -> None:
    _write_checked(table, output, overwrite, format_attribute_file, read_attribute_file, "attribute")


def _write_captions_checked(captions: dict[str, str], output: str, overwrite: bool) -> None:
    _write_checked(captions, output, overwrite, format_caption_file, read_caption_file, "caption")


def convert_attributes(
    input_path: str,
    output_path: str,
    overwrite: bool = False,
    column_map: Mapping[str, str] | None = None,
    code_maps: Mapping[str, Mapping[str, str]] | None = None,
    drop_columns: Iterable[str] = (),
    input_format: str = "auto",
) -> ConversionSummary:
    """Convert an attribute annotation file to the project's attribute CSV (``read_attribute_file`` format).

    Args:
        input_path: annotation file (see :func:`load_attribute_annotations`).
        output_path: the attribute CSV to write.
        overwrite: replace an existing ``output_path``.
        column_map, code_maps, drop_columns, input_format: as in
            :func:`load_attribute_annotations`.

    Returns:
        The counts; the output was read back and equals what was converted.

    Raises:
        FileExistsError: ``output_path`` exists and ``overwrite`` is False
            (checked before the input is read).
        FileNotFoundError: the input or the output folder is missing.
        ValueError: the output is the input, or a problem of the input (see
            :func:`load_attribute_annotations`).
    """
    _check_output(output_path, overwrite, [input_path])
    table, form = load_attribute_annotations(input_path, column_map, code_maps, drop_columns, input_format)
    _write_attributes_checked(table, output_path, overwrite)
    return ConversionSummary("attributes", form, output_path, len(table), len(table), identities=len(table))


def convert_captions(
    input_path: str,
    output_path: str,
    overwrite: bool = False,
    column_map: Mapping[str, str] | None = None,
    input_format: str = "auto",
) -> ConversionSummary:
    """Convert a caption annotation file to the project's caption CSV (``read_caption_file`` format).

    Args:
        input_path: caption file (see :func:`load_caption_annotations`).
        output_path: the caption CSV to write.
        overwrite: replace an existing ``output_path``.
        column_map, input_format: as in :func:`load_caption_annotations`.

    Returns:
        The counts (extra captions per image and COCO images without caption
        are counted, not written); the output was read back and checked.

    Raises:
        FileExistsError: ``output_path`` exists and ``overwrite`` is False
            (checked before the input is read).
        FileNotFoundError: the input or the output folder is missing.
        ValueError: the output is the input, or a problem of the input.
    """
    _check_output(output_path, overwrite, [input_path])
    result = load_caption_annotations(input_path, column_map, input_format)
    _write_captions_checked(result.captions, output_path, overwrite)
    pids = {parse_finegpr_filename(name).pid for name in result.captions}
    return ConversionSummary("captions", result.input_form, output_path, len(result.captions), len(result.captions),
                             result.extra_captions, result.images_without_caption, len(pids))


def generate_captions(
    dataset_dir: str,
    attribute_file: str,
    with_environment: bool = True,
    images_per_identity: int = 0,
    subset_seed: int = 0,
) -> dict[str, str]:
    """FineGPR-C-style captions for the images of a FineGPR tree, from the attribute file.

    Each caption is :func:`fastreid_dmf.data.descriptions.sentence_description`
    of the identity's attributes and (with ``with_environment``) the image's
    codes, i.e. exactly the text of text mode "sentence".

    Args:
        dataset_dir: the ``FineGPR`` folder (scanned as by the dataset class).
        attribute_file: the attribute CSV (``read_attribute_file`` format).
        with_environment: put weather, illumination and viewpoint in the captions.
        images_per_identity: caption only the images the dataset would use
            with this ``IMAGES_PER_ID`` (and ``subset_seed``); 0 = every image.
        subset_seed: ``SUBSET_SEED`` of that draw.

    Returns:
        ``{image file name: caption}``.

    Raises:
        FileNotFoundError: missing folder or attribute file.
        ValueError: a bad tree (see ``scan_finegpr_tree``), a bad attribute
            file, or identities without an attribute row (count and pids).
    """
    attributes = read_attribute_file(attribute_file)
    tree = scan_finegpr_tree(dataset_dir)
    missing = [pid for pid in sorted(tree.names) if pid not in attributes]
    if missing:
        raise ValueError(f"{len(missing)} identities of {dataset_dir!r} have no row in the attribute file "
                         f"{attribute_file!r}, e.g. pids {missing[:10]}; expected a row per identity folder")
    captions: dict[str, str] = {}
    for pid in sorted(tree.names):
        names = select_identity_subset(pid, tree.names[pid], images_per_identity, subset_seed)
        for name, _, text in describe_images(attributes[pid], names, "sentence", with_environment):
            captions[name] = text
    return captions


def write_generated_captions(
    dataset_dir: str,
    output_path: str,
    attribute_file: str | None = None,
    with_environment: bool = True,
    images_per_identity: int = 0,
    subset_seed: int = 0,
    overwrite: bool = False,
) -> ConversionSummary:
    """Write :func:`generate_captions` as a caption CSV (for text mode "caption" without FineGPR-C).

    Args:
        dataset_dir: the ``FineGPR`` folder.
        output_path: the caption CSV to write.
        attribute_file: attribute CSV; default ``<dataset_dir>/attributes.csv``.
        with_environment, images_per_identity, subset_seed: as in
            :func:`generate_captions`.
        overwrite: replace an existing ``output_path``.

    Returns:
        The counts; the output was read back and checked.

    Raises:
        FileExistsError: ``output_path`` exists and ``overwrite`` is False
            (checked before anything is scanned).
        FileNotFoundError, ValueError: as :func:`generate_captions`, or the
            output is the attribute file.
    """
    attribute_file = attribute_file or os.path.join(dataset_dir, "attributes.csv")
    _check_output(output_path, overwrite, [attribute_file])
    captions = generate_captions(dataset_dir, attribute_file, with_environment, images_per_identity, subset_seed)
    _write_captions_checked(captions, output_path, overwrite)
    pids = {parse_finegpr_filename(name).pid for name in captions}
    return ConversionSummary("captions", "generated", output_path, len(captions), len(captions), identities=len(pids))
