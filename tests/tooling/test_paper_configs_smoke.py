"""Every paper-table config trains and tests for a few iterations on look-alike data in the real layouts.

One module-scoped run (pre-training configs first, so the fine-tuning configs
load the checkpoints those wrote), then one assertion set per config. DMF and
MMET configs alike (MMET shrunk and without its FLAVA folder, see
``fastreid_dmf.tooling.smoke``); the six MMET configs add about a minute.
"""

import math
import os

import pytest
import torch

from fastreid_dmf.config import load_config
from fastreid_dmf.tooling.paper_tables import PAPER_ROWS, PRETRAIN_CONFIGS, output_dir_of, paper_configs, paper_table
from fastreid_dmf.tooling.smoke import SMOKE_TEXT_ENCODER, run_smoke_suite, smoke_overrides
from fastreid_dmf.tooling.synthetic.lookalike_trees import generate_real_layout_trees
from tests.shared import REPO

CONFIGS = paper_configs()
#: Fine-tuning configs (DMF rows with pre-training, and every MMET config of a row).
FINE_TUNING = [r.config for r in PAPER_ROWS if r.label != "no pre-training"] + [r.mmet for r in PAPER_ROWS if r.mmet]
MMET_PRETRAIN = "configs/FineGPR/mmet_pretrain.yml"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    base = tmp_path_factory.mktemp("paper_smoke")
    root = str(base / "datasets")
    generate_real_layout_trees(root)
    workdir = str(base / "runs")
    outcomes = run_smoke_suite([os.path.join(REPO, c) for c in CONFIGS], workdir, datasets_root=root)
    return workdir, {os.path.relpath(o.config, REPO): o for o in outcomes}


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_and_tests_on_every_target(smoke, config):
    _, outcomes = smoke
    outcome = outcomes[config]
    assert outcome.ok, outcome.error

    cfg = load_config(os.path.join(REPO, config))
    assert list(outcome.results) == list(cfg.DATASETS.TESTS)
    for metrics in outcome.results.values():
        assert 0.0 <= metrics["Rank-1"] <= 100.0 and math.isfinite(metrics["mAP"])
    assert os.path.isfile(os.path.join(outcome.output_dir, "results.json"))
    assert os.path.isfile(os.path.join(outcome.output_dir, "model_final.pth"))


@pytest.mark.parametrize("config", FINE_TUNING)
def test_fine_tuning_run_loaded_its_pretraining_checkpoint(smoke, config):
    workdir, outcomes = smoke
    outcome = outcomes[config]
    assert outcome.ok, outcome.error
    with open(os.path.join(outcome.output_dir, "log.txt"), encoding="utf-8") as handle:
        log = handle.read()
    weights_dir = os.path.dirname(load_config(os.path.join(REPO, config)).MODEL.WEIGHTS)
    pretrain_dirs = [output_dir_of(os.path.join(REPO, c)) for c in PRETRAIN_CONFIGS]
    assert weights_dir in pretrain_dirs
    assert (f"from {os.path.join(workdir, weights_dir)}/model_final.pth; 1 skipped by MODEL.DMF.SKIP_LOAD_KEYS, 0 of "
            "the wrong shape and 0 missing") in log, "fine-tuning did not load every stage-I tensor but the classifier"
    assert "heads.weight" in log  # re-initialised classifier is named in the log


def test_mmet_pretraining_ran_mmm_on_the_task_sampler_and_saved_every_encoder(smoke):
    _, outcomes = smoke
    outcome = outcomes[MMET_PRETRAIN]
    assert outcome.ok, outcome.error
    with open(os.path.join(outcome.output_dir, "log.txt"), encoding="utf-8") as handle:
        log = handle.read()
    assert "Using training sampler TaskIdentitySampler" in log and "with Masked Multimodal Modeling" in log
    assert any(f"{name}:" in log for name in ("loss_mim", "loss_mlm", "loss_mm_mim", "loss_mm_mlm"))
    state = torch.load(os.path.join(outcome.output_dir, "model_final.pth"), map_location="cpu",
                       weights_only=True)["model"]
    for part in ("backbone.image_encoder.", "backbone.text_encoder.", "backbone.fusion.", "mlm_head.", "itm_head."):
        assert any(k.startswith(part) for k in state), part


def test_smoke_overrides_shrink_mmet_and_replace_the_flava_folder(tmp_path):
    cfg = load_config(os.path.join(REPO, MMET_PRETRAIN))
    assert cfg.MODEL.MMET.FLAVA_PATH  # the paper config starts from FLAVA
    opts = smoke_overrides(cfg, str(tmp_path), str(tmp_path / "vit.pth"))
    shrunk = load_config(os.path.join(REPO, MMET_PRETRAIN), opts)
    assert shrunk.MODEL.MMET.FLAVA_PATH == "" and shrunk.MODEL.DMF.TEXT_ENCODER.NAME == SMOKE_TEXT_ENCODER
    assert shrunk.MODEL.BACKBONE.FEAT_DIM == shrunk.MODEL.DMF.EMBED_DIM == 64
    assert (shrunk.MODEL.MMET.FUSION.DEPTH, shrunk.MODEL.MMET.FUSION.NUM_HEADS) == (2, 2)
    assert shrunk.MODEL.DMF.LN_EPS == cfg.MODEL.DMF.LN_EPS == 1e-12
    assert shrunk.MODEL.MMET.MASK == cfg.MODEL.MMET.MASK and shrunk.MODEL.MMET.MIM == cfg.MODEL.MMET.MIM
    assert shrunk.DATALOADER.SAMPLER_TRAIN == "TaskIdentitySampler"


def test_collected_tables_have_our_numbers_for_every_run(smoke):
    workdir, _ = smoke
    for table in sorted({r.table for r in PAPER_ROWS}):
        lines = paper_table(table, base_dir=workdir, repo_dir=REPO).splitlines()
        headers = [c.strip() for c in lines[0].strip("|").split("|")]
        if table != "Table 1":
            assert "MMET ours" in headers
        for line in lines[2:]:
            cells = [c.strip() for c in line.strip("|").split("|")]
            ours = [c for h, c in zip(headers, cells) if h.endswith(" ours")]
            assert ours and all(c != "-" for c in ours), f"{table}: missing results in {line}"
    assert any(line.startswith("| MMET ") for line in paper_table("Table 1", base_dir=workdir,
                                                                   repo_dir=REPO).splitlines())
