"""Bad dataset names, batch/epoch/loader numbers and schedules are refused by the config check, before any data loads.

Each refusal is a one-line ValueError naming the key, the value and what was expected.
"""

import argparse
import os
import types

import pytest
import torch
from fastreid.config import get_cfg

from fastreid_dmf.config import add_dmf_config, check_dmf_config, load_config
from fastreid_dmf.engine.trainer import setup_cfg
from tests.shared import REPO

PRETRAIN = os.path.join(REPO, "configs", "demo", "dmf_pretrain.yml")  # MultimodalIdentitySampler, CosineAnnealingLR


def _cfg(*opts, config: str | None = PRETRAIN):
    if config:
        return load_config(config, opts)
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list(list(opts))
    return cfg


def _refused(cfg, *fragments: str) -> str:
    """check_dmf_config raises a one-line ValueError holding every fragment; returns the message."""
    with pytest.raises(ValueError) as info:
        check_dmf_config(cfg)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- dataset names


def test_typo_in_test_datasets_is_refused_by_setup_before_anything_is_written_or_loaded(tmp_path):
    out = tmp_path / "run"
    args = argparse.Namespace(config_file=PRETRAIN, opts=["DATASETS.TESTS", '("SynthMarkt", "VTestReID")',
                                                          "OUTPUT_DIR", str(out)],
                              resume=False, eval_only=False, num_gpus=1)
    with pytest.raises(ValueError) as info:
        setup_cfg(args)  # nothing is trained: the check runs before the output folder, data or model exist
    message = str(info.value)
    assert message.startswith("config DATASETS.TESTS=('SynthMarkt', 'VTestReID'): expected dataset names registered")
    assert "'SynthMarkt' is not; registered: " in message and "\n" not in message
    registered = message.split("registered: ")[-1].split(", ")
    assert registered == sorted(registered)
    for name in ("Market1501", "DukeMTMC", "MSMT17", "SynthMarket", "SynthMSMT", "FineGPR", "VTestReID",
                 "HeldOutValidation"):
        assert name in registered
    assert not out.exists(), "refused before OUTPUT_DIR was created"


def test_unregistered_training_dataset_is_a_value_error_listing_the_registered_names():
    message = _refused(_cfg("DATASETS.NAMES", '("FineGPR", "Market")'), "DATASETS.NAMES=('FineGPR', 'Market')",
                       "'Market' is not", "Market1501", "SynthMarket")
    assert "KeyError" not in message


def test_several_unregistered_names_are_all_named():
    _refused(_cfg("DATASETS.TESTS", '("Duke", "SynthMarket", "MSMT")'), "'Duke', 'MSMT' are not")


def test_empty_training_dataset_list_is_refused():
    _refused(_cfg("DATASETS.NAMES", "()"), "DATASETS.NAMES=()", "at least one training dataset")


def test_registered_names_including_the_held_out_validation_set_pass():
    check_dmf_config(_cfg("DATASETS.NAMES", '("FineGPR", "SynthMarket")', "DATASETS.HOLDOUT.NUM_IDS", "5",
                          "DATASETS.TESTS", '("HeldOutValidation", "Market1501", "CUHK03NP")'))


# --------------------------------------------------------------------------- numbers, samplers, schedules


BAD_VALUES = [
    (["DATALOADER.NUM_INSTANCE", 0], ["DATALOADER.NUM_INSTANCE=0", ">= 1"]),
    (["SOLVER.MAX_EPOCH", 0], ["SOLVER.MAX_EPOCH=0", "positive number of epochs"]),
    (["SOLVER.IMS_PER_BATCH", 0], ["SOLVER.IMS_PER_BATCH=0", "positive training batch size"]),
    (["DATALOADER.NUM_WORKERS", -1], ["DATALOADER.NUM_WORKERS=-1", "0 (load in the main process)"]),
    (["TEST.IMS_PER_BATCH", 0], ["TEST.IMS_PER_BATCH=0", "positive test batch size"]),
    (["TEST.IMS_PER_BATCH", -64], ["TEST.IMS_PER_BATCH=-64"]),
    (["SOLVER.IMS_PER_BATCH", 66], ["SOLVER.IMS_PER_BATCH=66", "multiple of DATALOADER.NUM_INSTANCE=4",
                                    "'MultimodalIdentitySampler'"]),
    (["DATALOADER.SAMPLER_TRAIN", "RandomIdentitySampler"], ["DATALOADER.SAMPLER_TRAIN='RandomIdentitySampler'",
                                                             "NaiveIdentitySampler", "MultimodalIdentitySampler"]),
    (["SOLVER.SCHED", "StepLR"], ["SOLVER.SCHED='StepLR'", "MultiStepLR, CosineAnnealingLR"]),
    (["SOLVER.WARMUP_METHOD", "cosine"], ["SOLVER.WARMUP_METHOD='cosine'", "constant, linear, exp"]),
    (["SOLVER.WARMUP_ITERS", -1], ["SOLVER.WARMUP_ITERS=-1"]),
    (["SOLVER.DELAY_EPOCHS", 6], ["SOLVER.DELAY_EPOCHS=6", "[0, SOLVER.MAX_EPOCH=6)"]),
    (["SOLVER.DELAY_EPOCHS", -1], ["SOLVER.DELAY_EPOCHS=-1"]),
]


