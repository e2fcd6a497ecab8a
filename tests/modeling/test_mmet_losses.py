"""MMET pre-training losses against hand computations written out in the tests."""

import math

import pytest
import torch

from fastreid_dmf.modeling.mmet.losses import (
    contrastive_loss,
    itm_loss,
    mim_pixel_loss,
    mim_token_loss,
    mlm_loss,
    patchify,
)


def _hand_cross_entropy(scores, label):
    """-log softmax(scores)[label] with Python floats."""
    top = max(scores)
    log_sum = top + math.log(sum(math.exp(s - top) for s in scores))
    return log_sum - scores[label]


# ---------------------------------------------------------------- patchify


def test_patchify_of_arange_image_orders_patches_row_major_and_values_row_column_channel():
    p = 2
    images = torch.arange(3 * 4 * 4, dtype=torch.float32).reshape(1, 3, 4, 4)
    out = patchify(images, p)
    assert out.shape == (1, 4, p * p * 3)
    for i in range(2):  # patch grid row
        for j in range(2):  # patch grid column
            for r in range(p):
                for c in range(p):
                    for k in range(3):
                        expected = k * 16 + (i * p + r) * 4 + (j * p + c)
                        assert out[0, i * 2 + j, (r * p + c) * 3 + k].item() == expected
    # first patch spelled out: pixel (0,0) of channels 0,1,2, then pixel (0,1), (1,0), (1,1)
    assert out[0, 0].tolist() == [0, 16, 32, 1, 17, 33, 4, 20, 36, 5, 21, 37]


def test_patchify_matches_patch_order_of_strided_conv_embedding():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 6, 4)
    conv = torch.nn.Conv2d(3, 5, kernel_size=2, stride=2, bias=False)
    tokens = conv(images).flatten(2).transpose(1, 2)  # (B, N, 5)
    # the same linear map applied to each patch, with the weight laid out (row, column, channel)
    weight = conv.weight.permute(0, 2, 3, 1).reshape(5, -1)
    torch.testing.assert_close(patchify(images, 2) @ weight.t(), tokens)


def test_patchify_rejects_sizes_not_multiple_of_patch_size_naming_them():
    with pytest.raises(ValueError, match=r"5x4.*patch_size 2"):
        patchify(torch.zeros(1, 3, 5, 4), 2)
    with pytest.raises(ValueError):
        patchify(torch.zeros(3, 4, 4), 2)


# ---------------------------------------------------------------- MIM (pixels)


def _hand_mim_pixel(pred, images, mask, p, norm_pix, eps=1e-6):
    """Per-patch MSE over masked patches, targets cut out with explicit indexing."""
    batch, channels, height, width = images.shape
    cols = width // p
    losses = []
    for b in range(batch):
        for n in range(mask.shape[1]):
            if not mask[b, n]:
                continue
            i, j = divmod(n, cols)
            target = [images[b, k, i * p + r, j * p + c].item()
                      for r in range(p) for c in range(p) for k in range(channels)]
            if norm_pix:
                mean = sum(target) / len(target)
                var = sum((t - mean) ** 2 for t in target) / (len(target) - 1)
                target = [(t - mean) / math.sqrt(var + eps) for t in target]
            losses.append(sum((pred[b, n, d].item() - t) ** 2 for d, t in enumerate(target)) / len(target))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("norm_pix", [True, False])
def test_mim_pixel_loss_matches_hand_computation_over_masked_patches(norm_pix):
    torch.manual_seed(1)
    images = torch.randn(2, 3, 4, 6)
    pred = torch.randn(2, 6, 12)
    mask = torch.tensor([[True, False, False, True, True, False], [False, False, True, False, False, False]])
    got = mim_pixel_loss(pred, images, mask, 2, norm_pix=norm_pix)
    assert got.item() == pytest.approx(_hand_mim_pixel(pred, images, mask, 2, norm_pix), rel=1e-5)


def test_mim_pixel_norm_pix_target_of_constant_patch_is_zero():
    images = torch.full((1, 3, 2, 2), 7.0)  # one patch, all values equal: (t - mean) / sqrt(0 + eps) = 0
    pred = torch.full((1, 1, 12), 0.5)
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert mim_pixel_loss(pred, images, mask, 2, norm_pix=True).item() == pytest.approx(0.25)
    assert mim_pixel_loss(pred, images, mask, 2, norm_pix=False).item() == pytest.approx(6.5 ** 2)


