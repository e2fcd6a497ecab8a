"""DMF losses against hand computation and fast-reid's implementation."""

import math

import pytest
import torch
from fastreid.modeling.losses import triplet_loss as fastreid_triplet_loss

from fastreid_dmf.modeling.losses import batch_hard_triplet_loss


def _hand_soft_margin(features, labels, squared):
    """Eq. 1 with batch-hard mining, written out with Python loops."""
    values = []
    def dist(a, b):
        d2 = sum((x - y) ** 2 for x, y in zip(features[a], features[b]))
        return d2 if squared else math.sqrt(d2)

    for a in range(len(features)):
        pos = [dist(a, b) for b in range(len(features)) if b != a and labels[b] == labels[a]]
        neg = [dist(a, b) for b in range(len(features)) if labels[b] != labels[a]]
        values.append(math.log(1 + math.exp(max(pos) - min(neg))))
    return sum(values) / len(values)


def test_soft_margin_triplet_matches_hand_computation_of_eq1():
    features = [[0.0, 1.0], [0.5, 0.2], [2.0, -1.0], [1.5, 0.5], [0.3, 0.3], [-1.0, 2.0]]
    labels = [0, 0, 1, 1, 2, 2]
    got = batch_hard_triplet_loss(torch.tensor(features), torch.tensor(labels), margin=0.0, squared=True)
    assert got.item() == pytest.approx(_hand_soft_margin(features, labels, squared=True), rel=1e-5)


def test_non_squared_triplet_equals_fastreid_soft_margin_hard_mining():
    torch.manual_seed(0)
    features = torch.randn(16, 8)
    labels = torch.arange(4).repeat_interleave(4)
    ours = batch_hard_triplet_loss(features, labels, margin=0.0, squared=False)
    theirs = fastreid_triplet_loss(features, labels, margin=0.0, norm_feat=False, hard_mining=True)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_hinge_margin_is_relu_of_gap_plus_margin():
    features = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    labels = torch.tensor([0, 0, 1, 1])
    # anchors: d_ap = 1, 1, 0.5, 0.5 ; d_an = 3, 2, 2, 2.5 (squared=False)
    expected = sum(max(0.0, ap - an + 2.0) for ap, an in [(1, 3), (1, 2), (0.5, 2), (0.5, 2.5)]) / 4
    got = batch_hard_triplet_loss(features, labels, margin=2.0, squared=False)
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_soft_margin_stays_finite_for_large_distances():
    features = torch.tensor([[0.0], [1000.0], [1.0], [2.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = batch_hard_triplet_loss(features, labels, squared=True)
    assert torch.isfinite(loss) and loss.item() > 1e5


def test_batch_without_positive_pairs_is_rejected():
    with pytest.raises(ValueError, match="no anchor has both a positive and a negative"):
        batch_hard_triplet_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_wrong_target_shape_is_rejected():
    with pytest.raises(ValueError, match="expected features"):
        batch_hard_triplet_loss(torch.randn(4, 4), torch.tensor([0, 0, 1]))
