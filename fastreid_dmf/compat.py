"""Compatibility layer so fastreid 1.4.0 runs on torch 2.x, Python 3.11+, numpy 2, with or without a GPU.

Applied by ``import fastreid_dmf`` (``fastreid_dmf/__init__.py`` calls :func:`apply_fastreid_compat`)
before any fastreid submodule that needs it is used. Every patch is targeted at one upstream
function/class/module, keeps upstream behaviour where upstream works (CUDA present), and is
idempotent: calling :func:`apply_fastreid_compat` again changes nothing (patched objects carry a
``_fastreid_dmf_compat`` marker and the original in ``__wrapped__``).

Patches (all paths relative to the installed ``fastreid`` package):

=====  ==========================================  ==============================================================
#      Upstream file / object                      Why
=====  ==========================================  ==============================================================
1      ``data/build.py`` (line 11)                 ``from torch._six import string_classes``; ``torch._six`` was
                                                   removed in torch 2. A shim module ``torch._six`` is registered.
2      ``data/build.py`` (line 12),                ``from collections import Mapping``; removed in Python 3.10.
       ``evaluation/testing.py`` (line 5)          ``collections.Mapping`` is aliased to ``collections.abc``'s.
3      ``data/data_utils.py``:                     Always creates a ``torch.cuda.Stream``, calls
       ``DataLoaderX`` (init, iter, preload,       ``torch.cuda.set_device`` in the prefetch thread and moves
       next, shutdown),                            batches to the GPU: fails without a usable GPU. Without CUDA it
       ``BackgroundGenerator.run/next``            now is a plain CPU ``DataLoader`` (no prefetch thread); with
                                                   CUDA, upstream code, except that an exception in the prefetch
                                                   thread is re-raised in the training loop instead of hanging it.
4      ``evaluation/reid_evaluation.py``:          Compiles the Cython ranker inside site-packages at run time
       ``ReidEvaluator._compile_dependencies``     (``rank_cylib.compile_helper`` -> ``make``; ``sys.exit(1)`` on
                                                   failure). Now never compiles/exits: uses the Cython module if it
                                                   imports, else warns once and uses ``evaluation/rank.py``'s
                                                   Python ranker.
5a     ``utils/compute_dist.py``:                  ``features.cuda()`` and GPU faiss unconditionally (re-ranking).
       ``compute_jaccard_distance``                Without CUDA (or without a faiss GPU build/device) it now uses
                                                   the CPU faiss path of the same function (``search_option=3``).
5b     ``utils/faiss_utils.py``:                   Uses ``faiss.cast_integer_to_long_ptr``, gone from faiss >= 1.7.3
       ``swig_ptr_from_LongTensor``                (GPU re-ranking path); falls back to ``cast_integer_to_idx_t_ptr``.
6      ``data/transforms/build.py`` (line 81)      ``T.RandomAffine(..., resample=False, fillcolor=0)``; torchvision
       ``build_transforms`` (``INPUT.AFFINE``)     now takes ``interpolation=``/``fill=``. That module's ``T`` is
                                                   replaced by a namespace whose ``RandomAffine`` maps the old
                                                   keywords; ``torchvision.transforms`` itself is untouched.
7      ``engine/train_loop.py``: ``AMPTrainer``    Asserts CUDA. Not patched: call :func:`disable_amp_without_cuda`
       (``run_step``), chosen in                   on the config before building the trainer; it turns
       ``engine/defaults.py`` ``DefaultTrainer``   ``SOLVER.AMP.ENABLED`` off (with a warning) when there is no GPU.
8      ``solver/build.py``: ``build_optimizer``    ``ContiguousParams`` ties every parameter's ``.grad`` to one flat
       (``ContiguousParams``, ``utils/params.py``) buffer; torch 2's ``zero_grad(set_to_none=True)`` cuts that link
                                                   and training silently stops updating. The optimizer's
                                                   ``zero_grad`` now defaults to ``set_to_none=False``.
9      ``utils/events.py``:                        Upstream bug: a second ``write()`` at the same iteration (an epoch
       ``CommonMetricPrinter.write``               of 1-2 iterations: the after-step and after-epoch hooks both
                                                   write) divides by zero in its ETA estimate. That case now skips
                                                   the estimate, as upstream's first write does.
=====  ==========================================  ==============================================================

Not here: ``utils/checkpoint.py`` ``Checkpointer`` reads with a bare ``torch.load`` and writes in place;
that is a safety change rather than a compatibility one, applied by :mod:`fastreid_dmf.engine.checkpoint`
(``weights_only=True`` reads, atomic writes). Checked and left alone:
``modeling/meta_arch/baseline.py`` ``Baseline.preprocess_image`` normalises in place (with ``TEST.FLIP``
the flipped copy is normalised twice); deliberately not patched, do not copy that pattern.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import functools
import importlib
import logging
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torchvision.transforms as _tv_transforms
from torchvision.transforms import InterpolationMode

__all__ = [
    "LegacyKwargsRandomAffine",
    "attribute_replaced",
    "apply_fastreid_compat",
    "cuda_usable",
    "cython_ranker_available",
    "disable_amp_without_cuda",
    "faiss_gpu_usable",
]

logger = logging.getLogger(__name__)

_MARK = "_fastreid_dmf_compat"
_WARNED: set[str] = set()


def cuda_usable() -> bool:
    """Whether a CUDA device can be used by torch in this process.

    Returns:
        ``torch.cuda.is_available()``; every CPU fallback in this module is keyed on it.
    """
    return torch.cuda.is_available()


def _warn_once(key: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        logger.warning(message)


def _is_patched(obj: Any) -> bool:
    """Whether ``obj`` was installed by this module."""
    return bool(getattr(obj, _MARK, False))


def _install(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace ``owner.name`` by ``make(original)`` unless it is already our replacement.

    The replacement gets the marker attribute and ``__wrapped__ = original`` so a second call is a
    no-op and tests can reach the upstream code.
    """
    current = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    if _is_patched(current):
        return
    new = make(current)
    setattr(new, _MARK, True)
    new.__wrapped__ = current
    setattr(owner, name, new)