def test_mim_pixel_norm_pix_uses_unbiased_variance():
    # patch values 0..11 repeated per channel: mean 5.5, unbiased var = 13; pred = 0 -> loss = mean(t_norm^2)
    images = torch.arange(12, dtype=torch.float32).reshape(1, 3, 2, 2)
    pred = torch.zeros(1, 1, 12)
    mask = torch.ones(1, 1, dtype=torch.bool)
    values = [float(v) for v in range(12)]
    var_unbiased = sum((v - 5.5) ** 2 for v in values) / 11
    expected = sum((v - 5.5) ** 2 for v in values) / 12 / (var_unbiased + 1e-6)  # = 11 / 12
    assert mim_pixel_loss(pred, images, mask, 2).item() == pytest.approx(expected, rel=1e-5)


def test_mim_pixel_loss_ignores_unmasked_predictions_and_gives_them_no_gradient():
    torch.manual_seed(2)
    images = torch.randn(1, 3, 4, 4)
    pred = torch.randn(1, 4, 12)
    mask = torch.tensor([[True, False, True, False]])
    before = mim_pixel_loss(pred, images, mask, 2)
    changed = pred.clone()
    changed[0, 1] = 100.0
    changed[0, 3] = float("nan")
    changed.requires_grad_(True)
    after = mim_pixel_loss(changed, images, mask, 2)
    assert after.item() == pytest.approx(before.item())
    after.backward()
    assert changed.grad[0, 1].abs().sum() == 0 and changed.grad[0, 3].abs().sum() == 0
    assert changed.grad[0, 0].abs().sum() > 0


def test_mim_pixel_loss_with_nothing_masked_is_zero_and_backpropagates():
    pred = torch.randn(1, 4, 12, requires_grad=True)
    loss = mim_pixel_loss(pred, torch.randn(1, 3, 4, 4), torch.zeros(1, 4, dtype=torch.bool), 2)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def test_mim_pixel_loss_rejects_bad_shapes():
    images = torch.randn(1, 3, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.bool)
    with pytest.raises(ValueError):
        mim_pixel_loss(torch.randn(1, 4, 11), images, mask, 2)  # wrong patch dim
    with pytest.raises(ValueError):
        mim_pixel_loss(torch.randn(1, 3, 12), images, mask, 2)  # wrong patch count
    with pytest.raises(ValueError):
        mim_pixel_loss(torch.randn(1, 4, 12), images, torch.ones(1, 3, dtype=torch.bool), 2)
    with pytest.raises(ValueError):
        mim_pixel_loss(torch.randn(1, 4, 12), images, torch.ones(1, 4), 2)  # float mask
    with pytest.raises(ValueError):
        mim_pixel_loss(torch.randn(1, 4, 12), torch.randn(1, 3, 5, 4), mask, 2)


# ---------------------------------------------------------------- MIM (tokens)


def test_mim_token_loss_matches_hand_cross_entropy_over_masked_patches():
    torch.manual_seed(3)
    logits = torch.randn(2, 3, 5)
    ids = torch.tensor([[4, 0, 2], [1, 3, 3]])
    mask = torch.tensor([[True, False, True], [False, False, True]])
    expected = [_hand_cross_entropy(logits[b, n].tolist(), ids[b, n].item())
                for b in range(2) for n in range(3) if mask[b, n]]
    got = mim_token_loss(logits, ids, mask)
    assert got.item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_mim_token_loss_ignores_unmasked_logits_and_ids():
    torch.manual_seed(4)
    logits = torch.randn(1, 3, 5)
    ids = torch.tensor([[1, 2, 3]])
    mask = torch.tensor([[False, True, False]])
    before = mim_token_loss(logits, ids, mask)
    logits[0, 0] += 50.0
    ids[0, 2] = 99  # out of range but unmasked: never read
    assert mim_token_loss(logits, ids, mask).item() == pytest.approx(before.item())


