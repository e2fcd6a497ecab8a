"""The Table 1 ablation / main-job table tool (fastreid_dmf.tooling.benchmarks.ablation)."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image

from fastreid_dmf.tooling.benchmarks.ablation import (
    VARIANTS,
    markdown_table,
    ordering_report,
    plot_chart,
    run_ablation,
    summarize,
)


def _results(**per_set):
    return {name: {"Rank-1": r1, "mAP": m} for name, (r1, m) in per_set.items()}


PER_SEED = {
    "dmf_none": {"0": _results(A=(10.0, 5.0)), "1": _results(A=(20.0, 7.0)), "2": _results(A=(30.0, 9.0))},
    "dmf_image": {"0": _results(A=(40.0, 1.0)), "1": _results(A=(40.0, 2.0)), "2": _results(A=(40.0, 3.0))},
}


def test_summary_is_mean_and_sample_std_over_seeds():
    stats = summarize(PER_SEED)["dmf_none"]["A"]["Rank-1"]
    assert stats == {"mean": 20.0, "std": 10.0, "n": 3}  # sample std of 10, 20, 30
    assert summarize(PER_SEED)["dmf_image"]["A"]["Rank-1"]["std"] == 0.0


def test_summary_refuses_seeds_tested_on_different_sets():
    with pytest.raises(ValueError, match="dmf_none"):
        summarize({"dmf_none": {"0": _results(A=(1, 1)), "1": _results(B=(1, 1))}})


def test_ordering_report_says_where_the_papers_order_breaks():
    lines = ordering_report(summarize(PER_SEED))
    assert lines[0].startswith("A Rank-1") and lines[0].endswith("holds")
    assert "does not hold" in lines[1] and "dmf_none 7.0 >= dmf_image 2.0" in lines[1]


def test_table_cells_show_mean_and_std_only_with_several_seeds():
    table = markdown_table(summarize(PER_SEED), {"dmf_none": "none"})
    assert "| none | 20.0 ± 10.0 | 7.0 ± 2.0 |" in table
    single = markdown_table(summarize({"dmf_none": {"0": _results(A=(12.34, 5.0))}}), {})
    assert "| dmf_none | 12.3 | 5.0 |" in single


def test_chart_is_a_png_with_one_panel_per_metric(tmp_path):
    path = plot_chart(summarize(PER_SEED), {}, str(tmp_path / "chart.png"))
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > image.height


def test_bad_arguments_fail_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="unknown variant"):
        run_ablation(str(tmp_path / "a"), [0], ["dmf_nothing"])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        run_ablation(str(tmp_path / "full"), [0], ["dmf_none"])
    assert (tmp_path / "full" / "keep.txt").read_text() == "user data"


TINY = ["SOLVER.MAX_EPOCH", "2", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
        "DATALOADER.NUM_WORKERS", "0", "MODEL.DMF.DEPTH", "1", "MODEL.DMF.EMBED_DIM", "48", "MODEL.DMF.NUM_HEADS", "3",
        "MODEL.BACKBONE.FEAT_DIM", "48", "SOLVER.WARMUP_ITERS", "1", "DATASETS.TESTS", '("SynthMarket",)',
        "TEST.IMS_PER_BATCH", "64", "INPUT.SIZE_TRAIN", "[64, 32]", "INPUT.SIZE_TEST", "[64, 32]"]


def test_tiny_ablation_pretrains_fine_tunes_and_reports_every_seed(tiny_benchmark_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTREID_DATASETS", str(tiny_benchmark_root))
    out = tmp_path / "ablation"
    report = run_ablation(str(out), [0, 1], ["color_histogram", "dmf_text_image"], TINY, log=lambda _: None)
    assert set(report["runs"]["dmf_text_image"]) == {"0", "1"}
    # The matcher has no seed: computed once, repeated.
    assert report["runs"]["color_histogram"]["0"] == report["runs"]["color_histogram"]["1"]
    for seed in (0, 1):
        pretrain = out / f"seed{seed}" / "pretrain_text_ratio_0.5"
        assert (pretrain / "model_final.pth").is_file()
        log = (out / f"seed{seed}" / "dmf_text_image" / "log.txt").read_text()
        assert "Loaded" in log and str(pretrain / "model_final.pth") in log
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"]["dmf_text_image"]["SynthMarket"]["mAP"]["n"] == 2
    table = (out / "table.md").read_text()
    assert "DMF, text + image pre-training" in table
    assert os.path.getsize(out / "chart.png") > 1000
    # Text-to-image: the fine-tuned model and its stage-I model, never the matcher (no text branch); the image
    # table keeps only image Re-ID sets.
    assert set(saved["text_runs"]) == {"dmf_text_image", "pretrain_text_ratio_0.5"}
    text_sets = set(saved["text_summary"]["dmf_text_image"])
    assert text_sets == {"SynthMarket (text->image)", "SynthMSMT (text->image)"}
    assert not text_sets & set(saved["summary"]["dmf_text_image"])
    assert "Text-to-image retrieval" in table and "SynthMSMT (text->image) mINP" in table
    assert "stage I, not fine-tuned" in table


def test_every_variant_config_exists():
    from fastreid_dmf.tooling.benchmarks.ablation import DEMO

    for variant in VARIANTS.values():
        assert os.path.isfile(os.path.join(DEMO, variant.config)), variant.key
        stage_one = variant.pretraining()
        if stage_one is not None:
            assert os.path.isfile(os.path.join(DEMO, stage_one[1])), variant.key


def test_mmet_row_fine_tunes_its_own_pretraining_and_dmf_rows_share_theirs():
    mmet = VARIANTS["mmet"].pretraining()
    assert mmet == ("pretrain_mmet_pretrain", "mmet_pretrain.yml", [])
    assert VARIANTS["mmet"].config == "mmet_finetune.yml"
    assert VARIANTS["dmf_text_image"].pretraining() == ("pretrain_text_ratio_0.5", "dmf_pretrain.yml",
                                                        ["DATALOADER.TEXT_RATIO", 0.5])
    assert VARIANTS["dmf_none"].pretraining() is None


def test_resume_reuses_finished_runs_without_running_them(tmp_path, monkeypatch):
    import subprocess

    finished = _results(SynthMarket=(33.0, 22.0))
    text_finished = {"SynthMarket (text->image)": {"Rank-1": 4.0, "Rank-5": 10.0, "mAP": 5.0, "mINP": 3.0}}
    for seed in (0, 1):
        for name, content in (("dmf_none", finished), ("dmf_none_text", text_finished)):
            run = tmp_path / f"seed{seed}" / name
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps(content))

    def no_run(*args, **kwargs):
        raise AssertionError(f"a finished run was started again: {args}")

    monkeypatch.setattr(subprocess, "call", no_run)
    report = run_ablation(str(tmp_path), [0, 1], ["dmf_none"], log=lambda _: None, resume=True)
    assert report["runs"]["dmf_none"] == {"0": finished, "1": finished}
    assert report["summary"]["dmf_none"]["SynthMarket"]["mAP"] == {"mean": 22.0, "std": 0.0, "n": 2}
    assert report["text_runs"]["dmf_none"] == {"0": text_finished, "1": text_finished}
