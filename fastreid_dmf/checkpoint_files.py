"""Reading checkpoint files: the project's one checkpoint reader and one key-prefix stripper.

Every ``torch.load`` of a checkpoint in fastreid-dmf goes through :func:`read_checkpoint`
(``MODEL.WEIGHTS``, resume, fast-reid's ``Checkpointer`` as patched by ``engine/checkpoint.py``,
pre-trained ViTs, export). The text-feature shards are read with ``mmap`` by their store.
"""

from __future__ import annotations

import os
import pickle

import torch

__all__ = ["CheckpointReadError", "read_checkpoint", "strip_key_prefix"]


class CheckpointReadError(ValueError):
    """A checkpoint file exists but cannot be used; the message names the file and what is wrong with it."""


def read_checkpoint(path: str) -> dict:
    """Read a PyTorch checkpoint with ``torch.load(path, map_location="cpu", weights_only=True)``.

    Args:
        path: a file written by ``torch.save`` (fast-reid checkpoints, ``export``'s state dicts).

    Returns:
        The loaded object if it is a dict (tensors on the CPU); fast-reid checkpoints hold ``"model"``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        CheckpointReadError: the file is empty, truncated (an interrupted write), not a ``torch.save``
            file (a text file, a JPEG), not a dict, or holds pickled Python objects other than tensors and
            plain containers (refused: unpickling them could run arbitrary code).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path!r} is not a file")
    if os.path.getsize(path) == 0:
        raise CheckpointReadError(f"checkpoint {path!r} is empty (0 bytes): a write was interrupted")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    # torch.save writes a zip archive (torch >= 1.6) or, legacy, a pickle starting with the PROTO opcode.
    if magic[:4] != b"PK\x03\x04" and magic[:1] != b"\x80":
        raise CheckpointReadError(f"{path!r} is not a PyTorch checkpoint written by torch.save (it starts with "
                                  f"{magic!r}; expected a zip archive)")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        culprit = next((line for line in lines if "Unsupported" in line), None)
        if culprit is not None:
            raise CheckpointReadError(
                f"checkpoint {path!r} holds pickled Python objects other than tensors and plain containers; "
                f"refusing to unpickle them (they could run code). Only load files you trust, and re-save "
                f"their tensors with torch.save(state_dict). Detail: {culprit}") from None
        raise CheckpointReadError(f"{path!r} is truncated or not a PyTorch checkpoint written by torch.save "
                                  f"({lines[-1] if lines else type(err).__name__})") from None
    except Exception as err:  # noqa: BLE001  (zip reader, unpickler on garbage: IndexError, KeyError, EOFError...)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointReadError(f"{path!r} is truncated or not a PyTorch checkpoint written by torch.save "
                                  f"({detail})") from None
    if not isinstance(loaded, dict):
        raise CheckpointReadError(f"checkpoint {path!r} holds a {type(loaded).__name__}, expected a dict "
                                  "(a state dict or fast-reid's {'model': state_dict, ...})")
    return loaded


def strip_key_prefix(key: str, prefix: str) -> str:
    """``key`` without a leading ``prefix`` (e.g. ``module.`` of a model saved inside DDP), else ``key``."""
    return key[len(prefix):] if key.startswith(prefix) else key
