"""ColorHistogramMatcher: HSV stripe histograms, their Hellinger geometry, and the fast-reid META_ARCH."""

import argparse
import json
import math
import os

import numpy as np
import pytest
import torch
from fastreid.config import get_cfg
from fastreid.data import build as fastreid_build
from fastreid.modeling.meta_arch import build_model
from fastreid.utils.compute_dist import build_dist

from fastreid_dmf.config import add_dmf_config, check_dmf_config
from fastreid_dmf.engine.trainer import train_or_eval
from fastreid_dmf.modeling.baselines.color_histogram import hsv_stripe_histograms
from tests.shared import REPO

# Pure colours and their OpenCV 8-bit HSV values (cv2.COLOR_RGB2HSV: H = hue degrees / 2).
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)  # H 0 / 60 / 120, S 255, V 255
WHITE, BLACK = (255, 255, 255), (0, 0, 0)  # (H 0, S 0, V 255) and (0, 0, 0)

# With BINS (4, 2, 2), bin = floor(value * bins / range): H -> floor(H * 4 / 180), S and V -> floor(x * 2 / 256).
#   red   (0, 255, 255)   -> (0, 1, 1)     green (60, 255, 255)  -> (1, 1, 1)     blue (120, 255, 255) -> (2, 1, 1)
#   white (0, 0, 255)     -> (0, 0, 1)     black (0, 0, 0)       -> (0, 0, 0)
# Flat index = h * 4 + s * 2 + v.
BINS = (4, 2, 2)
BLOCK = 16
BIN_OF = {RED: 3, GREEN: 7, BLUE: 11, WHITE: 1, BLACK: 0}


def image(rows):
    """float (1, 3, H, W) RGB batch in 0..255 from a list of rows of RGB triples."""
    return torch.tensor(rows, dtype=torch.float32).permute(2, 0, 1)[None]


# 4x2 images, 2 stripes = rows 0-1 and rows 2-3.
IMAGE_A = [[RED, RED], [RED, GREEN], [BLUE, BLUE], [WHITE, BLACK]]
IMAGE_B = [[RED, GREEN], [GREEN, GREEN], [BLUE, WHITE], [WHITE, WHITE]]
# Pixel counts per stripe and bin, counted by hand from the images above (4 pixels per stripe).
COUNTS_A = [{BIN_OF[RED]: 3, BIN_OF[GREEN]: 1}, {BIN_OF[BLUE]: 2, BIN_OF[WHITE]: 1, BIN_OF[BLACK]: 1}]
COUNTS_B = [{BIN_OF[RED]: 1, BIN_OF[GREEN]: 3}, {BIN_OF[BLUE]: 1, BIN_OF[WHITE]: 3}]


def expected_feature(counts):
    feature = np.zeros(2 * BLOCK, dtype=np.float32)
    for stripe, stripe_counts in enumerate(counts):
        for index, count in stripe_counts.items():
            feature[stripe * BLOCK + index] = math.sqrt(count / 4)
    return feature


def matcher_cfg(*overrides):
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list(["MODEL.META_ARCHITECTURE", "ColorHistogramMatcher", "MODEL.DEVICE", "cpu", *overrides])
    return cfg


def test_feature_is_sqrt_of_hand_counted_hsv_bins_per_stripe():
    features = hsv_stripe_histograms(torch.cat([image(IMAGE_A), image(IMAGE_B)]), num_stripes=2, bins=BINS)
    assert features.dtype == torch.float32 and features.shape == (2, 2 * BLOCK)
    np.testing.assert_allclose(features[0].numpy(), expected_feature(COUNTS_A), atol=1e-6)
    np.testing.assert_allclose(features[1].numpy(), expected_feature(COUNTS_B), atol=1e-6)


def test_squared_euclidean_distance_is_summed_two_times_one_minus_bhattacharyya():
    features = hsv_stripe_histograms(torch.cat([image(IMAGE_A), image(IMAGE_B)]), num_stripes=2, bins=BINS)
    # Bhattacharyya coefficients by hand: stripe 0 shares red and green, stripe 1 shares blue and white.
    bc_top = math.sqrt(3 / 4 * 1 / 4) + math.sqrt(1 / 4 * 3 / 4)
    bc_bottom = math.sqrt(2 / 4 * 1 / 4) + math.sqrt(1 / 4 * 3 / 4)
    expected = 2 * (1 - bc_top) + 2 * (1 - bc_bottom)
    assert float(((features[0] - features[1]) ** 2).sum()) == pytest.approx(expected, abs=1e-5)
    # fast-reid's "euclidean" evaluator distance is this squared distance.
    assert build_dist(features[:1], features[1:], "euclidean")[0, 0] == pytest.approx(expected, abs=1e-5)
    # Every stripe block has unit L2 norm.
    np.testing.assert_allclose(features.view(2, 2, BLOCK).norm(dim=2).numpy(), 1.0, atol=1e-6)


