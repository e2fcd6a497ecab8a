"""How the benchmark tools report: the results as indented JSON on stdout, and optionally in a new file.

Report folders (``tools/benchmark_mmet_speed.py``, ``tools/benchmark_loop_speed.py``): checked before
anything is measured (:func:`check_new_report_files`) and written with files that never overwrite an
existing one (:func:`write_new_report_files`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

__all__ = ["print_json_report", "check_new_report_files", "write_new_report_files"]


def print_json_report(results: dict, json_path: str | None) -> None:
    """Print ``results`` as indented JSON; with ``json_path``, also write it there.

    Args:
        results: JSON-serialisable measurements.
        json_path: a file that must not exist yet (the tools check before measuring), or None.

    Raises:
        FileExistsError: ``json_path`` appeared meanwhile (it is never overwritten).
    """
    text = json.dumps(results, indent=2)
    print(text)
    if json_path:
        with open(json_path, "x", encoding="utf-8") as handle:
            handle.write(text + "\n")


def check_new_report_files(out: str, names: Sequence[str]) -> None:
    """Refuse an output folder that already holds one of the report files ``names``.

    Args:
        out: the report folder (may not exist yet).
        names: file names the report will write in it.

    Raises:
        FileExistsError: ``out`` holds one of ``names`` (names the path).
        NotADirectoryError: ``out`` exists and is not a folder.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"--out {out!r} exists and is not a folder")
    for name in names:
        path = os.path.join(out, name)
        if os.path.exists(path):
            raise FileExistsError(f"{path!r} already exists; refusing to overwrite a report (give a new --out)")


def write_new_report_files(out: str, files: Mapping[str, object]) -> None:
    """Write ``{name: content}`` into the folder ``out`` (created if missing); never over an existing file.

    Args:
        out: the report folder.
        files: file name -> content; a ``str`` is written as is, anything else as indented JSON
            (must be JSON-serialisable) with a final newline.

    Raises:
        FileExistsError: a file appeared since :func:`check_new_report_files` (nothing is overwritten).
    """
    os.makedirs(out, exist_ok=True)
    texts = {name: content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
             for name, content in files.items()}  # serialise everything before the first file is written
    for name, text in texts.items():
        with open(os.path.join(out, name), "x", encoding="utf-8") as handle:
            handle.write(text)
