"""``tools/train_net.py`` with several processes on a CPU machine: gloo via ``--num-gpus``, and ``torchrun``.

Runs use the settings under which N processes compute what one does on the same global batch
(``SOLVER.IMS_PER_BATCH`` is fast-reid's global batch): BNNeck ``syncBN`` and the triplet mined over all
processes (``MODEL.DMF.TRIPLET_ACROSS_PROCESSES``, default); no random flip / padding (each process draws its
own augmentation); SGD: Adam divides by the gradient's magnitude, so in parameters whose exact gradient is 0
(the attention key bias, the last LayerNorm's bias under shift-invariant losses) it turns float rounding
noise into steps of the learning rate (measured: up to 4e-3 after 12 iterations), while SGD keeps them 0.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from fastreid_dmf.engine.launch import choose_backend, torchrun_world
from tests.modeling.text_fixtures import make_text_encoder
from tests.shared import REPO

TINY = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3",
        "MODEL.BACKBONE.FEAT_DIM", "48", "SOLVER.WARMUP_ITERS", "1", "TEST.IMS_PER_BATCH", "64",
        "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]", "SEED", "0",
        "DATASETS.TESTS", '("SynthMarket",)']
EQUAL = ["MODEL.HEADS.NORM", "syncBN", "INPUT.FLIP.ENABLED", "False", "INPUT.PADDING.ENABLED", "False",
         "SOLVER.OPT", "SGD", "SOLVER.BASE_LR", "0.01"]
PRETRAIN = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")
FINETUNE = os.path.join(REPO, "configs", "demo", "dmf_finetune.yml")
MMET_PRETRAIN = os.path.join(REPO, "configs", "demo", "mmet_pretrain.yml")


def _run(prefix, out, root, *extra, config=PRETRAIN):
    env = {**os.environ, "FASTREID_DATASETS": str(root), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [*prefix, os.path.join(REPO, "tools", "train_net.py"), "--config-file", config, *extra, *TINY, *EQUAL,
           "OUTPUT_DIR", str(out)]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def _logged_losses(out):
    """``{iteration: {loss name: value}}`` from fast-reid's metrics.json (losses averaged over processes)."""
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    return {row["iteration"]: {k: v for k, v in row.items() if k.startswith("loss") or k == "total_loss"}
            for row in rows}


def _largest_weight_difference(first, second):
    a = torch.load(first / "model_final.pth", weights_only=True)["model"]
    b = torch.load(second / "model_final.pth", weights_only=True)["model"]
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a if a[k].is_floating_point())


def _assert_same_training(one, two):
    """Same logged losses (1e-5) and final weights (1e-5) for a 1-process and a 2-process run."""
    losses_one, losses_two = _logged_losses(one), _logged_losses(two)
    assert losses_one.keys() == losses_two.keys()
    assert any("loss_triplet" in losses for losses in losses_one.values())
    for iteration, losses in losses_one.items():
        assert losses.keys() == losses_two[iteration].keys(), iteration
        for name, value in losses.items():
            assert losses_two[iteration][name] == pytest.approx(value, abs=1e-5), (iteration, name)
    assert _largest_weight_difference(one, two) < 1e-5


@pytest.fixture(scope="module")
def one_process_run(tiny_benchmark_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "run"
    return out, _run([sys.executable], out, tiny_benchmark_root)


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
    files = set(os.listdir(out))
    # one of each output; rank 1 leaves only fast-reid's per-process debug log
    assert {name for name in files if "rank" in name} == {"log.txt.rank1"}
    assert len([name for name in files if name.startswith("events.out.tfevents")]) == 1
    assert {"metrics.json", "last_checkpoint", "model_final.pth", "results.json"} <= files
    assert json.loads((out / "results.json").read_text()) == results  # written once, by rank 0


def test_two_processes_pretrain_like_one_process_on_the_same_global_batch(one_process_run, two_process_run):
    # (not the test metrics: this barely trained model's test features are near ties, which weight
    # differences of 1e-6 reorder; the evaluation itself is compared on one checkpoint below)
    _assert_same_training(one_process_run[0], two_process_run[0])


def test_each_process_writes_its_own_text_cache_shards(one_process_run, two_process_run):
    def cached_texts(out, rank):
        shards = sorted((out / "text_feature_cache").glob(f"*/shard-r{rank:03d}-*.pt"))
        assert shards, f"no text-cache shard of rank {rank} in {out}"
        return [text for shard in shards for text in torch.load(shard, weights_only=True)["texts"]]

    (one, _), (two, _) = one_process_run, two_process_run
    per_rank = [cached_texts(two, rank) for rank in (0, 1)]
    assert not list((one / "text_feature_cache").glob("*/shard-r001-*.pt"))
    assert len(list((two / "text_feature_cache").glob("*/manifest.json"))) == 1
    # together the two processes encoded the descriptions the one process encoded (the same global batches)
    assert set(per_rank[0]) | set(per_rank[1]) == set(cached_texts(one, 0))


def test_two_processes_finetune_like_one_process(one_process_run, tiny_benchmark_root, tmp_path):
    pretrained, _ = one_process_run
    opts = ["MODEL.WEIGHTS", str(pretrained / "model_final.pth"), "DATASETS.NAMES", '("SynthMarket",)']
    _run([sys.executable], tmp_path / "one", tiny_benchmark_root, *opts, config=FINETUNE)
    _run([sys.executable], tmp_path / "two", tiny_benchmark_root, "--num-gpus", "2", *opts, config=FINETUNE)
    _assert_same_training(tmp_path / "one", tmp_path / "two")


def test_two_processes_pretrain_mmet_like_one_process(tiny_benchmark_root, tmp_path):
    # MMET's text encoder is trained: its dropout draws other masks in each process, so it is switched off
    # here; ITM is off too: its mismatched pairs are drawn within each process's shard.
    text_encoder = make_text_encoder(str(tmp_path / "bert"), "bert")
    config = json.loads((tmp_path / "bert" / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (tmp_path / "bert" / "config.json").write_text(json.dumps(config))
    opts = ["MODEL.DMF.TEXT_ENCODER.NAME", text_encoder, "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", "32",
            "MODEL.MMET.FUSION.DEPTH", "1", "MODEL.MMET.FUSION.NUM_HEADS", "3", "MODEL.MMET.LOSSES.ITM", "0.0"]
    _run([sys.executable], tmp_path / "one", tiny_benchmark_root, *opts, config=MMET_PRETRAIN)
    _run([sys.executable], tmp_path / "two", tiny_benchmark_root, "--num-gpus", "2", *opts, config=MMET_PRETRAIN)
    _assert_same_training(tmp_path / "one", tmp_path / "two")
    logged = set().union(*_logged_losses(tmp_path / "two").values())
    assert {"loss_contrastive", "loss_mm_mlm", "loss_mm_mim"} <= logged, logged


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
