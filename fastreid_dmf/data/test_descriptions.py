"""Descriptions of a Re-ID test set's images, for text-to-image retrieval on image Re-ID datasets.

An image Re-ID dataset has no text. When its test identities have known attributes (the bundled
``SynthMarket`` and ``SynthMSMT``, whose generator knows every person it drew; real sets with attribute
annotations), a ``descriptions.json`` in the dataset folder gives each query/gallery image its description:

    {"format": "fastreid-dmf test descriptions v1",
     "descriptions": {"<image path relative to the dataset folder>": "<description>", ...}}

The text-to-image protocol on such a set (:mod:`fastreid_dmf.evaluation.text_to_image`) asks one description
per query identity, the first of its query images in path order, against the image gallery.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

__all__ = ["DESCRIPTIONS_FILE", "DESCRIPTIONS_FORMAT", "encode_test_descriptions", "write_test_descriptions",
           "read_test_descriptions", "text_queries_from_descriptions"]

#: File name inside the dataset folder.
DESCRIPTIONS_FILE = "descriptions.json"
#: Value of the file's ``"format"`` field.
DESCRIPTIONS_FORMAT = "fastreid-dmf test descriptions v1"


def encode_test_descriptions(descriptions: Mapping[str, str]) -> bytes:
    """The bytes of a descriptions file for ``{relative image path: description}`` (sorted keys, UTF-8 JSON).

    Raises:
        ValueError: an empty description (names the image).
    """
    empty = [name for name, text in descriptions.items() if not str(text).strip()]
    if empty:
        raise ValueError(f"empty description for {empty[0]!r}; every image listed needs a description")
    content = {"format": DESCRIPTIONS_FORMAT, "descriptions": dict(sorted(descriptions.items()))}
    return json.dumps(content, indent=0, ensure_ascii=False).encode("utf-8")


def write_test_descriptions(path: str, descriptions: Mapping[str, str]) -> None:
    """Write :func:`encode_test_descriptions` of ``descriptions`` to ``path``.

    Raises:
        ValueError: an empty description (names the image).
    """
    with open(path, "wb") as handle:
        handle.write(encode_test_descriptions(descriptions))


def read_test_descriptions(path: str, remedy: str = "") -> dict[str, str]:
    """Read a descriptions file.

    Args:
        path: the ``descriptions.json``.
        remedy: appended to the missing-file message (how to make the file).

    Returns:
        ``{relative image path (with "/"): description}``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not JSON, another format, or a non-string / empty description (message names the file).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"descriptions file {path!r} not found: text-to-image retrieval on this dataset "
                                f"needs a description of its test images. {remedy}".strip())
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"descriptions file {path!r} is not valid JSON: {err}") from err
    if not isinstance(content, dict) or content.get("format") != DESCRIPTIONS_FORMAT or \
            not isinstance(content.get("descriptions"), dict):
        raise ValueError(f"descriptions file {path!r}: expected a JSON object with \"format\": "
                         f"{DESCRIPTIONS_FORMAT!r} and a \"descriptions\" object {{image path: text}}")
    bad = [k for k, v in content["descriptions"].items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"descriptions file {path!r}: {bad[0]!r} has no text; expected a non-empty string")
    return {key.replace("\\", "/"): value for key, value in content["descriptions"].items()}


def text_queries_from_descriptions(query_items: Sequence[tuple], dataset_folder: str,
                                   descriptions: Mapping[str, str], source: str = DESCRIPTIONS_FILE
                                   ) -> list[tuple[str, int]]:
    """One text query per query identity: the description of its first query image (path order).

    Args:
        query_items: fast-reid query tuples ``(img_path, pid, camid, ...)``.
        dataset_folder: the folder the description keys are relative to.
        descriptions: from :func:`read_test_descriptions`.
        source: the file's path, for messages.

    Returns:
        ``[(description, pid), ...]`` sorted by pid.

    Raises:
        ValueError: a query image without a description (names it and ``source``).
    """
    first: dict[int, tuple[str, str]] = {}
    for item in query_items:
        path, pid = item[0], int(item[1])
        rel = os.path.relpath(path, dataset_folder).replace(os.sep, "/")
        if rel not in descriptions:
            raise ValueError(f"query image {path!r} has no description in {source!r} (key {rel!r}); expected one "
                             "per query image")
        if pid not in first or rel < first[pid][0]:
            first[pid] = (rel, descriptions[rel])
    return [(first[pid][1], pid) for pid in sorted(first)]