@pytest.mark.parametrize("opts, fragments", BAD_VALUES, ids=[f"{opts[0]}={opts[1]}" for opts, _ in BAD_VALUES])
def test_bad_value_is_refused_naming_key_value_and_expectation(opts, fragments):
    _refused(_cfg(*opts), *fragments)


@pytest.mark.parametrize("sampler", ["TrainingSampler", "NaiveIdentitySampler", "MultimodalIdentitySampler"])
def test_zero_images_per_identity_is_refused_for_every_sampler(sampler):
    _refused(_cfg("DATALOADER.SAMPLER_TRAIN", sampler, "DATALOADER.NUM_INSTANCE", 0), "DATALOADER.NUM_INSTANCE=0")


@pytest.mark.parametrize("sampler", ["NaiveIdentitySampler", "BalancedIdentitySampler"])
def test_fastreid_identity_sampler_needs_whole_identities_per_batch(sampler):
    # fast-reid's sampler would loop forever without completing a batch of 18 from identities of 4 images.
    _refused(_cfg("DATALOADER.SAMPLER_TRAIN", sampler, "SOLVER.IMS_PER_BATCH", 18),
             "SOLVER.IMS_PER_BATCH=18", f"multiple of DATALOADER.NUM_INSTANCE=4 (whole identities per batch with "
             f"DATALOADER.SAMPLER_TRAIN={sampler!r})")
    check_dmf_config(_cfg("DATALOADER.SAMPLER_TRAIN", "TrainingSampler", "SOLVER.IMS_PER_BATCH", 18))


# --------------------------------------------------------------------------- schedule vs iterations per epoch


def _fastreid_schedule_crashes(cfg, iters_per_epoch: int) -> bool:
    """Run fast-reid's own scheduler and LRScheduler hook through cfg's epochs; True on ZeroDivisionError."""
    from fastreid.engine.hooks import LRScheduler
    from fastreid.solver.build import build_lr_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    try:
        scheduler = build_lr_scheduler(cfg, optimizer, iters_per_epoch)
        hook = LRScheduler(optimizer, scheduler)
        for epoch in range(cfg.SOLVER.MAX_EPOCH):
            hook.trainer = types.SimpleNamespace(iter=(epoch + 1) * iters_per_epoch, epoch=epoch,
                                                 warmup_iters=cfg.SOLVER.WARMUP_ITERS,
                                                 delay_epochs=cfg.SOLVER.DELAY_EPOCHS)
            hook.after_epoch()  # the cosine steps here, after each epoch
    except ZeroDivisionError:
        return True
    return False


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step:UserWarning")
@pytest.mark.parametrize("sched, max_epoch, warmup, delay, iters_per_epoch, crashes", [
    ("CosineAnnealingLR", 1, 50, 0, 100, True),  # MAX_EPOCH 1, warm-up within the epoch: T_max 0
    ("CosineAnnealingLR", 3, 50, 0, 20, True),  # warm-up fills all 3 epochs
    ("CosineAnnealingLR", 3, 50, 2, 20, True),
    ("CosineAnnealingLR", 1, 0, 0, 100, False),  # no warm-up: T_max 1
    ("CosineAnnealingLR", 1, 500, 0, 10, False),  # warm-up longer than training (smoke runs): never steps
    ("CosineAnnealingLR", 4, 50, 1, 20, False),
    ("CosineAnnealingLR", 6, 50, 0, 100, False),  # the demo pre-training
    ("MultiStepLR", 1, 50, 0, 100, False),
    ("MultiStepLR", 2, 0, 0, 0, True),  # a training set smaller than one batch: fast-reid divides by 0
    ("CosineAnnealingLR", 2, 0, 0, 0, True),
])
def test_schedule_check_refuses_exactly_what_fastreid_crashes_on(sched, max_epoch, warmup, delay, iters_per_epoch,
                                                                 crashes):
    from fastreid_dmf.config.defaults import check_lr_schedule

    cfg = _cfg("SOLVER.SCHED", sched, "SOLVER.MAX_EPOCH", max_epoch, "SOLVER.WARMUP_ITERS", warmup,
               "SOLVER.DELAY_EPOCHS", delay, config=None)
    check_dmf_config(cfg)  # the static part cannot tell: it depends on the training set's size
    assert _fastreid_schedule_crashes(cfg, iters_per_epoch) is crashes
    if not crashes:
        check_lr_schedule(cfg, iters_per_epoch)
        return
    with pytest.raises(ValueError) as info:
        check_lr_schedule(cfg, iters_per_epoch)
    message = str(info.value)
    assert "\n" not in message
    if iters_per_epoch == 0:
        assert message.startswith("config SOLVER.IMS_PER_BATCH=64: expected a batch size no larger than the "
                                  "training set (it gives 0 iterations per epoch")
    else:
        assert message.startswith(f"config SOLVER.MAX_EPOCH={max_epoch}: expected more epochs than "
                                  f"SOLVER.WARMUP_ITERS={warmup} take")
        assert f"SOLVER.DELAY_EPOCHS={delay}) is 0" in message and "CosineAnnealingLR" in message


def test_training_without_a_test_set_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    args = argparse.Namespace(config_file=PRETRAIN, opts=["DATASETS.TESTS", "()", "OUTPUT_DIR", str(out)],
                              resume=False, eval_only=False, num_gpus=1)
    with pytest.raises(ValueError, match=r"DATASETS\.TESTS=\(\): training needs at least one image test set"):
        setup_cfg(args)
    assert not out.exists()