@contextlib.contextmanager
def attribute_replaced(owner: Any, name: str, value: Any) -> Iterator[Any]:
    """Within the block ``owner.name`` is ``value``; the original is restored on exit (also on error).

    The one way this package changes an upstream global for the length of a call (DDP arguments and
    optimizer LR groups in ``DMFTrainer``, ``torch.load``'s ``weights_only``, PIL's truncated-image flag),
    as opposed to the permanent patches of :func:`apply_fastreid_compat`. Not thread-safe.

    Yields:
        The original value.
    """
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield original
    finally:
        setattr(owner, name, original)


# --------------------------------------------------------------------------------------------- 1, 2
def _patch_torch_six() -> None:
    """Patch 1: ``fastreid/data/build.py`` line 11 does ``from torch._six import string_classes``.

    ``torch._six`` was removed in torch 2.0; register a shim module exposing ``string_classes``.
    """
    if "torch._six" not in sys.modules:
        shim = types.ModuleType("torch._six")
        shim.string_classes = (str, bytes)
        setattr(shim, _MARK, True)
        sys.modules["torch._six"] = shim


def _patch_collections_mapping() -> None:
    """Patch 2: ``fastreid/data/build.py`` line 12 and ``fastreid/evaluation/testing.py`` line 5.

    Both do ``from collections import Mapping`` (removed in Python 3.10); alias it to
    ``collections.abc.Mapping``.
    """
    if not hasattr(collections, "Mapping"):
        collections.Mapping = collections.abc.Mapping


