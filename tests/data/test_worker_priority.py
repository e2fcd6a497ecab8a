"""The train loader's worker processes run DATALOADER.WORKER_NICENESS steps nicer; what they read is unchanged."""

import os

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from fastreid_dmf.config import check_dmf_config, load_config
from fastreid_dmf.data.build import deprioritize_workers, worker_niceness
from tests.shared import REPO

PRETRAIN = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")
CALLED = "FASTREID_DMF_TEST_INIT_CALLED"


class _Niceness(Dataset):
    """Item i: (i, a torch random number, the niceness of the process reading it, whether the old init ran)."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return index, float(torch.rand(())), os.getpriority(os.PRIO_PROCESS, 0), os.environ.get(CALLED) == "1"


def _previous_init(worker_id):
    os.environ[CALLED] = "1"


def _read(niceness, init=None):
    loader = DataLoader(_Niceness(), batch_size=None, num_workers=1, worker_init_fn=init,
                        generator=torch.Generator().manual_seed(0))
    assert deprioritize_workers(loader, niceness) is loader
    return list(loader)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no os.nice on this platform")
def test_workers_run_nicer_and_read_the_same_items():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    plain = _read(0)
    nicer = _read(19, _previous_init)
    assert {row[2] for row in plain} == {base}
    assert {row[2] for row in nicer} == {min(base + 19, 19)}
    assert all(row[3] for row in nicer), "the loader's own worker_init_fn still runs"
    assert [row[:2] for row in plain] == [row[:2] for row in nicer], "same items, same worker random numbers"
    assert os.getpriority(os.PRIO_PROCESS, 0) == base, "the training process keeps its priority"


def test_a_loader_without_workers_is_left_alone():
    loader = DataLoader(_Niceness(), batch_size=None, num_workers=0)
    assert deprioritize_workers(loader, 19).worker_init_fn is None


def test_default_and_range_are_checked():
    assert load_config(PRETRAIN, []).DATALOADER.WORKER_NICENESS == 19
    check_dmf_config(load_config(PRETRAIN, ["DATALOADER.WORKER_NICENESS", "0"]))
    for bad in ("-1", "20"):
        with pytest.raises(ValueError, match=r"DATALOADER\.WORKER_NICENESS=.*from 0"):
            check_dmf_config(load_config(PRETRAIN, ["DATALOADER.WORKER_NICENESS", bad]))


def test_only_cpu_training_lowers_the_workers_priority():
    cfg = load_config(PRETRAIN, [])
    assert worker_niceness(cfg) == 19
    cfg.defrost()
    cfg.MODEL.DEVICE = "cuda"
    assert worker_niceness(cfg) == 0
