"""How the benchmark tools report: the results as indented JSON on stdout, and optionally in a new file."""

from __future__ import annotations

import json

__all__ = ["print_json_report"]


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
