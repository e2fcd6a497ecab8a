"""Checkpoint files: weights_only reads, clear errors, atomic writes under SIGKILL, resume fallback, strict loading."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from fastreid.utils.checkpoint import Checkpointer
from torch import nn

from fastreid_dmf.engine.checkpoint import (
    CheckpointReadError,
    load_weights_strict,
    read_checkpoint,
    resumable_checkpoint,
)
from tests.shared import REPO


class _RunsCodeWhenUnpickled:
    """Unpickling calls ``open(marker, "w")``: a stand-in for a malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 3))


def test_checkpointer_never_unpickles_code_even_when_torch_is_told_to(tmp_path, monkeypatch):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"model": _mlp(8).state_dict(), "payload": _RunsCodeWhenUnpickled(str(marker))}, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(CheckpointReadError, match="refusing to unpickle"):
        Checkpointer(_mlp(8)).load(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"epoch,loss\n0,1.5\n", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)],
                         ids=["text", "jpeg"])
def test_a_file_that_is_not_a_checkpoint_gives_one_clear_error(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match="not a PyTorch checkpoint") as info:
        read_checkpoint(str(path))
    assert "weights_only=False" not in str(info.value)


def test_a_truncated_checkpoint_gives_one_clear_error(tmp_path):
    path = tmp_path / "model_0001.pth"
    torch.save({"model": _mlp(64).state_dict()}, path)
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(CheckpointReadError, match="truncated"):
        read_checkpoint(str(path))


def test_weights_of_another_width_are_refused_with_the_keys_listed(tmp_path):
    path = tmp_path / "narrow.pth"
    torch.save({"model": _mlp(8).state_dict()}, path)
    wide = _mlp(16)
    before = {k: v.clone() for k, v in wide.state_dict().items()}
    with pytest.raises(ValueError, match=r"3 tensor\(s\) of another shape.*0.weight \(8, 4\) in the file, \(16, 4\)"
                                         r".*MODEL.DMF.ALLOW_PARTIAL_LOAD"):
        load_weights_strict(wide, str(path))
    assert all(torch.equal(before[k], v) for k, v in wide.state_dict().items()), "nothing loaded on error"


def test_partial_loading_when_allowed_reports_true_counts(tmp_path):
    path = tmp_path / "narrow.pth"
    narrow = _mlp(8)
    torch.save({"model": narrow.state_dict()}, path)
    summary = load_weights_strict(_mlp(16), str(path), allow_partial=True)
    assert summary.loaded == ["2.bias"] and len(summary.wrong_shape) == 3 and not summary.missing
    assert summary.line(str(path)).startswith("Loaded 1 of the model's 4 tensors")


def test_skipped_and_missing_keys_are_counted_separately(tmp_path):
    path = tmp_path / "partial.pth"
    state = _mlp(8).state_dict()
    del state["0.bias"]
    torch.save({"model": {"module." + k: v for k, v in state.items()}, "optimizer": {}}, path)
    with pytest.raises(ValueError, match=r"1 tensor\(s\) missing from the file \(0.bias\)"):
        load_weights_strict(_mlp(8), str(path))
    model = _mlp(8)
    summary = load_weights_strict(model, str(path), skip_prefixes=("2.",), allow_partial=True)
    assert sorted(summary.skipped) == ["2.bias", "2.weight"] and summary.missing == ["0.bias"]
    assert summary.loaded == ["0.weight"] and torch.equal(model[0].weight, state["0.weight"])


def _save_valid(folder, name: str, value: float) -> None:
    torch.save({"model": {"w": torch.full((2,), value)}, "epoch": int(value)}, folder / name)


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path, caplog):
    _save_valid(tmp_path, "model_0000.pth", 0)
    time.sleep(0.01)
    _save_valid(tmp_path, "model_0001.pth", 1)
    time.sleep(0.01)
    _save_valid(tmp_path, "model_0002.pth", 2)
    newest = tmp_path / "model_0002.pth"
    newest.write_bytes(newest.read_bytes()[:100])  # killed while writing (pre-atomic fast-reid)
    (tmp_path / "last_checkpoint").write_text("")  # the tag was truncated too
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path / "model_0001.pth")
    assert "tag is empty" in caplog.text and "model_0002.pth" in caplog.text


