"""Tests for ``fastreid_dmf.compat``: each patch is exercised through fastreid's real code path.

Every patch test also runs (or imports) the *upstream* code with the patch undone and checks that it
fails, so the tests would fail without the patch. CPU behaviour is forced with the ``cpu_only`` fixture
(``torch.cuda.is_available`` -> False, CUDA entry points turned into tripwires), so the CPU paths are
covered on a GPU machine too; the CUDA-path tests are skipped without a GPU.
"""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torchvision.transforms as tv_transforms
from PIL import Image
from torchvision.transforms import InterpolationMode

import fastreid_dmf  # noqa: F401  (applies the patches)
from fastreid_dmf import compat

COMPAT_PATH = Path(compat.__file__).resolve()
HAS_CUDA = torch.cuda.is_available()


# ------------------------------------------------------------------------------------------ helpers
class CudaTripwires:
    """Records calls to CUDA entry points that must not be reached on the CPU path."""

    def __init__(self) -> None:
        self.calls: list[str] = []


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> CudaTripwires:
    """Pretend there is no GPU: ``torch.cuda.is_available()`` is False and CUDA entry points are recorded.

    ``set_device`` only records (it runs in DataLoaderX's background thread, where raising would hang the
    consumer); stream creation and ``Tensor.cuda`` raise like they do on a machine without a driver.
    """
    wires = CudaTripwires()

    def no_stream(*args: Any, **kwargs: Any) -> None:
        wires.calls.append("Stream")
        raise RuntimeError("tripwire: torch.cuda.Stream without a GPU")

    def no_cuda_tensor(self: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        wires.calls.append("Tensor.cuda")
        raise RuntimeError("tripwire: Tensor.cuda without a GPU")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "set_device", lambda *a, **k: wires.calls.append("set_device"))
    monkeypatch.setattr(torch.cuda, "Stream", no_stream)
    monkeypatch.setattr(torch.Tensor, "cuda", no_cuda_tensor)
    return wires


