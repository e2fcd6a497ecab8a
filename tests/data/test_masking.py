"""MMM masks: block-wise patch masks and 80/10/10 text masks, dynamic and reproducible."""

import numpy as np
import pytest

from fastreid_dmf.data.masking import IGNORE_INDEX, block_patch_mask, mask_generator, mask_text_tokens


def test_block_mask_has_the_grid_shape_and_the_exact_ratio():
    for index in range(50):
        mask = block_patch_mask((14, 14), 0.4, mask_generator(0, index, 0))
        assert mask.shape == (14, 14) and mask.dtype == bool
        assert mask.sum() == round(0.4 * 196)


def test_block_mask_is_made_of_blocks_not_scattered_patches():
    # In a block mask most masked patches have a masked 4-neighbour; a uniform random mask of 40% has
    # fewer (each neighbour masked with p = 0.4 -> about 1 - 0.6 ** 4 = 87% have one, but only ~1.6 of 4).
    neighbours = []
    for index in range(50):
        mask = block_patch_mask((14, 14), 0.4, mask_generator(0, index, 0))
        padded = np.pad(mask, 1)
        count = padded[:-2, 1:-1].astype(int) + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
        neighbours.append(count[mask].mean())
    assert np.mean(neighbours) > 2.5


def test_masks_are_new_on_every_read_and_reproducible_from_the_seed():
    first = block_patch_mask((16, 8), 0.4, mask_generator(3, 7, 0))
    again = block_patch_mask((16, 8), 0.4, mask_generator(3, 7, 0))
    next_read = block_patch_mask((16, 8), 0.4, mask_generator(3, 7, 1))
    other_sample = block_patch_mask((16, 8), 0.4, mask_generator(3, 8, 0))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, next_read) and not np.array_equal(first, other_sample)


def test_text_masking_follows_80_10_10_and_never_touches_special_tokens():
    length, vocab, mask_id = 64, 1000, 3
    ids = np.arange(100, 100 + length)
    special = np.zeros(length, dtype=bool)
    special[[0, length - 1]] = True  # [CLS], [SEP]
    special[50:] = True  # padding
    chosen = to_mask = randomised = kept = 0
    for index in range(400):
        masked, labels = mask_text_tokens(ids, special, mask_generator(0, index, 0), mask_id, vocab, 0.15)
        assert np.array_equal(masked[special], ids[special]) and (labels[special] == IGNORE_INDEX).all()
        selected = labels != IGNORE_INDEX
        assert np.array_equal(labels[selected], ids[selected])
        assert np.array_equal(masked[~selected], ids[~selected])
        chosen += selected.sum()
        to_mask += (masked[selected] == mask_id).sum()
        kept += (masked[selected] == ids[selected]).sum()
        randomised += ((masked[selected] != mask_id) & (masked[selected] != ids[selected])).sum()
    candidates = 400 * (50 - 1)
    assert abs(chosen / candidates - 0.15) < 0.02
    assert abs(to_mask / chosen - 0.8) < 0.03
    assert abs(kept / chosen - 0.1) < 0.03 and abs(randomised / chosen - 0.1) < 0.03


def test_a_short_description_still_gets_one_masked_token():
    ids = np.array([101, 7, 102])
    special = np.array([True, False, True])
    for index in range(20):
        _, labels = mask_text_tokens(ids, special, mask_generator(0, index, 0), 103, 30522, 0.15)
        assert labels.tolist() == [IGNORE_INDEX, 7, IGNORE_INDEX]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_a_mask_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(ValueError, match="image mask ratio.*expected a masking ratio in \\(0, 1\\)"):
        block_patch_mask((4, 4), ratio, mask_generator(0, 0, 0))
    with pytest.raises(ValueError, match="text mask ratio"):
        mask_text_tokens(np.array([1, 2]), np.array([False, False]), mask_generator(0, 0, 0), 0, 10, ratio)
