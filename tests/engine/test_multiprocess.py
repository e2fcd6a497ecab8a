"""``tools/train_net.py`` with several processes on a CPU machine: gloo via ``--num-gpus``, and ``torchrun``."""

import json
import os
import re
import subprocess
import sys

import pytest

from fastreid_dmf.engine.launch import choose_backend, torchrun_world
from tests.shared import REPO

TINY = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3",
        "MODEL.BACKBONE.FEAT_DIM", "48", "SOLVER.WARMUP_ITERS", "1", "TEST.IMS_PER_BATCH", "64",
        "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "SEED", "0",
        "DATASETS.TESTS", '("SynthMarket",)']
CONFIG = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")


def _run(prefix, out, root, *extra):
    env = {**os.environ, "FASTREID_DATASETS": str(root), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [*prefix, os.path.join(REPO, "tools", "train_net.py"), "--config-file", CONFIG, *extra, *TINY,
           "OUTPUT_DIR", str(out)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def two_process_run(tiny_benchmark_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gloo") / "run"
    return out, _run([sys.executable], out, tiny_benchmark_root, "--num-gpus", "2")


def test_two_cpu_processes_train_and_rank_zero_writes_the_outputs(two_process_run):
    out, results = two_process_run
    assert set(results) == {"SynthMarket"}
    assert (out / "model_final.pth").is_file() and (out / "config.yaml").is_file()
    log = (out / "log.txt").read_text()
    # fast-reid names the process count in its inference log; the evaluation saw every test image
    assert re.search(r"on 2 devices", log)
    assert not any(name.startswith("model_") and "rank" in name for name in os.listdir(out))
    assert json.loads((out / "results.json").read_text()) == results  # written once, by rank 0


def test_two_process_evaluation_gathers_every_rank_like_one_process(two_process_run, tiny_benchmark_root):
    out, results = two_process_run
    again = _run([sys.executable], out.parent / "eval", tiny_benchmark_root, "--eval-only", "MODEL.WEIGHTS",
                 str(out / "model_final.pth"))
    for key, value in results["SynthMarket"].items():
        assert again["SynthMarket"][key] == pytest.approx(value, abs=1e-4), key


def test_torchrun_gives_the_same_run_as_num_gpus(two_process_run, tiny_benchmark_root, tmp_path):
    _, results = two_process_run
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29541"]
    assert _run(torchrun, tmp_path / "torchrun", tiny_benchmark_root) == results


def test_backend_is_gloo_without_a_gpu_per_process():
    import torch

    if not torch.cuda.is_available():
        assert choose_backend(2) == "gloo"
    assert choose_backend(10 ** 6) == "gloo"


def test_incomplete_torchrun_environment_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT missing"):
        torchrun_world()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert torchrun_world() is None
