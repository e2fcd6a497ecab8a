"""Text-to-image retrieval: fast-reid's metrics without the camera rule, the bundled descriptions, the trainer's
``DATASETS.TEXT_TESTS`` results, and the config checks."""

import json
import os
import shutil

import numpy as np
import pytest

from fastreid_dmf.config import check_dmf_config, load_config
from fastreid_dmf.data.datasets import SynthMarket, SynthMSMT
from fastreid_dmf.data.test_descriptions import read_test_descriptions
from fastreid_dmf.engine.inference import check_description_lengths, load_inference_model
from fastreid_dmf.evaluation.text_to_image import RESULT_SUFFIX, load_text_to_image_set, text_to_image_metrics
from tests.shared import DEMO_CONFIGS


def test_metrics_match_a_hand_computation_and_keep_same_camera_matches():
    # Every gallery image has camera 0: fast-reid's image rule would drop same-camera matches, a text query keeps all.
    gallery_pids = np.array([1, 2, 1, 3])
    distmat = np.array([[0.1, 0.2, 0.3, 0.4],    # pid 1: matches at ranks 1 and 3 -> AP (1 + 2/3) / 2, INP 2/3
                        [0.1, 0.5, 0.2, 0.3]])   # pid 2: match at rank 4 -> AP 1/4, INP 1/4
    results = text_to_image_metrics(distmat, np.array([1, 2]), gallery_pids, np.zeros(4, dtype=int))
    assert results["Rank-1"] == pytest.approx(50.0)
    assert results["Rank-5"] == pytest.approx(100.0)
    assert results["mAP"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 4) / 2)
    assert results["mINP"] == pytest.approx(100 * (2 / 3 + 1 / 4) / 2)
    assert results["metric"] == pytest.approx((results["mAP"] + results["Rank-1"]) / 2)


def test_metrics_refuse_a_distance_matrix_of_another_shape():
    with pytest.raises(ValueError, match="distance matrix"):
        text_to_image_metrics(np.zeros((2, 3)), np.array([1, 2]), np.array([1, 2]), np.zeros(2))


@pytest.mark.parametrize("cls", [SynthMarket, SynthMSMT])
def test_bundled_sets_ask_one_description_per_query_identity(tiny_datasets, cls):
    data = cls(root=str(tiny_datasets))
    descriptions = read_test_descriptions(os.path.join(data.tree_folder, "descriptions.json"))
    queries = data.text_queries
    query_pids = sorted({int(item[1]) for item in data.query})
    assert [pid for _, pid in queries] == query_pids
    for text, pid in queries:
        first = min(os.path.relpath(item[0], data.tree_folder) for item in data.query if int(item[1]) == pid)
        assert text == descriptions[first.replace(os.sep, "/")]
        # every gallery image of that identity carries the same description (attributes belong to the identity)
        gallery = [os.path.relpath(item[0], data.tree_folder) for item in data.gallery if int(item[1]) == pid]
        assert gallery and {descriptions[g.replace(os.sep, "/")] for g in gallery} == {text}


def test_descriptions_never_cover_distractors_or_junk(tiny_datasets):
    names = read_test_descriptions(os.path.join(str(tiny_datasets), "synth_market", "descriptions.json"))
    assert names and not [n for n in names if os.path.basename(n).startswith(("0000_", "-1_"))]


def test_a_tree_without_descriptions_names_the_file_and_the_fix(tiny_benchmark_root, tmp_path):
    shutil.copytree(tiny_benchmark_root / "synth_market", tmp_path / "synth_market")
    os.remove(tmp_path / "synth_market" / "descriptions.json")
    with pytest.raises(FileNotFoundError, match=r"descriptions\.json.*make_demo_data\.py.*--overwrite"):
        _ = SynthMarket(root=str(tmp_path)).text_queries


def test_a_malformed_descriptions_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "descriptions.json"
    path.write_text(json.dumps({"format": "something else", "descriptions": {}}))
    with pytest.raises(ValueError, match="descriptions.json.*expected a JSON object"):
        read_test_descriptions(str(path))


def test_trainer_scores_text_tests_beside_image_tests(tiny_datasets, inference_run):
    from fastreid_dmf.engine.trainer import DMFTrainer

    _, checkpoint = inference_run("DMF")
    cfg, model = load_inference_model(checkpoint, opts=["DATASETS.TESTS", ("SynthMarket",), "DATASETS.TEXT_TESTS",
                                                        ("SynthMarket", "SynthMSMT"), "DATALOADER.NUM_WORKERS", 0])
    results = DMFTrainer.test(cfg, model)
    assert list(results) == ["SynthMarket", "SynthMarket" + RESULT_SUFFIX, "SynthMSMT" + RESULT_SUFFIX]
    for key in list(results)[1:]:
        metrics = results[key]
        assert set(metrics) == {"Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric"}
        assert all(0.0 <= value <= 100.0 for value in metrics.values())
        assert metrics["Rank-1"] <= metrics["Rank-5"] <= metrics["Rank-10"]


def test_text_set_gallery_is_the_image_gallery(tiny_datasets):
    cfg = load_config(os.path.join(DEMO_CONFIGS, "dmf_pretrain.yml"))
    test_set = load_text_to_image_set(cfg, "SynthMarket")
    assert test_set.gallery == SynthMarket(root=str(tiny_datasets)).gallery
    assert len(test_set.queries) == len({pid for _, pid in test_set.queries})


@pytest.mark.parametrize("opts, key, message", [
    (["DATASETS.TESTS", ("CUHKPEDES",)], "DATASETS.TESTS", "list it in DATASETS.TEXT_TESTS"),
    (["DATASETS.TEXT_TESTS", ("VTestReID",)], "DATASETS.TEXT_TESTS", "'VTestReID' has none"),
    (["DATASETS.TEXT_TESTS", ("NoSuchSet",)], "DATASETS.TEXT_TESTS", "not registered|registered"),
    (["DATASETS.TEXT_TESTS", ("SynthMarket",), "MODEL.DMF.TEXT_ENCODER.NAME", ""], "MODEL.DMF.TEXT_ENCODER.NAME",
     "text encoder for DATASETS.TEXT_TESTS"),
    (["DATASETS.TEXT_TESTS", ("SynthMarket",), "MODEL.META_ARCHITECTURE", "ColorHistogramMatcher"],
     "DATASETS.TEXT_TESTS", "no text branch"),
    (["DATASETS.TEXT_SPLIT", "train"], "DATASETS.TEXT_SPLIT", "'test' or 'val'"),
])
def test_bad_text_test_settings_are_refused_naming_the_key(opts, key, message):
    cfg = load_config(os.path.join(DEMO_CONFIGS, "dmf_pretrain.yml"), opts)
    with pytest.raises(ValueError, match=rf"config {key}=.*({message})"):
        check_dmf_config(cfg)


def test_description_longer_than_max_tokens_is_refused(inference_run):
    _, checkpoint = inference_run("DMF")
    _, model = load_inference_model(checkpoint)
    check_description_lengths(model, ["a man in a red jacket"])
    long_text = "a man in a red jacket and black trousers " * 10
    with pytest.raises(ValueError, match=r"tokens, more than MODEL.DMF.TEXT_ENCODER.MAX_TOKENS=32"):
        check_description_lengths(model, [long_text])
    with pytest.raises(ValueError, match="empty description"):
        check_description_lengths(model, ["  "])
