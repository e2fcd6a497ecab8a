"""Whole runs through ``tools/train_net.py``: exact resume after SIGKILL, --eval-only safety, exit code 1."""

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fastreid_dmf.engine.cli import run_cli
from fastreid_dmf.engine.trainer import train_or_eval
from tests.shared import REPO

TRAIN_NET = os.path.join(REPO, "tools", "train_net.py")
PRETRAIN = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")
TINY = ["SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4", "DATALOADER.NUM_WORKERS", "0",
        "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3", "MODEL.BACKBONE.FEAT_DIM",
        "48", "SOLVER.WARMUP_ITERS", "1", "DATASETS.TESTS", '("SynthMarket",)', "TEST.IMS_PER_BATCH", "64",
        "SEED", "0"]



def _train_net(*args: str) -> list[str]:
    return [sys.executable, TRAIN_NET, "--config-file", PRETRAIN, *args]


def _env(root) -> dict:
    return {**os.environ, "FASTREID_DATASETS": str(root)}


def _models(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def uninterrupted(tiny_datasets, tmp_path_factory):
    """A 6-epoch run with a checkpoint every epoch and evaluation every 2."""
    out = tmp_path_factory.mktemp("uninterrupted")
    opts = [*TINY, "SOLVER.MAX_EPOCH", "6", "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "2"]
    subprocess.run(_train_net(*opts, "OUTPUT_DIR", str(out)), env=_env(tiny_datasets), check=True,
                   capture_output=True, timeout=600)
    return out, opts


def test_kill_and_resume_gives_a_bit_identical_final_model(uninterrupted, tiny_datasets, tmp_path):
    full, opts = uninterrupted
    out = tmp_path / "killed"
    process = subprocess.Popen(_train_net(*opts, "OUTPUT_DIR", str(out)), env=_env(tiny_datasets),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (out / "model_0001.pth").exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    assert (out / "model_0001.pth").exists() and not (out / "model_final.pth").exists(), "killed mid-run"
    resumed = subprocess.run(_train_net("--resume", *opts, "OUTPUT_DIR", str(out)), env=_env(tiny_datasets),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    log = (out / "log.txt").read_text()
    assert "Resumed the training sampler after" in log and "Starting training from epoch 0" not in log.split(
        "Resuming from")[-1]
    expected, actual = _models(full / "model_final.pth"), _models(out / "model_final.pth")
    assert expected.keys() == actual.keys()
    assert [k for k in expected if not torch.equal(expected[k], actual[k])] == []


def test_resuming_a_finished_run_evaluates_instead_of_crashing(uninterrupted, tiny_datasets, tmp_path):
    import shutil

    full, opts = uninterrupted
    out = tmp_path / "finished"
    shutil.copytree(full, out)
    done = subprocess.run(_train_net("--resume", *opts, "OUTPUT_DIR", str(out)), env=_env(tiny_datasets),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training is complete" in (out / "log.txt").read_text()


def _args(*opts: str, eval_only: bool = False, resume: bool = False) -> argparse.Namespace:
    return argparse.Namespace(config_file=PRETRAIN, opts=list(opts), resume=resume, eval_only=eval_only, num_gpus=1)


def test_eval_only_without_weights_is_refused(tiny_datasets, tmp_path):
    with pytest.raises(ValueError, match="--eval-only needs MODEL.WEIGHTS.*MODEL.DMF.EVAL_UNTRAINED"):
        train_or_eval(_args(*TINY, "OUTPUT_DIR", str(tmp_path), eval_only=True))


def test_eval_only_of_a_random_init_runs_when_asked_for(tiny_datasets, tmp_path):
    results = train_or_eval(_args(*TINY, "MODEL.DMF.EVAL_UNTRAINED", "True", "OUTPUT_DIR", str(tmp_path),
                                  eval_only=True))
    assert set(results) == {"SynthMarket"} and (tmp_path / "results.json").is_file()


def test_eval_only_in_a_training_folder_rewrites_none_of_its_files(uninterrupted, tiny_datasets, tmp_path):
    import shutil

    full, opts = uninterrupted
    out = tmp_path / "run"
    shutil.copytree(full, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    results = train_or_eval(_args(*opts, "MODEL.WEIGHTS", str(out / "model_final.pth"), "OUTPUT_DIR", str(out),
                                  eval_only=True))
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before
    assert (out / "eval_1" / "results.json").is_file() and (out / "eval_1" / "config.yaml").is_file()
    assert set(results) == {"SynthMarket"}


def test_eval_only_with_weights_of_another_width_is_refused(uninterrupted, tiny_datasets, tmp_path):
    full, opts = uninterrupted
    with pytest.raises(ValueError, match="does not fit this model.*of another shape"):
        train_or_eval(_args(*opts, "MODEL.DMF.EMBED_DIM", "96", "MODEL.BACKBONE.FEAT_DIM", "96", "MODEL.WEIGHTS",
                            str(full / "model_final.pth"), "OUTPUT_DIR", str(tmp_path), eval_only=True))


def _bad_inputs(tmp_path) -> dict[str, tuple[list[str], bool, str]]:
    (tmp_path / "notes.txt").write_text("not a folder")
    (tmp_path / "weights.pth").write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))
    return {
        "num_instance_0": (["DATALOADER.NUM_INSTANCE", "0"], False, "DATALOADER.NUM_INSTANCE=0"),
        "max_epoch_0": (["SOLVER.MAX_EPOCH", "0"], False, "SOLVER.MAX_EPOCH=0"),
        "ims_per_batch_0": (["SOLVER.IMS_PER_BATCH", "0"], False, "SOLVER.IMS_PER_BATCH=0"),
        "jpeg_as_weights": (["MODEL.WEIGHTS", str(tmp_path / "weights.pth")], True, "not a PyTorch checkpoint"),
        "output_below_a_file": (["OUTPUT_DIR", str(tmp_path / "notes.txt" / "run")], False, "below a regular file"),
        "unwritable_output": (["OUTPUT_DIR", "/sys/fastreid_dmf_test_out"], False, "cannot be created"),
        "unregistered_name": (["DATASETS.NAMES", '("SynthMarkt",)'], False, "'SynthMarkt' is not; registered:"),
        "unregistered_test": (["DATASETS.TESTS", '("VTestReId",)'], False, "'VTestReId' is not; registered:"),
    }


@pytest.mark.parametrize("case", ["num_instance_0", "max_epoch_0", "ims_per_batch_0", "jpeg_as_weights",
                                  "output_below_a_file", "unwritable_output", "unregistered_name",
                                  "unregistered_test"])
def test_bad_input_ends_with_exit_code_1_and_one_line(case, tiny_datasets, tmp_path, capsys):
    opts, eval_only, message = _bad_inputs(tmp_path)[case]
    args = _args(*TINY, "SOLVER.MAX_EPOCH", "2", "OUTPUT_DIR", str(tmp_path / "out"), *opts, eval_only=eval_only)
    with pytest.raises(SystemExit) as info:
        run_cli(lambda: train_or_eval(args), prog="train_net.py")
    assert info.value.code == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("train_net.py: error: ") and message in last


def test_a_bad_input_in_a_real_process_exits_with_1_not_134(tiny_datasets, tmp_path):
    done = subprocess.run(_train_net(*TINY, "SOLVER.MAX_EPOCH", "2", "DATASETS.TESTS", '("Nope",)',
                                     "OUTPUT_DIR", str(tmp_path)), env=_env(tiny_datasets), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("train_net.py: error: config DATASETS.TESTS=")
