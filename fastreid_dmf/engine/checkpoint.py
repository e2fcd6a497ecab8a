"""Checkpoint files that survive a kill and never run pickled code: reading, writing, resuming, strict loading.

fast-reid's ``Checkpointer`` (``fastreid/utils/checkpoint.py``, a copy of fvcore's) writes ``model_X.pth``
in place and then truncates and rewrites the ``last_checkpoint`` tag, so a process killed while saving
leaves a truncated checkpoint or an empty tag (after which ``--resume`` fails with ``Checkpoint <dir>/ not
found!``). It reads with a bare ``torch.load``, safe only while torch's default stays ``weights_only=True``,
and loads ``MODEL.WEIGHTS`` of another width by skipping every mismatched tensor with a warning.

This module gives:

* :func:`~fastreid_dmf.checkpoint_files.read_checkpoint` (the project's one checkpoint reader, re-exported
  here): ``torch.load(..., weights_only=True)`` with one clear error for a missing, empty, truncated,
  non-PyTorch or pickle-carrying file;
* :func:`atomic_torch_save` / :func:`atomic_write_text`: write to a temporary file in the same folder,
  flush, ``fsync``, ``os.replace`` (atomic on POSIX), ``fsync`` the folder;
* :func:`install_checkpoint_safety`: fast-reid's ``Checkpointer._load_file``, ``save`` and
  ``tag_last_checkpoint`` use the two above (applied by ``import fastreid_dmf``, idempotent);
* :func:`weights_only_torch_load`: within the block, ``torch.load`` always reads ``weights_only=True``
  (fast-reid's backbones read ``MODEL.BACKBONE.PRETRAIN_PATH`` with a bare ``torch.load``);
* :func:`load_resumable_checkpoint`: the tagged checkpoint, or with a warning the newest one that loads,
  read once;
* :func:`load_weights_strict`: ``MODEL.WEIGHTS`` into a model with an error listing missing and
  wrong-shape tensors, and a correct loaded / skipped / missing summary.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..checkpoint_files import CheckpointReadError, read_checkpoint, strip_key_prefix
from ..compat import attribute_replaced
from ..fileio import atomic_write, remove_stale_temporaries

__all__ = ["CheckpointReadError", "LoadSummary", "atomic_torch_save", "atomic_write_text",
           "install_checkpoint_safety", "load_resumable_checkpoint", "load_weights_strict", "read_checkpoint",
           "resumable_checkpoint", "weights_only_torch_load"]

logger = logging.getLogger(__name__)

_MARK = "_fastreid_dmf_checkpoint_safety"
_TAG = "last_checkpoint"


def atomic_torch_save(obj: Any, path: str) -> None:
    """``torch.save(obj, path)`` so that ``path`` is either its old content or the complete new one.

    :func:`fastreid_dmf.fileio.atomic_write`: a hidden temporary file in the same folder, fsynced and
    renamed over ``path``, then the folder fsynced. A kill leaves at most a stray ``.tmp`` file.
    """
    atomic_write(path, lambda stream: torch.save(obj, stream))


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_torch_save`)."""
    atomic_write(path, lambda stream: stream.write(text.encode("utf-8")))