def test_mim_token_loss_with_nothing_masked_is_zero_and_backpropagates():
    logits = torch.randn(1, 3, 5, requires_grad=True)
    loss = mim_token_loss(logits, torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_mim_token_loss_rejects_bad_shapes_and_ids():
    logits = torch.randn(1, 3, 5)
    mask = torch.ones(1, 3, dtype=torch.bool)
    with pytest.raises(ValueError):
        mim_token_loss(logits, torch.zeros(1, 2, dtype=torch.long), mask)
    with pytest.raises(ValueError):
        mim_token_loss(logits, torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3))
    with pytest.raises(ValueError):
        mim_token_loss(logits, torch.zeros(1, 3), mask)  # float ids
    with pytest.raises(ValueError):
        mim_token_loss(logits, torch.tensor([[0, 5, 1]]), mask)  # id == V


# ---------------------------------------------------------------- MLM


def test_mlm_loss_skips_ignore_index_and_averages_over_labelled_positions():
    torch.manual_seed(5)
    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[-100, 3, -100, 6], [0, -100, -100, -100]])
    expected = [_hand_cross_entropy(logits[b, t].tolist(), labels[b, t].item())
                for b in range(2) for t in range(4) if labels[b, t] != -100]
    assert len(expected) == 3
    assert mlm_loss(logits, labels).item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    # changing an ignored position's logits does not change the loss
    logits[0, 0] = 30.0
    assert mlm_loss(logits, labels).item() == pytest.approx(sum(expected) / 3, rel=1e-5)


def test_mlm_loss_honours_custom_ignore_index():
    torch.manual_seed(6)
    logits = torch.randn(1, 3, 4)
    labels = torch.tensor([[2, -1, 1]])
    expected = (_hand_cross_entropy(logits[0, 0].tolist(), 2) + _hand_cross_entropy(logits[0, 2].tolist(), 1)) / 2
    assert mlm_loss(logits, labels, ignore_index=-1).item() == pytest.approx(expected, rel=1e-5)