# ------------------------------------------------------------------------------------------------ 3
class _RaisedInPrefetch:
    """Queue item carrying an exception raised in ``BackgroundGenerator``'s prefetch thread to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _patch_dataloaderx() -> None:
    """Patch 3: ``fastreid/data/data_utils.py`` ``DataLoaderX`` and ``BackgroundGenerator.run/next``.

    Upstream ``DataLoaderX.__init__`` creates ``torch.cuda.Stream(local_rank)``, ``preload`` copies every
    tensor of the batch to ``local_rank`` inside that stream, ``__next__`` waits on it, and
    ``BackgroundGenerator.run`` (the prefetch thread) calls ``torch.cuda.set_device``. All of that raises
    without a usable GPU. The methods are patched in place on the class (``fastreid/data/build.py``
    imported ``DataLoaderX`` by name).

    * Without a usable GPU (at construction) the loader is a plain ``DataLoader``: no stream, no pinned
      memory, no prefetch thread (``self.stream is None``). There is no host-to-device copy to overlap,
      worker processes already prefetch, and loading in the calling thread keeps every random draw of the
      augmentations in one ordered stream, which exact resume relies on (``engine/resume.py``).
    * With a usable GPU the upstream methods run unchanged, except that an exception raised in the
      prefetch thread (a worker error, an unreadable image) no longer kills the thread silently, leaving
      the training loop blocked forever in ``queue.get()``: it is queued and re-raised in the consuming
      thread by ``next()``, after which the generator is exhausted.
    """
    from fastreid.data import data_utils
    from torch.utils.data import DataLoader

    loader_cls = data_utils.DataLoaderX
    generator_cls = data_utils.BackgroundGenerator

    def make_init(orig: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(orig)
        def __init__(self: Any, local_rank: int, **kwargs: Any) -> None:
            if cuda_usable():
                orig(self, local_rank, **kwargs)
                return
            kwargs["pin_memory"] = False  # nothing to pin for without a GPU; avoids torch's warning
            DataLoader.__init__(self, **kwargs)
            self.stream = None
            self.local_rank = local_rank

        return __init__

    def make_iter(orig: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(orig)
        def __iter__(self: Any) -> Any:
            if getattr(self, "stream", None) is not None:
                return orig(self)
            self.iter = DataLoader.__iter__(self)
            return self

        return __iter__

    def make_preload(orig: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(orig)
        def preload(self: Any) -> None:
            if getattr(self, "stream", None) is not None:
                orig(self)
                return
            self.batch = None  # CPU loader: batches are read on demand by __next__

        return preload

    def make_next(orig: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(orig)
        def __next__(self: Any) -> Any:
            if getattr(self, "stream", None) is not None:
                return orig(self)
            return next(self.iter)

        return __next__

    def make_shutdown(orig: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(orig)
        def _shutdown_background_thread(self: Any) -> None:
            if isinstance(getattr(self, "iter", None), generator_cls):
                orig(self)
                return
            shutdown_workers = getattr(getattr(self, "iter", None), "_shutdown_workers", None)
            if shutdown_workers is not None:  # multi-process DataLoader iterator of the CPU loader
                shutdown_workers()

        return _shutdown_background_thread

    def make_run(orig: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(orig)
        def run(self: Any) -> None:
            try:
                orig(self)
            except BaseException as error:  # noqa: BLE001  (forwarded to the consumer, re-raised there)
                self.queue.put(_RaisedInPrefetch(error))

        return run

    def make_generator_next(orig: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(orig)
        def next_item(self: Any) -> Any:
            if getattr(self, "_forwarded_error", False):
                raise StopIteration  # the error was raised once; the thread has ended
            item = self.queue.get()
            if isinstance(item, _RaisedInPrefetch):
                self._forwarded_error = True
                raise item.error
            if item is None:
                raise StopIteration
            return item

        return next_item

    _install(loader_cls, "__init__", make_init)
    _install(loader_cls, "__iter__", make_iter)
    _install(loader_cls, "preload", make_preload)
    _install(loader_cls, "__next__", make_next)
    _install(loader_cls, "_shutdown_background_thread", make_shutdown)
    _install(generator_cls, "run", make_run)
    _install(generator_cls, "next", make_generator_next)


# ------------------------------------------------------------------------------------------------ 4
def cython_ranker_available() -> bool:
    """Whether fastreid's compiled Cython ranker (``evaluation/rank_cylib/rank_cy``) imports.

    Returns:
        True when ``fastreid.evaluation.rank_cylib.rank_cy.evaluate_cy`` can be imported (it is built by
        ``tools/setup_env.sh`` at install time), False otherwise.
    """
    try:
        from fastreid.evaluation.rank_cylib.rank_cy import evaluate_cy  # noqa: F401
    except ImportError:
        return False
    return True


def _patch_reid_evaluator() -> None:
    """Patch 4: ``fastreid/evaluation/reid_evaluation.py`` ``ReidEvaluator._compile_dependencies``.

    Upstream (called from ``ReidEvaluator.__init__``) tries ``from .rank_cylib.rank_cy import evaluate_cy``
    and on ImportError runs ``rank_cylib.compile_helper()``, i.e. ``make`` inside site-packages, which
    calls ``sys.exit(1)`` when that fails. The replacement never compiles and never exits: if the Cython
    module imports nothing changes; otherwise it warns once and sets ``fastreid.evaluation.rank``'s
    ``IS_CYTHON_AVAI = False`` so ``evaluate_rank`` uses the Python ranker (``evaluate_py``). The
    ``comm.synchronize()`` barrier of upstream is kept.
    """
    from fastreid.evaluation import reid_evaluation
    from fastreid.utils import comm

    def make(orig: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(orig)
        def _compile_dependencies(self: Any) -> None:
            if comm.is_main_process() and not cython_ranker_available():
                _warn_once(
                    "cython-ranker",
                    "fastreid's Cython rank evaluation module (fastreid/evaluation/rank_cylib/rank_cy) is not "
                    "built; using the slower Python ranker. Re-run tools/setup_env.sh to build it.",
                )
                rank = importlib.import_module("fastreid.evaluation.rank")
                rank.IS_CYTHON_AVAI = False
            comm.synchronize()

        return _compile_dependencies

    _install(reid_evaluation.ReidEvaluator, "_compile_dependencies", make)


# ------------------------------------------------------------------------------------------------ 5
def faiss_gpu_usable() -> bool:
    """Whether fastreid's GPU faiss search paths can run here.

    Returns:
        True when CUDA is usable, the installed faiss is a GPU build (``StandardGpuResources``) and it
        sees at least one GPU; False otherwise (including when faiss itself is missing).
    """
    if not cuda_usable():
        return False
    try:
        import faiss
    except ImportError:
        return False
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return hasattr(faiss, "StandardGpuResources") and get_num_gpus is not None and get_num_gpus() > 0


def _patch_compute_dist() -> None:
    """Patch 5a: ``fastreid/utils/compute_dist.py`` ``compute_jaccard_distance`` (k-reciprocal re-ranking).

    Upstream moves the features to CUDA (``features.cuda()``) for ``search_option < 3`` and
    ``build_dist(..., metric="jaccard")`` always passes ``search_option=0`` (GPU faiss). The module
    attribute is replaced by a wrapper (``build_dist`` looks it up at call time) that, when
    :func:`faiss_gpu_usable` is False, runs upstream with ``search_option=3``, the CPU ``IndexFlatL2``
    search already in that function. With a usable GPU the arguments are passed through unchanged.
    """
    from fastreid.utils import compute_dist

    def make(orig: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(orig)
        def compute_jaccard_distance(features: torch.Tensor, k1: int = 20, k2: int = 6, search_option: int = 0,
                                     fp16: bool = False) -> Any:
            if search_option < 3 and not faiss_gpu_usable():
                _warn_once("cpu-rerank", "Re-ranking: no usable GPU faiss/CUDA, using the CPU faiss search.")
                search_option = 3
            return orig(features, k1=k1, k2=k2, search_option=search_option, fp16=fp16)

        return compute_jaccard_distance

    _install(compute_dist, "compute_jaccard_distance", make)


def _patch_faiss_long_ptr() -> None:
    """Patch 5b: ``fastreid/utils/faiss_utils.py`` ``swig_ptr_from_LongTensor`` (GPU re-ranking path).

    Upstream calls ``faiss.cast_integer_to_long_ptr``, which faiss >= 1.7.3 no longer has (it is
    ``cast_integer_to_idx_t_ptr``; ``idx_t`` is int64). Only applied when the old name is missing.
    """
    import faiss
    from fastreid.utils import faiss_utils

    if hasattr(faiss, "cast_integer_to_long_ptr") and not _is_patched(faiss_utils.swig_ptr_from_LongTensor):
        return

    def make(orig: Callable[[torch.Tensor], Any]) -> Callable[[torch.Tensor], Any]:
        @functools.wraps(orig)
        def swig_ptr_from_LongTensor(x: torch.Tensor) -> Any:  # noqa: N802 (upstream name)
            assert x.is_contiguous()
            assert x.dtype == torch.int64, f"dtype={x.dtype}"
            return faiss.cast_integer_to_idx_t_ptr(x.untyped_storage().data_ptr() + x.storage_offset() * 8)

        return swig_ptr_from_LongTensor

    _install(faiss_utils, "swig_ptr_from_LongTensor", make)


# ------------------------------------------------------------------------------------------------ 6
_PIL_RESAMPLE_TO_INTERPOLATION = {
    0: InterpolationMode.NEAREST,
    1: InterpolationMode.LANCZOS,
    2: InterpolationMode.BILINEAR,
    3: InterpolationMode.BICUBIC,
    4: InterpolationMode.BOX,
    5: InterpolationMode.HAMMING,
}


def _resample_to_interpolation(resample: Any) -> InterpolationMode:
    """Map torchvision < 0.13 ``resample`` values (False/None, PIL filter ints) to ``InterpolationMode``.

    ``resample=False`` (the old default) meant PIL's NEAREST.
    """
    if isinstance(resample, InterpolationMode):
        return resample
    if resample is None or resample is False:
        return InterpolationMode.NEAREST
    try:
        return _PIL_RESAMPLE_TO_INTERPOLATION[int(resample)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"RandomAffine: unsupported legacy resample={resample!r}") from None


_UNSET: Any = object()


class LegacyKwargsRandomAffine(_tv_transforms.RandomAffine):
    """``torchvision.transforms.RandomAffine`` that also accepts the pre-0.13 keywords ``resample``/``fillcolor``.

    Used only as ``fastreid.data.transforms.build.T.RandomAffine`` (patch 6). ``resample`` is mapped to
    ``interpolation`` (False/None -> NEAREST, PIL filter ints -> the matching ``InterpolationMode``) and
    ``fillcolor`` to ``fill``.

    Raises:
        TypeError: if both a legacy keyword and its new name are given.
        ValueError: for a ``resample`` value with no ``InterpolationMode``.
    """

    def __init__(self, *args: Any, resample: Any = _UNSET, fillcolor: Any = _UNSET, **kwargs: Any) -> None:
        if resample is not _UNSET:
            if "interpolation" in kwargs:
                raise TypeError("RandomAffine: give either resample= (legacy) or interpolation=, not both")
            kwargs["interpolation"] = _resample_to_interpolation(resample)
        if fillcolor is not _UNSET:
            if "fill" in kwargs:
                raise TypeError("RandomAffine: give either fillcolor= (legacy) or fill=, not both")
            kwargs["fill"] = fillcolor
        super().__init__(*args, **kwargs)


class _LegacyTransformsNamespace:
    """Stand-in for ``torchvision.transforms`` inside ``fastreid/data/transforms/build.py`` only.

    Every attribute comes from ``torchvision.transforms`` except ``RandomAffine``
    (:class:`LegacyKwargsRandomAffine`).
    """

    RandomAffine = LegacyKwargsRandomAffine

    def __init__(self, base: types.ModuleType) -> None:
        self._base = base

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def __repr__(self) -> str:
        return f"<fastreid_dmf compat view of {self._base.__name__}>"


def _patch_transforms_random_affine() -> None:
    """Patch 6: ``fastreid/data/transforms/build.py`` ``build_transforms``, ``INPUT.AFFINE`` branch (line 81).

    Upstream calls ``T.RandomAffine(degrees=10, translate=None, scale=[0.9, 1.1], shear=0.1, resample=False,
    fillcolor=0)``; torchvision >= 0.13 renamed those keywords to ``interpolation``/``fill`` (TypeError).
    The module-global ``T`` of that one module becomes a :class:`_LegacyTransformsNamespace`, so only that
    call site sees the keyword mapping; ``torchvision.transforms`` is not modified.
    """
    build = importlib.import_module("fastreid.data.transforms.build")
    current = build.T
    if _is_patched(current):  # marker, not isinstance: stays a no-op if this module is reloaded
        return
    namespace = _LegacyTransformsNamespace(current)
    setattr(namespace, _MARK, True)
    build.T = namespace


# ------------------------------------------------------------------------------------------------ 7
def disable_amp_without_cuda(cfg: Any) -> Any:
    """Turn mixed-precision training off when there is no GPU (fastreid's ``AMPTrainer`` needs CUDA).

    ``fastreid/engine/defaults.py`` ``DefaultTrainer.__init__`` picks ``AMPTrainer`` when
    ``cfg.SOLVER.AMP.ENABLED`` is true, and ``fastreid/engine/train_loop.py`` ``AMPTrainer.run_step`` asserts
    ``torch.cuda.is_available()``. Call this on the config in the training entry point before the trainer
    is built.

    Args:
        cfg: a fastreid/yacs ``CfgNode`` with ``SOLVER.AMP.ENABLED``.

    Returns:
        ``cfg`` itself when AMP is off or CUDA is usable; otherwise a clone with ``SOLVER.AMP.ENABLED =
        False`` (same frozen state as ``cfg``), after logging a warning that AMP is turned off because
        there is no GPU. The input config is never modified.

    Raises:
        AttributeError: if ``cfg`` has no ``SOLVER.AMP.ENABLED``.
    """
    if not cfg.SOLVER.AMP.ENABLED or cuda_usable():
        return cfg
    logger.warning("SOLVER.AMP.ENABLED is True but no GPU is available (CUDA unusable): "
                   "turning AMP off and training in float32 on the CPU.")
    was_frozen = cfg.is_frozen()
    new_cfg = cfg.clone()
    new_cfg.defrost()
    new_cfg.SOLVER.AMP.ENABLED = False
    if was_frozen:
        new_cfg.freeze()
    return new_cfg


# ------------------------------------------------------------------------------------------------ 8
def _patch_contiguous_optimizer_zero_grad() -> None:
    """Patch 8: ``fastreid/solver/build.py`` ``build_optimizer`` (contiguous parameters).

    Upstream wraps the parameters in ``utils/params.py`` ``ContiguousParams``: the optimizer owns one flat
    buffer per group whose ``.grad`` is a flat gradient buffer, and every model parameter's ``.grad`` is a
    view into it. Since torch 2.0, ``Optimizer.zero_grad()`` defaults to ``set_to_none=True``, which sets the
    flat buffers' ``.grad`` to None on the first step of ``SimpleTrainer.run_step``: afterwards backward
    still writes into the (now orphaned) views, the optimizer sees no gradient and never updates anything,
    and the model's gradients accumulate forever -- training silently does nothing. The returned optimizer's
    ``zero_grad`` now defaults to ``set_to_none=False`` (zeroing the shared buffers in place, as under
    torch 1.x). The replacement is installed where the function is looked up: ``fastreid.solver.build``,
    ``fastreid.solver`` and ``fastreid.engine.defaults`` (``DefaultTrainer.build_optimizer``).
    """
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def build_optimizer(cfg: Any, model: Any, contiguous: bool = True) -> Any:
            optimizer, params = original(cfg, model, contiguous)
            if contiguous:
                optimizer.zero_grad = functools.partial(optimizer.zero_grad, set_to_none=False)
            return optimizer, params
        return build_optimizer

    solver_build = importlib.import_module("fastreid.solver.build")
    _install(solver_build, "build_optimizer", make)
    patched = solver_build.build_optimizer
    for module_name in ("fastreid.solver", "fastreid.engine.defaults"):
        module = importlib.import_module(module_name)
        if not _is_patched(module.build_optimizer):
            module.build_optimizer = patched


# ------------------------------------------------------------------------------------------------ 9
def _patch_metric_printer_same_iteration() -> None:
    """Patch 9: ``fastreid/utils/events.py`` ``CommonMetricPrinter.write`` (ETA estimate).

    Without a "time" history the printer estimates the iteration time from its previous write,
    dividing by the number of iterations since then; on datasets with one or two iterations per
    epoch it writes twice at one iteration and raises ``ZeroDivisionError``. Forgetting the previous
    write in that case makes it take upstream's no-estimate branch.
    """
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def write(self: Any) -> Any:
            from fastreid.utils.events import get_event_storage

            last = getattr(self, "_last_write", None)
            if last is not None and last[0] == get_event_storage().iter:
                self._last_write = None
            return original(self)
        return write

    events = importlib.import_module("fastreid.utils.events")
    _install(events.CommonMetricPrinter, "write", make)


# -------------------------------------------------------------------------------------------- apply
def apply_fastreid_compat() -> None:
    """Apply every patch listed in the module docstring; safe to call more than once.

    Patches 1-2 are installed first because importing ``fastreid.data`` (needed by patches 3 and 6)
    executes ``fastreid/data/build.py``. Imports ``fastreid.data``, ``fastreid.evaluation`` and
    ``fastreid.utils.compute_dist`` (hence faiss).

    Raises:
        ImportError: if fastreid (or faiss, which it imports) is not installed.
    """
    _patch_torch_six()
    _patch_collections_mapping()
    _patch_dataloaderx()
    _patch_reid_evaluator()
    _patch_compute_dist()
    _patch_faiss_long_ptr()
    _patch_transforms_random_affine()
    _patch_contiguous_optimizer_zero_grad()
    _patch_metric_printer_same_iteration()