def test_resume_uses_the_tagged_checkpoint_when_it_loads(tmp_path):
    _save_valid(tmp_path, "model_0000.pth", 0)
    _save_valid(tmp_path, "model_final.pth", 1)
    (tmp_path / "last_checkpoint").write_text("model_0000.pth")
    assert resumable_checkpoint(str(tmp_path)) == str(tmp_path / "model_0000.pth")


_SAVE_LOOP = """
import sys
import fastreid_dmf  # noqa: F401  (installs the safe Checkpointer)
import torch
from fastreid.utils.checkpoint import Checkpointer
model = torch.nn.Linear(1024, 2048)  # 8 MB: a save takes long enough to be killed in the middle
checkpointer = Checkpointer(model, sys.argv[1])
step = 0
while True:
    checkpointer.save(f"model_{step % 3:04d}", epoch=step)
    print(step, flush=True)
    step += 1
"""


def test_killing_a_process_while_it_saves_never_leaves_a_broken_checkpoint(tmp_path):
    """Eight SIGKILLs at random moments of a save loop: the tag and every ``.pth`` always load."""
    script = tmp_path / "save_loop.py"
    script.write_text(_SAVE_LOOP)
    out = tmp_path / "run"
    out.mkdir()
    generator = torch.Generator().manual_seed(0)
    for _ in range(8):
        process = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.PIPE, text=True,
                                   cwd=REPO)
        try:
            assert process.stdout.readline(), "the save loop did not start"
            time.sleep(float(torch.rand((), generator=generator)) * 0.5)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
        tag = (out / "last_checkpoint").read_text()
        assert tag.startswith("model_") and tag.endswith(".pth")
        for path in out.glob("*.pth"):
            assert "model" in read_checkpoint(str(path)), path
        assert resumable_checkpoint(str(out)) == str(out / tag)
        # each new writer removes the temporaries of the killed ones: at most the last kill's remains
        assert len(list(out.glob(".*.tmp"))) <= 1


def test_fastreid_backbone_pretrain_path_is_read_weights_only(tmp_path, monkeypatch):
    """fast-reid's ResNet builder calls a bare ``torch.load`` on PRETRAIN_PATH; DMFTrainer.build_model forbids code."""
    import pickle

    from fastreid.config import get_cfg

    from fastreid_dmf.config import add_dmf_config
    from fastreid_dmf.engine import DMFTrainer

    marker = tmp_path / "code_ran"
    path = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _RunsCodeWhenUnpickled(str(marker))}, path)
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_file(os.path.join(REPO, "configs", "demo", "fastreid_r18_baseline.yml"))
    cfg.merge_from_list(["MODEL.BACKBONE.PRETRAIN", "True", "MODEL.BACKBONE.PRETRAIN_PATH", str(path),
                         "MODEL.DEVICE", "cpu", "MODEL.HEADS.NUM_CLASSES", "4"])
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(pickle.UnpicklingError):
        DMFTrainer.build_model(cfg)
    assert not marker.exists()
    assert torch.load.__module__ == "torch.serialization", "torch.load restored after the block"


def test_only_temporaries_of_dead_writers_are_removed(tmp_path):
    from fastreid_dmf.fileio import remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    names = [f".model_0001.pth.{dead.pid}.tmp", f".last_checkpoint.{dead.pid}.tmp",  # removed
             f".model_0002.pth.{os.getppid()}.tmp",  # writer alive
             f".cache.json.{dead.pid}.tmp", "model_0001.pth", "notes.tmp"]  # not checkpoint temporaries
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(str(tmp_path))
    assert sorted(os.path.basename(p) for p in removed) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:])