def test_mlm_loss_with_no_labelled_position_is_zero_and_backpropagates():
    logits = torch.randn(2, 3, 4, requires_grad=True)
    loss = mlm_loss(logits, torch.full((2, 3), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_mlm_loss_rejects_bad_shapes_and_labels():
    with pytest.raises(ValueError):
        mlm_loss(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError):
        mlm_loss(torch.randn(2, 3), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError):
        mlm_loss(torch.randn(1, 2, 4), torch.tensor([[1, 4]]))  # label == V
    with pytest.raises(ValueError):
        mlm_loss(torch.randn(1, 2, 4), torch.tensor([[1.0, 2.0]]))


# ---------------------------------------------------------------- ITM


def test_itm_loss_is_mean_cross_entropy_with_matched_as_class_one():
    logits = torch.tensor([[0.2, 1.5], [2.0, -1.0], [0.0, 0.0]])
    matched = torch.tensor([True, False, False])
    expected = (_hand_cross_entropy([0.2, 1.5], 1) + _hand_cross_entropy([2.0, -1.0], 0)
                + math.log(2.0)) / 3
    assert itm_loss(logits, matched).item() == pytest.approx(expected, rel=1e-6)


def test_itm_loss_rejects_bad_shapes_and_non_bool_labels():
    with pytest.raises(ValueError):
        itm_loss(torch.randn(3, 3), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError):
        itm_loss(torch.randn(3, 2), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError):
        itm_loss(torch.randn(3, 2), torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError):
        itm_loss(torch.randn(0, 2), torch.ones(0, dtype=torch.bool))


# ---------------------------------------------------------------- contrastive


def _hand_logits(image, text, logit_scale, max_scale=100.0):
    scale = min(math.exp(logit_scale), max_scale)

    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    image, text = [unit(v) for v in image], [unit(v) for v in text]
    return [[scale * sum(a * b for a, b in zip(im, tx)) for tx in text] for im in image]


def _hand_contrastive(image, text, logit_scale, ids=None, max_scale=100.0):
    logits = _hand_logits(image, text, logit_scale, max_scale)
    size = len(logits)
    columns = [[logits[i][j] for i in range(size)] for j in range(size)]  # logits.T
    total = 0.0
    for rows in (logits, columns):
        for i in range(size):
            if ids is None:
                total += _hand_cross_entropy(rows[i], i) / size
            else:
                positives = [j for j in range(size) if ids[j] == ids[i]]
                probs = [1.0 / len(positives) if j in positives else 0.0 for j in range(size)]
                top = max(rows[i])
                log_sum = top + math.log(sum(math.exp(s - top) for s in rows[i]))
                total += sum(q * (log_sum - s) for q, s in zip(probs, rows[i])) / size
    return total / 2


def test_contrastive_loss_matches_hand_symmetric_info_nce():
    torch.manual_seed(7)
    image, text = torch.randn(4, 3), torch.randn(4, 3)
    got = contrastive_loss(image, text, torch.tensor(math.log(10.0)))
    expected = _hand_contrastive(image.tolist(), text.tolist(), math.log(10.0))
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_is_invariant_to_embedding_norms():
    torch.manual_seed(8)
    image, text = torch.randn(3, 5), torch.randn(3, 5)
    scales = torch.tensor([[2.0], [0.1], [7.0]])
    a = contrastive_loss(image, text, torch.tensor(1.0))
    b = contrastive_loss(image * scales, text * scales.flip(0), torch.tensor(1.0))
    assert a.item() == pytest.approx(b.item(), rel=1e-5)


def test_contrastive_loss_clamps_the_scale_at_max_scale():
    torch.manual_seed(9)
    image, text = torch.randn(3, 4), torch.randn(3, 4)
    logit_scale = torch.tensor(10.0, requires_grad=True)  # exp(10) > 100
    got = contrastive_loss(image, text, logit_scale)
    assert got.item() == pytest.approx(_hand_contrastive(image.tolist(), text.tolist(), math.log(100.0)), rel=1e-5)
    got.backward()
    assert logit_scale.grad.item() == 0.0  # clamped: no gradient above the cap


def test_contrastive_loss_with_distinct_identity_targets_equals_diagonal_version():
    torch.manual_seed(10)
    image, text = torch.randn(4, 6), torch.randn(4, 6)
    scale = torch.tensor(2.0)
    diagonal = contrastive_loss(image, text, scale)
    with_ids = contrastive_loss(image, text, scale, targets=torch.tensor([7, 3, 0, 12]))
    assert with_ids.item() == pytest.approx(diagonal.item(), rel=1e-6)


def test_contrastive_loss_with_shared_identity_uses_uniform_soft_targets():
    torch.manual_seed(11)
    image, text = torch.randn(4, 6), torch.randn(4, 6)
    scale = torch.tensor(2.0)
    ids = [5, 5, 1, 2]
    got = contrastive_loss(image, text, scale, targets=torch.tensor(ids))
    expected = _hand_contrastive(image.tolist(), text.tolist(), 2.0, ids=ids)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert got.item() != pytest.approx(contrastive_loss(image, text, scale).item(), rel=1e-4)


def test_contrastive_loss_backpropagates_to_embeddings_and_logit_scale():
    torch.manual_seed(12)
    image = torch.randn(4, 3, requires_grad=True)
    text = torch.randn(4, 3, requires_grad=True)
    logit_scale = torch.tensor(1.0, requires_grad=True)
    contrastive_loss(image, text, logit_scale, targets=torch.tensor([0, 0, 1, 1])).backward()
    assert image.grad.abs().sum() > 0 and text.grad.abs().sum() > 0 and logit_scale.grad.abs() > 0


def test_contrastive_loss_rejects_bad_shapes():
    with pytest.raises(ValueError):
        contrastive_loss(torch.randn(4, 3), torch.randn(3, 3), torch.tensor(1.0))
    with pytest.raises(ValueError):
        contrastive_loss(torch.randn(4, 3), torch.randn(4, 2), torch.tensor(1.0))
    with pytest.raises(ValueError):
        contrastive_loss(torch.randn(4, 3), torch.randn(4, 3), torch.ones(2))
    image, text, scale = torch.randn(4, 3), torch.randn(4, 3), torch.tensor(1.0)
    with pytest.raises(ValueError):
        contrastive_loss(image, text, scale, targets=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError):
        contrastive_loss(image, text, scale, targets=torch.zeros(4))  # float identities