def undo_patch(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> None:
    """Restore the upstream object that ``compat`` replaced at ``owner.name`` (for this test only)."""
    patched = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
    assert getattr(patched, "_fastreid_dmf_compat", False), f"{owner}.{name} is not patched"
    monkeypatch.setattr(owner, name, patched.__wrapped__)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (same venv) and return the completed process."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def small_cfg() -> Any:
    """fast-reid default config shrunk to tiny images and batches."""
    from fastreid.config import get_cfg

    cfg = get_cfg()
    cfg.INPUT.SIZE_TRAIN = [32, 16]
    cfg.INPUT.SIZE_TEST = [32, 16]
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.DATALOADER.NUM_INSTANCE = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.TEST.IMS_PER_BATCH = 3
    return cfg


def write_images(root: Path, n_ids: int, per_id: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Write ``n_ids * per_id`` small random JPEGs; return fastreid ``(path, pid, camid)`` items."""
    rng = np.random.default_rng(seed)
    items = []
    for pid in range(n_ids):
        for k in range(per_id):
            path = root / f"p{pid}_{k}.jpg"
            Image.fromarray(rng.integers(0, 256, size=(24 + k, 12 + pid, 3), dtype=np.uint8)).save(path)
            items.append((str(path), f"toy_{pid}", f"toy_c{k % 2}"))
    return items


def random_reid_split(n_ids: int, n_query: int, n_gallery_per_id: int, dim: int,
                      seed: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, int]:
    """Clustered random features: query (camera 0) then gallery (camera 1), ``n_ids`` identities."""
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(n_ids, dim, generator=gen) * 3
    q_pids = np.arange(n_query) % n_ids
    g_pids = np.repeat(np.arange(n_ids), n_gallery_per_id)
    pids = np.concatenate([q_pids, g_pids])
    feats = centers[torch.as_tensor(pids)] + torch.randn(len(pids), dim, generator=gen)
    camids = np.concatenate([np.zeros(n_query, dtype=np.int64), np.ones(len(g_pids), dtype=np.int64)])
    return feats, pids, camids, n_query


def evaluate(cfg: Any, feats: torch.Tensor, pids: np.ndarray, camids: np.ndarray, num_query: int,
             batch: int = 7) -> dict[str, float]:
    """Run fastreid's ``ReidEvaluator`` (reset/process/evaluate) on precomputed features."""
    from fastreid.evaluation.reid_evaluation import ReidEvaluator

    evaluator = ReidEvaluator(cfg, num_query)
    evaluator.reset()
    for start in range(0, len(feats), batch):
        sl = slice(start, start + batch)
        inputs = {"targets": torch.as_tensor(pids[sl]), "camids": torch.as_tensor(camids[sl])}
        evaluator.process(inputs, feats[sl])
    return evaluator.evaluate()


# ----------------------------------------------------------------------------------------- 1, 2
def test_fastreid_data_build_import_needs_torch_six_and_mapping_patches() -> None:
    """Patches 1+2: upstream ``fastreid/data/build.py`` and ``evaluation/testing.py`` import only with them.

    Fresh interpreters: plain import fails on ``torch._six``; with only the ``torch._six`` shim (compat.py
    loaded by path, package ``__init__`` not run) it fails on ``collections.Mapping``; after
    ``import fastreid_dmf`` both modules import.
    """
    plain = run_python("import fastreid.data.build")
    assert plain.returncode != 0 and "torch._six" in plain.stderr

    only_six = run_python(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("isolated_compat", {str(COMPAT_PATH)!r})
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        mod._patch_torch_six()
        try:
            import fastreid.evaluation.testing
        except ImportError as exc:
            print("testing:", exc)
        import fastreid.data.build
    """)
    assert only_six.returncode != 0 and "Mapping" in only_six.stderr
    assert "testing:" in only_six.stdout and "Mapping" in only_six.stdout

    patched = run_python("""
        import fastreid_dmf
        import fastreid.data.build, fastreid.evaluation.testing
        from fastreid.data.build import fast_batch_collator
        out = fast_batch_collator([{"p": "a", "x": 1}, {"p": "b", "x": 2}])
        assert out["p"] == ["a", "b"] and out["x"].tolist() == [1, 2], out
        print("OK")
    """)
    assert patched.returncode == 0, patched.stderr
    assert "OK" in patched.stdout


# ----------------------------------------------------------------------------------- idempotency
def _patched_objects() -> dict[str, Any]:
    import collections

    from fastreid.data import data_utils
    from fastreid.data.transforms import build as transforms_build
    from fastreid.evaluation.reid_evaluation import ReidEvaluator
    from fastreid.utils import compute_dist, faiss_utils

    return {
        "torch._six": sys.modules["torch._six"],
        "Mapping": collections.Mapping,
        "DataLoaderX.__init__": data_utils.DataLoaderX.__dict__["__init__"],
        "DataLoaderX.preload": data_utils.DataLoaderX.__dict__["preload"],
        "DataLoaderX.__next__": data_utils.DataLoaderX.__dict__["__next__"],
        "DataLoaderX.__iter__": data_utils.DataLoaderX.__dict__["__iter__"],
        "DataLoaderX._shutdown_background_thread": data_utils.DataLoaderX.__dict__["_shutdown_background_thread"],
        "BackgroundGenerator.run": data_utils.BackgroundGenerator.__dict__["run"],
        "BackgroundGenerator.next": data_utils.BackgroundGenerator.__dict__["next"],
        "ReidEvaluator._compile_dependencies": ReidEvaluator.__dict__["_compile_dependencies"],
        "compute_jaccard_distance": compute_dist.compute_jaccard_distance,
        "swig_ptr_from_LongTensor": faiss_utils.swig_ptr_from_LongTensor,
        "transforms.build.T": transforms_build.T,
    }


def test_apply_fastreid_compat_is_idempotent() -> None:
    """Calling ``apply_fastreid_compat()`` again replaces nothing and never wraps a wrapper."""
    before = _patched_objects()
    compat.apply_fastreid_compat()
    compat.apply_fastreid_compat()
    after = _patched_objects()
    assert after.keys() == before.keys()
    for key, obj in before.items():
        assert after[key] is obj, key
    for key, obj in after.items():
        wrapped = getattr(obj, "__wrapped__", None)
        assert not getattr(wrapped, "_fastreid_dmf_compat", False), f"{key} wraps a compat wrapper"
    assert not getattr(tv_transforms.RandomAffine, "_fastreid_dmf_compat", False)


# ------------------------------------------------------------------------------------------------ 3
def test_dataloaderx_upstream_fails_without_gpu(cpu_only: CudaTripwires, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """Patch 3 is needed: with upstream ``DataLoaderX`` methods, building a fast-reid test loader fails."""
    from fastreid.data import data_utils
    from fastreid.data.build import build_reid_test_loader
    from fastreid.data.common import CommDataset
    from fastreid.data.transforms import build_transforms

    for name in ("__init__", "preload", "__next__"):
        undo_patch(monkeypatch, data_utils.DataLoaderX, name)
    undo_patch(monkeypatch, data_utils.BackgroundGenerator, "run")
    cfg = small_cfg()
    test_set = CommDataset(write_images(tmp_path, 2, 2), build_transforms(cfg, is_train=False), relabel=False)
    with pytest.raises(RuntimeError):
        build_reid_test_loader(cfg, test_set=test_set, num_query=2)
    assert "Stream" in cpu_only.calls


def test_prefetch_thread_errors_reach_the_consumer_instead_of_hanging_it() -> None:
    """Patch 3 (GPU path): an exception in ``BackgroundGenerator``'s thread is re-raised by ``next()``.

    Upstream the thread dies and the consumer blocks in ``queue.get()`` forever; the read runs in a helper
    thread with a timeout so a hang fails the test instead of blocking it.
    """
    from fastreid.data import data_utils

    def batches():
        yield 1
        yield 2
        raise OSError("image file is truncated: /data/0001_c1.jpg")

    with mock.patch("torch.cuda.set_device"):  # upstream run() selects the GPU first
        generator = data_utils.BackgroundGenerator(batches(), local_rank=0)  # starts the thread
        generator.join(timeout=10)
    received: list = []

    def consume() -> None:
        try:
            for item in generator:
                received.append(item)
        except OSError as err:
            received.append(err)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert not reader.is_alive(), "next() blocked: the error was not forwarded"
    assert received[:2] == [1, 2] and isinstance(received[2], OSError) and "0001_c1.jpg" in str(received[2])
    with pytest.raises(StopIteration):
        next(generator)


def test_reid_train_and_test_loaders_iterate_on_cpu(cpu_only: CudaTripwires, tmp_path: Path) -> None:
    """Patch 3: fast-reid's train/test loaders (``DataLoaderX``) run on CPU with no CUDA call at all.

    The train loader (identity sampler, infinite) yields CPU batches of the configured size and shuts down;
    the test loader (4 worker processes, fast-reid's default) yields every item once, in order, and can be
    iterated twice.
    """
    from fastreid.data import data_utils
    from fastreid.data.build import build_reid_test_loader, build_reid_train_loader
    from fastreid.data.common import CommDataset
    from fastreid.data.transforms import build_transforms

    cfg = small_cfg()
    cfg.DATALOADER.SAMPLER_TRAIN = "NaiveIdentitySampler"
    items = write_images(tmp_path, n_ids=3, per_id=4)

    train_set = CommDataset(items, build_transforms(cfg, is_train=True), relabel=True)
    train_loader = build_reid_train_loader(cfg, train_set=train_set)
    assert train_loader.stream is None and not train_loader.pin_memory
    seen_targets = set()
    for step, batch in enumerate(train_loader):
        assert batch["images"].shape == (cfg.SOLVER.IMS_PER_BATCH, 3, *cfg.INPUT.SIZE_TRAIN)
        assert batch["images"].device.type == "cpu"
        seen_targets.update(batch["targets"].tolist())
        if step == 5:
            break
    train_loader.shutdown()
    assert not [t for t in threading.enumerate() if isinstance(t, data_utils.BackgroundGenerator)], \
        "the CPU loader reads batches in the calling thread"
    assert seen_targets <= set(range(train_set.num_classes)) and len(seen_targets) > 1

    test_set = CommDataset(items, build_transforms(cfg, is_train=False), relabel=False)
    test_loader, num_query = build_reid_test_loader(cfg, test_set=test_set, num_query=4)
    assert num_query == 4
    for _ in range(2):
        paths: list[str] = []
        for batch in test_loader:
            assert batch["images"].device.type == "cpu"
            assert batch["images"].shape[1:] == (3, *cfg.INPUT.SIZE_TEST)
            paths.extend(batch["img_paths"])
        assert paths == [item[0] for item in items]
    assert cpu_only.calls == []


@pytest.mark.skipif(not HAS_CUDA, reason="needs a GPU")
def test_dataloaderx_keeps_upstream_cuda_path(tmp_path: Path) -> None:
    """Patch 3 with CUDA: upstream behaviour (a CUDA stream, batches delivered on the GPU)."""
    from fastreid.data.build import build_reid_test_loader
    from fastreid.data.common import CommDataset
    from fastreid.data.transforms import build_transforms

    cfg = small_cfg()
    items = write_images(tmp_path, 2, 3)
    loader, _ = build_reid_test_loader(cfg, test_set=CommDataset(items, build_transforms(cfg, is_train=False),
                                                                 relabel=False), num_query=2)
    assert isinstance(loader.stream, torch.cuda.Stream)
    batches = list(loader)
    assert sum(len(b["img_paths"]) for b in batches) == len(items)
    assert all(b["images"].is_cuda for b in batches)


# ------------------------------------------------------------------------------------------------ 4
@pytest.fixture
def no_cython_ranker(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the Cython ranker unimportable, turn compilation into a failing ``make``, reset the warn-once state.

    Returns the list of recorded compile attempts.
    """
    from fastreid.evaluation import rank, reid_evaluation

    attempts: list[str] = []

    def failing_compile_helper() -> None:
        attempts.append("compile")
        raise SystemExit(1)  # what upstream's compile_helper does when `make` fails

    def cython_must_not_run(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the Cython ranker was used although it is unavailable")

    monkeypatch.setitem(sys.modules, "fastreid.evaluation.rank_cylib.rank_cy", None)
    monkeypatch.setattr(reid_evaluation, "compile_helper", failing_compile_helper)
    monkeypatch.setattr(rank, "IS_CYTHON_AVAI", rank.IS_CYTHON_AVAI)  # restored after the test
    monkeypatch.setattr(rank, "evaluate_cy", cython_must_not_run, raising=False)
    monkeypatch.setattr(compat, "_WARNED", set())
    return attempts


def test_reid_evaluator_upstream_exits_without_cython(no_cython_ranker: list[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch 4 is needed: upstream ``ReidEvaluator`` compiles at run time and exits when that fails."""
    from fastreid.evaluation.reid_evaluation import ReidEvaluator

    undo_patch(monkeypatch, ReidEvaluator, "_compile_dependencies")
    with pytest.raises(SystemExit):
        ReidEvaluator(small_cfg(), num_query=3)
    assert no_cython_ranker == ["compile"]


def test_reid_evaluator_without_cython_uses_python_ranker(no_cython_ranker: list[str],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Patch 4: no compilation, no exit, one warning, metrics from the Python ranker (with and without ROC)."""
    feats, pids, camids, num_query = random_reid_split(n_ids=5, n_query=10, n_gallery_per_id=3, dim=16, seed=1)
    cfg = small_cfg()
    with caplog.at_level(logging.WARNING, logger=compat.__name__):
        results = evaluate(cfg, feats, pids, camids, num_query)
        cfg.TEST.ROC.ENABLED = True
        results_roc = evaluate(cfg, feats, pids, camids, num_query)
    assert no_cython_ranker == []
    for key in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"):
        assert 0.0 <= results[key] <= 100.0, (key, results[key])
        assert results_roc[key] == pytest.approx(results[key])
    assert any(k.startswith("TPR@FPR") for k in results_roc)
    warnings = [r for r in caplog.records if "Cython" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.skipif(not compat.cython_ranker_available(), reason="Cython ranker not built")
def test_python_ranker_fallback_matches_cython(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch 4: the fallback gives the same metrics as the compiled ranker on the same features."""
    from fastreid.evaluation import rank

    feats, pids, camids, num_query = random_reid_split(n_ids=6, n_query=12, n_gallery_per_id=4, dim=8, seed=2)
    with_cython = evaluate(small_cfg(), feats, pids, camids, num_query)
    monkeypatch.setattr(rank, "IS_CYTHON_AVAI", False)
    with_python = evaluate(small_cfg(), feats, pids, camids, num_query)
    assert with_python.keys() == with_cython.keys()
    for key, value in with_cython.items():
        assert with_python[key] == pytest.approx(value, abs=1e-4), key


# ------------------------------------------------------------------------------------------------ 5
def test_rerank_upstream_needs_gpu(cpu_only: CudaTripwires, monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch 5a is needed: upstream ``build_dist(..., metric="jaccard")`` moves features to CUDA."""
    from fastreid.utils import compute_dist

    undo_patch(monkeypatch, compute_dist, "compute_jaccard_distance")
    feats = torch.randn(6, 4)
    with pytest.raises(RuntimeError):
        compute_dist.build_dist(feats[:2], feats[2:], metric="jaccard", k1=3, k2=2)
    assert "Tensor.cuda" in cpu_only.calls


def test_rerank_jaccard_distance_on_cpu(cpu_only: CudaTripwires) -> None:
    """Patch 5a: k-reciprocal (jaccard) distance runs on CPU through ``build_dist``.

    Distances lie in [0, 1], a query identical to a gallery item is at distance 0 from it, and every
    query's nearest gallery item shares its identity on well-separated clusters.
    """
    from fastreid.utils.compute_dist import build_dist

    feats, pids, _, _ = random_reid_split(n_ids=4, n_query=0, n_gallery_per_id=6, dim=12, seed=3)
    query = feats[::3].clone()
    dist = build_dist(query, feats, metric="jaccard", k1=6, k2=3)
    assert isinstance(dist, np.ndarray) and dist.shape == (len(query), len(feats))
    assert np.isfinite(dist).all() and dist.min() >= 0.0 and dist.max() <= 1.0 + 1e-6
    own = np.arange(0, len(feats), 3)
    assert np.allclose(dist[np.arange(len(query)), own], 0.0, atol=1e-5)
    assert (pids[dist.argmin(axis=1)] == pids[own]).all()
    assert cpu_only.calls == []


def test_reid_evaluator_with_rerank_on_cpu(cpu_only: CudaTripwires) -> None:
    """Patch 5a end to end: ``ReidEvaluator`` with ``TEST.RERANK.ENABLED`` returns metrics on CPU."""
    feats, pids, camids, num_query = random_reid_split(n_ids=4, n_query=8, n_gallery_per_id=5, dim=16, seed=4)
    cfg = small_cfg()
    cfg.TEST.RERANK.ENABLED = True
    cfg.TEST.RERANK.K1 = 6
    cfg.TEST.RERANK.K2 = 3
    results = evaluate(cfg, feats, pids, camids, num_query)
    assert 0.0 <= results["mAP"] <= 100.0 and 0.0 <= results["Rank-1"] <= 100.0
    assert cpu_only.calls == []


def test_faiss_long_pointer_helper() -> None:
    """Patch 5b: ``faiss_utils.swig_ptr_from_LongTensor`` gives faiss a pointer it can write indices to.

    Drives a CPU ``IndexFlatL2.search_c`` through fastreid's pointer helpers (as ``search_index_pytorch``
    does on GPU) and checks that each vector finds itself; the upstream helper fails on this faiss.
    """
    import faiss
    from fastreid.utils import faiss_utils

    x = torch.randn(5, 4)
    k = 2
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x.numpy())
    distances = torch.empty(len(x), k, dtype=torch.float32)
    indices = torch.full((len(x), k), -1, dtype=torch.int64)
    index.search_c(len(x), faiss_utils.swig_ptr_from_FloatTensor(x), k,
                   faiss_utils.swig_ptr_from_FloatTensor(distances), faiss_utils.swig_ptr_from_LongTensor(indices))
    assert indices[:, 0].tolist() == list(range(len(x)))
    assert torch.allclose(distances[:, 0], torch.zeros(len(x)), atol=1e-5)
    if not hasattr(faiss, "cast_integer_to_long_ptr"):
        with pytest.raises(AttributeError):
            faiss_utils.swig_ptr_from_LongTensor.__wrapped__(indices)


@pytest.mark.skipif(not (HAS_CUDA and compat.faiss_gpu_usable()), reason="needs a GPU and GPU faiss")
def test_rerank_keeps_gpu_search() -> None:
    """Patch 5 with a GPU: upstream GPU faiss path (``search_option=0``) runs and matches the CPU search."""
    from fastreid.utils import compute_dist

    feats, _, _, _ = random_reid_split(n_ids=4, n_query=0, n_gallery_per_id=6, dim=12, seed=5)
    gpu = compute_dist.compute_jaccard_distance(feats, k1=6, k2=3, search_option=0)
    cpu = compute_dist.compute_jaccard_distance(feats, k1=6, k2=3, search_option=3)
    assert np.allclose(gpu, cpu, atol=1e-4)


# ------------------------------------------------------------------------------------------------ 6
def test_affine_transform_upstream_kwargs_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch 6 is needed: upstream ``build_transforms`` with ``INPUT.AFFINE`` raises on plain torchvision."""
    from fastreid.data.transforms import build as transforms_build

    monkeypatch.setattr(transforms_build, "T", tv_transforms)
    cfg = small_cfg()
    cfg.INPUT.AFFINE.ENABLED = True
    with pytest.raises(TypeError, match="resample"):
        transforms_build.build_transforms(cfg, is_train=True)


def test_affine_transform_builds_and_applies() -> None:
    """Patch 6: ``INPUT.AFFINE.ENABLED`` builds a RandomAffine (nearest, fill 0) and transforms a PIL image.

    torchvision's own ``RandomAffine`` is left untouched (still rejects ``resample=``).
    """
    from fastreid.data.transforms import build_transforms

    cfg = small_cfg()
    cfg.INPUT.AFFINE.ENABLED = True
    pipeline = build_transforms(cfg, is_train=True)
    affine = [t for t in pipeline.transforms if isinstance(t, tv_transforms.RandomAffine)]
    assert len(affine) == 1
    assert affine[0].interpolation == InterpolationMode.NEAREST and affine[0].fill == 0
    out = pipeline(Image.new("RGB", (20, 50), color=(200, 30, 90)))
    assert isinstance(out, torch.Tensor) and out.shape == (3, *cfg.INPUT.SIZE_TRAIN)

    assert tv_transforms.RandomAffine is not compat.LegacyKwargsRandomAffine
    with pytest.raises(TypeError):
        tv_transforms.RandomAffine(degrees=10, resample=False)


@pytest.mark.parametrize(("resample", "expected"), [
    (False, InterpolationMode.NEAREST),
    (None, InterpolationMode.NEAREST),
    (Image.Resampling.BILINEAR, InterpolationMode.BILINEAR),
    (int(Image.Resampling.BICUBIC), InterpolationMode.BICUBIC),
    (InterpolationMode.BILINEAR, InterpolationMode.BILINEAR),
])
def test_legacy_random_affine_keyword_mapping(resample: Any, expected: InterpolationMode) -> None:
    """Patch 6: legacy ``resample``/``fillcolor`` map to ``interpolation``/``fill``; conflicts are refused."""
    t = compat.LegacyKwargsRandomAffine(degrees=5, resample=resample, fillcolor=7)
    assert t.interpolation == expected and t.fill == 7
    with pytest.raises(TypeError):
        compat.LegacyKwargsRandomAffine(degrees=5, resample=resample, interpolation=expected)


def test_legacy_random_affine_rejects_unknown_resample() -> None:
    """Patch 6: an unmappable legacy ``resample`` is a ValueError, not a silent default."""
    with pytest.raises(ValueError):
        compat.LegacyKwargsRandomAffine(degrees=5, resample=42)


# ------------------------------------------------------------------------------------------------ 7
class _ToyReidModel(torch.nn.Module):
    """Takes a fast-reid batch dict, returns a loss dict (what fastreid trainers expect)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss_cls": torch.nn.functional.cross_entropy(self.fc(batch["images"]), batch["targets"])}


def _toy_batches(n: int) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    return [{"images": torch.randn(4, 6, generator=gen), "targets": torch.randint(0, 3, (4,), generator=gen)}
            for _ in range(n)]


def test_amp_guard_disables_amp_without_gpu(cpu_only: CudaTripwires, caplog: pytest.LogCaptureFixture) -> None:
    """Patch 7: with AMP on and no GPU, AMPTrainer fails; the guard returns a clone with AMP off and warns.

    The guarded config selects fastreid's SimpleTrainer (as ``DefaultTrainer`` does), which trains on CPU.
    The input config is unchanged and the frozen state is preserved.
    """
    from fastreid.engine.train_loop import AMPTrainer, SimpleTrainer
    from fastreid.utils.events import EventStorage

    cfg = small_cfg()
    cfg.SOLVER.AMP.ENABLED = True
    cfg.freeze()

    model = _ToyReidModel()
    amp_trainer = AMPTrainer(model, _toy_batches(2), torch.optim.SGD(model.parameters(), lr=0.1), None)
    with EventStorage(0), pytest.raises(AssertionError, match="CUDA"):
        amp_trainer.run_step()

    with caplog.at_level(logging.WARNING, logger=compat.__name__):
        guarded = compat.disable_amp_without_cuda(cfg)
    assert guarded is not cfg and guarded.SOLVER.AMP.ENABLED is False and guarded.is_frozen()
    assert cfg.SOLVER.AMP.ENABLED is True
    assert any("no GPU" in r.getMessage() and "AMP" in r.getMessage() for r in caplog.records)

    trainer_cls = AMPTrainer if guarded.SOLVER.AMP.ENABLED else SimpleTrainer
    model = _ToyReidModel()
    before = model.fc.weight.detach().clone()
    trainer = trainer_cls(model, _toy_batches(2), torch.optim.SGD(model.parameters(), lr=0.1), None)
    with EventStorage(0) as storage:
        trainer.storage = storage
        trainer.iter = 0
        trainer.run_step()
    assert not torch.equal(before, model.fc.weight)
    assert cpu_only.calls == []


def test_amp_guard_leaves_config_alone_when_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch 7: the guard returns the same config when AMP is off, or when CUDA is available."""
    cfg = small_cfg()
    assert cfg.SOLVER.AMP.ENABLED is False
    assert compat.disable_amp_without_cuda(cfg) is cfg

    cfg.SOLVER.AMP.ENABLED = True
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = compat.disable_amp_without_cuda(cfg)
    assert out is cfg and out.SOLVER.AMP.ENABLED is True


# ----------------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("sched", ["MultiStepLR", "CosineAnnealingLR"])
def test_fastreid_checkpoint_round_trip_with_weights_only_default(tmp_path: Path, sched: str) -> None:
    """No patch needed: fastreid's Checkpointer output loads back under torch's ``weights_only=True`` default.

    Saves model, optimizer and fastreid's schedulers (main + WarmupLR) plus epoch/metric as
    ``PeriodicCheckpointer`` does, then resumes into fresh objects and compares.
    """
    from fastreid.solver.build import build_lr_scheduler
    from fastreid.utils.checkpoint import Checkpointer

    cfg = small_cfg()
    cfg.SOLVER.SCHED = sched
    cfg.SOLVER.WARMUP_ITERS = 4

    def make() -> tuple[torch.nn.Module, torch.optim.Optimizer, dict[str, Any]]:
        model = _ToyReidModel()
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        return model, opt, build_lr_scheduler(cfg, opt, iters_per_epoch=2)

    model, opt, scheds = make()
    for batch in _toy_batches(3):
        opt.zero_grad()
        model(batch)["loss_cls"].backward()
        opt.step()
        for s in scheds.values():
            s.step()
    Checkpointer(model, str(tmp_path), optimizer=opt, **scheds).save("model_0002", epoch=2, metric=0.5)

    model2, opt2, scheds2 = make()
    extra = Checkpointer(model2, str(tmp_path), optimizer=opt2, **scheds2).resume_or_load("", resume=True)
    assert extra == {"epoch": 2, "metric": 0.5}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.state_dict()["state"].keys() == opt.state_dict()["state"].keys()
    for name, s in scheds.items():
        assert scheds2[name].last_epoch == s.last_epoch


def test_compat_module_documents_every_patch() -> None:
    """The module docstring table names each upstream file patched."""
    doc = importlib.import_module("fastreid_dmf.compat").__doc__ or ""
    for upstream in ("data/build.py", "evaluation/testing.py", "data/data_utils.py",
                     "evaluation/reid_evaluation.py", "utils/compute_dist.py", "utils/faiss_utils.py",
                     "data/transforms/build.py", "engine/train_loop.py", "utils/checkpoint.py"):
        assert upstream in doc, upstream


def test_fastreid_contiguous_optimizer_keeps_updating_parameters():
    """Patch 8: with upstream ``build_optimizer`` under torch 2, the second step updates nothing."""
    from fastreid.config import get_cfg
    from fastreid.engine import defaults
    from fastreid.solver import build as solver_build

    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.OPT", "SGD", "SOLVER.BASE_LR", 0.1, "SOLVER.MOMENTUM", 0.0])
    assert defaults.build_optimizer is solver_build.build_optimizer, "DefaultTrainer uses the patched builder"

    def steps_that_change_weights(build):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        optimizer, _ = build(cfg, model)
        changed = []
        for _ in range(3):
            before = model.weight.detach().clone()
            optimizer.zero_grad()
            model(torch.ones(2, 4)).sum().backward()
            optimizer.step()
            changed.append(not torch.equal(before, model.weight.detach()))
        return changed

    assert steps_that_change_weights(solver_build.build_optimizer) == [True, True, True]
    assert steps_that_change_weights(solver_build.build_optimizer.__wrapped__)[1:] == [False, False]


def test_metric_printer_writes_twice_at_one_iteration_without_dividing_by_zero():
    from fastreid.utils.events import CommonMetricPrinter, EventStorage

    with EventStorage(start_iter=0) as storage:
        storage.epoch = 0  # set by fast-reid's TrainerBase
        storage.put_scalar("lr", 0.1)
        printer = CommonMetricPrinter(max_iter=10)
        printer.write()
        printer.write()  # same iteration again, as after a one-iteration epoch
        storage.step()
        printer.write()
        upstream = CommonMetricPrinter(max_iter=10)
        upstream.write()
        with pytest.raises(ZeroDivisionError):
            CommonMetricPrinter.write.__wrapped__(upstream)