def test_registered_model_returns_stripe_features_and_refuses_to_train():
    model = build_model(matcher_cfg())
    assert model.device == torch.device("cpu") and len(model.state_dict()) == 0
    model.eval()
    images = torch.randint(0, 256, (3, 3, 32, 16)).float()
    features = model({"images": images, "targets": torch.zeros(3)})
    assert features.shape == (3, 6 * 8 * 4 * 4) and features.dtype == torch.float32
    assert torch.equal(features, model(images))
    model.train()
    with pytest.raises(RuntimeError, match="--eval-only"):
        model({"images": images})


@pytest.mark.parametrize("key, value", [
    ("MODEL.COLOR_HIST.NUM_STRIPES", 0),
    ("MODEL.COLOR_HIST.BINS", (8, 0, 4)),
    ("MODEL.COLOR_HIST.BINS", (8, 4)),
])
def test_bad_stripes_or_bins_are_rejected_naming_the_key(key, value):
    cfg = matcher_cfg(key, value)
    with pytest.raises(ValueError, match=rf"config {key}="):
        check_dmf_config(cfg)
    with pytest.raises(ValueError, match=rf"config {key}="):
        build_model(cfg)


def test_more_stripes_than_image_rows_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match=r"MODEL\.COLOR_HIST\.NUM_STRIPES=300: expected at most the test image"):
        check_dmf_config(matcher_cfg("MODEL.COLOR_HIST.NUM_STRIPES", 300, "INPUT.SIZE_TEST", [256, 128]))
    with pytest.raises(ValueError, match=r"MODEL\.COLOR_HIST\.NUM_STRIPES=5: expected at most the image height 4"):
        hsv_stripe_histograms(image(IMAGE_A), num_stripes=5, bins=BINS)


def test_color_hist_keys_are_only_checked_for_the_matcher():
    cfg = get_cfg()
    add_dmf_config(cfg)
    cfg.merge_from_list(["MODEL.COLOR_HIST.NUM_STRIPES", 0])
    check_dmf_config(cfg)  # META_ARCHITECTURE is fast-reid's Baseline: the key is unused


def test_same_clothing_colours_rank_closer_than_different_ones():
    rng = np.random.default_rng(0)

    def person(top, bottom):
        pixels = np.empty((24, 12, 3))
        pixels[:12], pixels[12:] = top, bottom
        return torch.tensor(np.clip(pixels + rng.normal(0, 12, pixels.shape), 0, 255), dtype=torch.float32)

    query = person((200, 30, 30), (30, 30, 160))  # red top, blue trousers
    same = person((200, 30, 30), (30, 30, 160))
    different = person((30, 160, 30), (30, 30, 160))  # green top, same trousers
    model = build_model(matcher_cfg()).eval()
    features = model(torch.stack([query, same, different]).permute(0, 3, 1, 2))
    dist = build_dist(features[:1], features[1:], "euclidean")[0]
    assert dist[0] < dist[1]



def _train_net_args(*opts, eval_only):
    """What ``tools/train_net.py --config-file configs/demo/color_histogram.yml [--eval-only] opts`` parses."""
    return argparse.Namespace(config_file=os.path.join(REPO, "configs", "demo", "color_histogram.yml"),
                              opts=list(opts), resume=False, eval_only=eval_only, num_gpus=1)


def test_eval_only_run_scores_the_matcher_with_fastreids_evaluator(tmp_path, monkeypatch, tiny_benchmark_root):
    # fast-reid reads $FASTREID_DATASETS once, at import
    monkeypatch.setattr(fastreid_build, "_root", str(tiny_benchmark_root))
    out = tmp_path / "run"
    results = train_or_eval(_train_net_args("DATASETS.TESTS", '("SynthMarket", "SynthMSMT")',
                                            "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(out), eval_only=True))
    with open(out / "results.json") as handle:
        saved = json.load(handle)
    assert set(saved) == {"SynthMarket", "SynthMSMT"}
    for name, metrics in saved.items():
        assert 0 <= metrics["Rank-1"] <= 100 and 0 <= metrics["mAP"] <= 100
        assert metrics["mAP"] == pytest.approx(float(results[name]["mAP"]))


def test_train_net_without_eval_only_is_refused_before_loading_data(tmp_path):
    with pytest.raises(RuntimeError, match="'ColorHistogramMatcher' has nothing to train; .*--eval-only"):
        train_or_eval(_train_net_args("OUTPUT_DIR", str(tmp_path), eval_only=False))