def install_checkpoint_safety() -> None:
    """Make fast-reid's ``Checkpointer`` read with ``weights_only=True`` and write atomically.

    Replaces, on ``fastreid.utils.checkpoint.Checkpointer``: ``_load_file`` (:func:`read_checkpoint`, a
    plain state dict is wrapped as ``{"model": state}`` as upstream expects), ``save`` (same content and
    log line as upstream, written with :func:`atomic_torch_save`, then the temporaries of writes that a
    kill interrupted are removed: :func:`~fastreid_dmf.fileio.remove_stale_temporaries`) and
    ``tag_last_checkpoint`` (:func:`atomic_write_text`). Idempotent; the originals stay in ``__wrapped__``.
    """
    from fastreid.utils.checkpoint import Checkpointer

    if getattr(Checkpointer.__dict__["save"], _MARK, False):
        return

    def _load_file(self: Any, path: str) -> dict:
        loaded = read_checkpoint(path)
        return loaded if "model" in loaded else {"model": loaded}

    def save(self: Any, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", save_file)
        atomic_torch_save(data, save_file)
        self.tag_last_checkpoint(basename)
        stale = remove_stale_temporaries(self.save_dir)
        if stale:
            self.logger.info("Removed %d temporary file(s) of interrupted checkpoint writes: %s", len(stale),
                             ", ".join(os.path.basename(p) for p in stale))

    def tag_last_checkpoint(self: Any, last_filename_basename: str) -> None:
        atomic_write_text(os.path.join(self.save_dir, _TAG), last_filename_basename)

    for name, new in (("_load_file", _load_file), ("save", save), ("tag_last_checkpoint", tag_last_checkpoint)):
        new.__wrapped__ = Checkpointer.__dict__[name]
        new.__doc__ = f"fast-reid's ``Checkpointer.{name}``, made safe by fastreid_dmf.engine.checkpoint."
        setattr(new, _MARK, True)
        setattr(Checkpointer, name, new)


@contextlib.contextmanager
def weights_only_torch_load() -> Iterator[None]:
    """Within the block, every ``torch.load`` call reads with ``weights_only=True``, whatever it passes.

    For code that is not ours and calls a bare ``torch.load``: fast-reid's backbone builders
    (``fastreid/modeling/backbones/*.py``) read ``MODEL.BACKBONE.PRETRAIN_PATH`` that way, so they would
    unpickle arbitrary objects when torch's default is switched off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``).
    ``DMFTrainer.build_model`` builds every model inside this block. Restores ``torch.load`` on exit; not
    for use while other threads load files.

    Raises:
        pickle.UnpicklingError: (from torch, inside the block) a file holding pickled objects other than
            tensors and plain containers.
    """
    original = torch.load

    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return original(*args, **kwargs)

    with attribute_replaced(torch, "load", load):
        yield


def _read_resumable(path: str) -> tuple[dict | None, str | None]:
    """``(checkpoint, None)`` if ``path`` reads as a checkpoint with a ``"model"`` entry, else ``(None, why)``."""
    try:
        checkpoint = read_checkpoint(path)
    except (OSError, CheckpointReadError) as err:
        return None, str(err)
    return (checkpoint, None) if "model" in checkpoint else (None, "no 'model' entry")


def load_resumable_checkpoint(save_dir: str) -> tuple[str, dict] | None:
    """The checkpoint ``--resume`` should continue from in ``save_dir``, with its content (read once).

    The file named by ``last_checkpoint`` when it loads; otherwise (empty or missing tag, tagged file
    missing, truncated or unreadable) the newest ``*.pth`` by modification time that loads, with a warning
    naming what was wrong and what is used instead.

    Returns:
        ``(path, checkpoint)`` (:func:`read_checkpoint`'s dict), or None when the folder holds no loadable
        checkpoint (a warning lists the files tried when there were any).
    """
    tag_path = os.path.join(save_dir, _TAG)
    tagged = None
    if os.path.isfile(tag_path):
        with open(tag_path) as handle:
            name = handle.read().strip()
        tagged = os.path.join(save_dir, name) if name else None
        checkpoint, problem = (None, "the tag is empty") if tagged is None else _read_resumable(tagged)
        if checkpoint is not None:
            return tagged, checkpoint
        logger.warning("%s names no loadable checkpoint (%s); looking for the newest checkpoint that loads",
                       tag_path, problem)
    candidates = sorted(glob.glob(os.path.join(save_dir, "*.pth")), key=os.path.getmtime, reverse=True)
    for path in candidates:
        if path == tagged:
            continue
        checkpoint, problem = _read_resumable(path)
        if checkpoint is not None:
            if os.path.isfile(tag_path):
                logger.warning("Resuming from %s instead", path)
            return path, checkpoint
        logger.warning("Not resuming from %s: %s", path, problem)
    return None


def resumable_checkpoint(save_dir: str) -> str | None:
    """Path of :func:`load_resumable_checkpoint`'s choice, or None."""
    found = load_resumable_checkpoint(save_dir)
    return found[0] if found else None


@dataclass
class LoadSummary:
    """What :func:`load_weights_strict` did; every field lists state-dict keys."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # by prefix (MODEL.DMF.SKIP_LOAD_KEYS)
    wrong_shape: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model

    def line(self, path: str) -> str:
        """One log line: ``Loaded 64 of 66 tensors from <path>; 2 skipped (...), 0 wrong shape, ...``."""
        total = len(self.loaded) + len(self.skipped) + len(self.wrong_shape) + len(self.missing)
        return (f"Loaded {len(self.loaded)} of the model's {total} tensors from {path}; "
                f"{len(self.skipped)} skipped by MODEL.DMF.SKIP_LOAD_KEYS, {len(self.wrong_shape)} of the wrong "
                f"shape and {len(self.missing)} missing (both keep their initialisation), "
                f"{len(self.unexpected)} in the file but not in the model (ignored)")


def _key_list(keys: list[str], limit: int = 8) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_weights_strict(model: nn.Module, path: str, skip_prefixes: tuple[str, ...] | list[str] = (),
                        allow_partial: bool = False, checkpoint: dict | None = None) -> LoadSummary:
    """Load a checkpoint's ``"model"`` state into ``model``, refusing silent partial loads.

    Keys starting with one of ``skip_prefixes`` (``MODEL.DMF.SKIP_LOAD_KEYS``, e.g. the source-identity
    classifier when fine-tuning) are not loaded. A ``module.`` prefix (a model saved inside DDP) is
    stripped, and a model wrapped in DDP (``--num-gpus`` > 1) is filled through its ``module``. Checkpoint
    keys the model does not have are ignored and counted.

    Args:
        model: the model to fill (modified in place), bare or inside ``DistributedDataParallel``.
        path: a fast-reid checkpoint (``{"model": state_dict, ...}``) or a bare state dict.
        skip_prefixes: key prefixes never loaded.
        allow_partial: ``MODEL.DMF.ALLOW_PARTIAL_LOAD``: load what matches and keep the initialisation of
            missing and wrong-shape tensors (logged) instead of raising.
        checkpoint: the already read content of ``path`` (:func:`read_checkpoint`), to read it once.

    Returns:
        A :class:`LoadSummary`.

    Raises:
        FileNotFoundError, CheckpointReadError: from :func:`read_checkpoint`.
        ValueError: a tensor outside ``skip_prefixes`` is missing from the file or has another shape
            (e.g. weights of a 96-wide model for a 192-wide one), and ``allow_partial`` is False; the
            message lists them with both shapes and names MODEL.DMF.ALLOW_PARTIAL_LOAD.
    """
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    checkpoint = read_checkpoint(path) if checkpoint is None else checkpoint
    state = checkpoint.get("model", checkpoint)
    if not isinstance(state, dict):
        raise CheckpointReadError(f"checkpoint {path!r}: 'model' holds a {type(state).__name__}, expected a state dict")
    state = {strip_key_prefix(k, "module."): v for k, v in state.items()}
    prefixes = tuple(skip_prefixes)
    own = model.state_dict()
    summary = LoadSummary()
    to_load = {}
    shapes = []
    for key, target in own.items():
        if prefixes and key.startswith(prefixes):
            summary.skipped.append(key)
        elif key not in state:
            summary.missing.append(key)
        elif not isinstance(state[key], torch.Tensor) or tuple(state[key].shape) != tuple(target.shape):
            summary.wrong_shape.append(key)
            shapes.append(f"{key} {tuple(getattr(state[key], 'shape', ()))} in the file, {tuple(target.shape)} "
                          "in the model")
        else:
            summary.loaded.append(key)
            to_load[key] = state[key]
    summary.unexpected = sorted(k for k in state if k not in own and not (prefixes and k.startswith(prefixes)))
    if (summary.missing or summary.wrong_shape) and not allow_partial:
        parts = []
        if summary.wrong_shape:
            parts.append(f"{len(summary.wrong_shape)} tensor(s) of another shape ({_key_list(shapes, 4)})")
        if summary.missing:
            parts.append(f"{len(summary.missing)} tensor(s) missing from the file ({_key_list(summary.missing)})")
        raise ValueError(f"MODEL.WEIGHTS={path!r} does not fit this model: " + "; ".join(parts) +
                         ". Check the config matches the run that wrote the file (e.g. MODEL.DMF.EMBED_DIM, DEPTH); "
                         "list keys to re-initialise in MODEL.DMF.SKIP_LOAD_KEYS, or set "
                         "MODEL.DMF.ALLOW_PARTIAL_LOAD True to keep their initialisation")
    model.load_state_dict(to_load, strict=False)
    for key in summary.skipped:
        logger.info("Not loading '%s' from %s: listed in MODEL.DMF.SKIP_LOAD_KEYS (re-initialised)", key, path)
    if summary.wrong_shape or summary.missing:
        logger.warning("MODEL.DMF.ALLOW_PARTIAL_LOAD: keeping the initialisation of %s",
                       _key_list(summary.wrong_shape + summary.missing))
    logger.info(summary.line(path))
    return summary
