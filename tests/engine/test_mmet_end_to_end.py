"""Tiny MMET pre-training (three tasks, MMM) -> fine-tuning -> cross-domain testing through DefaultTrainer."""

import argparse
import itertools
import os

import pytest
import torch

from fastreid_dmf.engine import DMFTrainer, setup_cfg
from fastreid_dmf.multimodal_batch import IMAGE, PAIR, TEXT, decode_index
from tests.modeling.text_fixtures import make_text_encoder
from tests.shared import REPO

TINY = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3",
        "MODEL.MMET.FUSION.DEPTH", "1", "MODEL.MMET.FUSION.NUM_HEADS", "3", "MODEL.DMF.TEXT_ENCODER.MAX_TOKENS", "32",
        "SOLVER.WARMUP_ITERS", "1", "TEST.EVAL_PERIOD", "2", "DATASETS.TESTS", '("SynthMarket", "SynthMSMT")',
        "TEST.IMS_PER_BATCH", "64"]


def _args(config: str, *opts: str) -> argparse.Namespace:
    return argparse.Namespace(config_file=os.path.join(REPO, "configs", "demo", config), opts=list(opts),
                              resume=False, eval_only=False, num_gpus=1)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_text_encoder(str(tmp_path_factory.mktemp("bert")), "bert")


@pytest.fixture(scope="module")
def pretrained(tiny_datasets, tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("mmet_pretrain")
    cfg = setup_cfg(_args("mmet_pretrain.yml", *TINY, "MODEL.DMF.TEXT_ENCODER.NAME", tiny_bert,
                          "OUTPUT_DIR", str(out)))
    trainer = DMFTrainer(cfg)
    trainer.resume_or_load(resume=False)
    tasks = []
    forward = trainer.model.forward

    def recording_forward(batch):
        if trainer.model.training:
            tasks.append({int(m) for m in batch["modalities"]})
        return forward(batch)

    trainer.model.forward = recording_forward
    results = trainer.train()
    sampler = trainer._trainer.data_loader.batch_sampler.sampler
    return out, results, tasks, tiny_bert, sampler


def test_pretraining_runs_all_three_tasks_one_per_batch_and_ends_with_fastreid_metrics(pretrained):
    out, results, tasks, _, sampler = pretrained
    assert set(results) == {"SynthMarket", "SynthMSMT"}
    for metrics in results.values():
        for name in ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP"):
            assert 0.0 <= metrics[name] <= 100.0
    assert os.path.isfile(out / "model_final.pth")
    assert all(len(task) == 1 for task in tasks), "a batch holds one task"
    stream = itertools.islice(iter(sampler), 16 * len(tasks))
    drawn = [decode_index(index, sampler.num_items)[1] for index in stream][::16]
    assert [task.pop() for task in tasks] == drawn, "the model saw the task sampler's tasks, in order"
    assert set(drawn) <= {IMAGE, TEXT, PAIR} and len(set(drawn)) >= 2


def test_finetuning_loads_the_pretrained_mmet_and_evaluates_image_features(pretrained, tmp_path):
    out, _, _, tiny_bert, _ = pretrained
    weights = str(out / "model_final.pth")
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)["model"]
    cfg = setup_cfg(_args("mmet_finetune.yml", *TINY, "SOLVER.IMS_PER_BATCH", "8", "MODEL.WEIGHTS", weights,
                          "MODEL.DMF.TEXT_ENCODER.NAME", tiny_bert, "OUTPUT_DIR", str(tmp_path / "finetune")))
    trainer = DMFTrainer(cfg)
    trainer.resume_or_load(resume=False)
    state = trainer.model.state_dict()
    loaded = [k for k in checkpoint if k != "heads.weight"]
    assert loaded and all(torch.equal(state[k], checkpoint[k]) for k in loaded)
    results = trainer.train()
    assert set(results) == {"SynthMarket", "SynthMSMT"}


def test_text_tasks_on_a_dataset_without_descriptions_fail_before_training(tiny_datasets, tiny_bert, tmp_path):
    cfg = setup_cfg(_args("mmet_pretrain.yml", *TINY, "MODEL.DMF.TEXT_ENCODER.NAME", tiny_bert,
                          "DATASETS.NAMES", '("SynthMarket",)', "OUTPUT_DIR", str(tmp_path)))
    with pytest.raises(ValueError, match="DATALOADER.TASK_WEIGHTS"):
        DMFTrainer(cfg)
    assert not any(name.endswith(".pth") for name in os.listdir(tmp_path))


def test_mask_ratio_outside_zero_one_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(ValueError, match="MODEL.MMET.MASK.IMAGE_RATIO"):
        setup_cfg(_args("mmet_pretrain.yml", *TINY, "MODEL.MMET.MASK.IMAGE_RATIO", "1.0",
                        "OUTPUT_DIR", str(tmp_path / "out")))


def test_dvae_target_without_weights_is_refused_before_anything_is_built(tmp_path):
    with pytest.raises(ValueError, match="MODEL.MMET.MIM.DVAE_PATH"):
        setup_cfg(_args("mmet_pretrain.yml", *TINY, "MODEL.MMET.MIM.TARGET", "dvae",
                        "OUTPUT_DIR", str(tmp_path / "out")))
