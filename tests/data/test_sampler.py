"""MultimodalIdentitySampler invariants (DMF Algorithm 1, fast-reid PK sampling)."""

import itertools

import pytest

from fastreid_dmf.data.samplers import MultimodalIdentitySampler

NUM_IDS, PER_ID = 10, 5
ITEMS = [(f"img_{pid}_{k}.jpg", f"p{pid}", "c1", f"text of {pid} {k}") for pid in range(NUM_IDS)
         for k in range(PER_ID)]


def _draw(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def _pid(index):
    return ITEMS[index % len(ITEMS)][1]


def test_every_batch_is_p_identities_times_k_instances():
    sampler = MultimodalIdentitySampler(ITEMS, mini_batch_size=12, num_instances=3, text_ratio=0.5, seed=1)
    indices = _draw(sampler, 12 * 20)
    for start in range(0, len(indices), 12):
        batch = indices[start:start + 12]
        pids = [_pid(i) for i in batch]
        assert len(set(pids)) == 4
        assert all(pids.count(p) == 3 for p in set(pids))
        assert all(pids[j] == pids[j - j % 3] for j in range(12)), "instances of one identity are contiguous"


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_text_ratio_extremes_give_one_modality(ratio):
    sampler = MultimodalIdentitySampler(ITEMS, 8, 4, text_ratio=ratio, seed=0)
    indices = _draw(sampler, 400)
    is_text = [i >= len(ITEMS) for i in indices]
    assert all(is_text) if ratio == 1.0 else not any(is_text)
    assert all(0 <= i < 2 * len(ITEMS) for i in indices)


def test_text_ratio_sets_fraction_of_text_instances():
    sampler = MultimodalIdentitySampler(ITEMS, 8, 4, text_ratio=0.3, seed=0)
    indices = _draw(sampler, 4000)
    fraction = sum(i >= len(ITEMS) for i in indices) / len(indices)
    assert abs(fraction - 0.3) < 0.03


def test_same_seed_same_stream_other_seed_other_stream():
    first = _draw(MultimodalIdentitySampler(ITEMS, 8, 4, 0.5, seed=7), 200)
    again = _draw(MultimodalIdentitySampler(ITEMS, 8, 4, 0.5, seed=7), 200)
    other = _draw(MultimodalIdentitySampler(ITEMS, 8, 4, 0.5, seed=8), 200)
    assert first == again
    assert first != other


def test_identities_are_covered_once_per_round():
    sampler = MultimodalIdentitySampler(ITEMS, 10, 2, 0.0, seed=3)
    indices = _draw(sampler, 10 * 2 * (NUM_IDS // 5))  # one round: NUM_IDS identities
    assert {_pid(i) for i in indices} == {f"p{p}" for p in range(NUM_IDS)}


def test_shards_split_the_global_batch_by_whole_identities():
    ranks = [MultimodalIdentitySampler(ITEMS, 8, 4, 0.5, seed=5, rank=r, world_size=2) for r in range(2)]
    streams = [_draw(s, 8 * 10) for s in ranks]
    for start in range(0, 80, 8):
        batches = [stream[start:start + 8] for stream in streams]
        pid_sets = [{_pid(i) for i in batch} for batch in batches]
        assert all(len(p) == 2 for p in pid_sets), "each process gets 2 identities x 4 instances"
        assert not pid_sets[0] & pid_sets[1], "the two processes get different identities"


def test_text_ratio_without_descriptions_is_rejected():
    items = [(p, pid, c) for p, pid, c, _ in ITEMS]
    with pytest.raises(ValueError, match="TEXT_RATIO=0.5 needs a description.*img_0_0.jpg"):
        MultimodalIdentitySampler(items, 8, 4, text_ratio=0.5, seed=0)
    assert _draw(MultimodalIdentitySampler(items, 8, 4, text_ratio=0.0, seed=0), 8)


def test_too_few_identities_or_bad_batch_is_rejected():
    with pytest.raises(ValueError, match="identities cannot fill a batch"):
        MultimodalIdentitySampler(ITEMS, 4 * 11, 4, 0.0, seed=0)
    with pytest.raises(ValueError, match="multiple of DATALOADER.NUM_INSTANCE"):
        MultimodalIdentitySampler(ITEMS, 10, 4, 0.0, seed=0)


@pytest.mark.parametrize(("ratio", "expected"), [(0.0, 50), (1.0, 50), (0.5, 100), (0.25, 67), (0.75, 67)])
def test_epoch_length_follows_algorithm_1(ratio, expected):
    # N = 50 pairs: an epoch over S_i or S_t alone is N; over S_i U S_t at 0.5 it is 2N; otherwise the more
    # frequent modality is seen once: N / max(r, 1 - r).
    from fastreid_dmf.data.samplers import instances_per_epoch

    assert instances_per_epoch(len(ITEMS), ratio) == expected


def test_dataset_length_is_the_epoch_fast_reid_trains_on():
    from fastreid_dmf.data.multimodal_dataset import MultimodalReIDDataset

    lengths = {r: len(MultimodalReIDDataset(ITEMS, None, (8, 4), text_ratio=r)) for r in (0.0, 0.5, 1.0)}
    assert lengths == {0.0: len(ITEMS), 0.5: 2 * len(ITEMS), 1.0: len(ITEMS)}
    # Every index of S_i U S_t stays addressable whatever the epoch length.
    dataset = MultimodalReIDDataset(ITEMS, None, (8, 4), text_ratio=0.0)
    assert dataset[2 * len(ITEMS) - 1]["modalities"] == 1


def test_text_image_epoch_shows_as_many_images_as_an_image_only_epoch():
    from fastreid_dmf.data.samplers import instances_per_epoch

    epochs = 40
    counts = {}
    for ratio in (0.0, 0.5):
        sampler = MultimodalIdentitySampler(ITEMS, 8, 4, text_ratio=ratio, seed=3)
        indices = _draw(sampler, epochs * instances_per_epoch(len(ITEMS), ratio))
        counts[ratio] = (sum(i < len(ITEMS) for i in indices) / epochs, sum(i >= len(ITEMS) for i in indices) / epochs)
    assert counts[0.0] == (len(ITEMS), 0)
    images, texts = counts[0.5]
    # Binomial(4000, 0.5) per 40 epochs: 3 sigma is about 2.4 images per epoch.
    assert abs(images - len(ITEMS)) < 3 and abs(texts - len(ITEMS)) < 3


def test_epoch_length_rejects_a_ratio_outside_0_1():
    from fastreid_dmf.data.samplers import instances_per_epoch

    with pytest.raises(ValueError, match="DATALOADER.TEXT_RATIO"):
        instances_per_epoch(10, 1.5)


def test_two_shards_together_are_the_one_process_global_batch():
    one = _draw(MultimodalIdentitySampler(ITEMS, 16, 4, 0.5, seed=5), 16 * 10)
    ranks = [_draw(MultimodalIdentitySampler(ITEMS, 8, 4, 0.5, seed=5, rank=r, world_size=2), 8 * 10)
             for r in range(2)]
    for step in range(10):
        shards = [stream[step * 8:(step + 1) * 8] for stream in ranks]
        # the same images and descriptions (index >= N is a description), only split between the processes
        assert sorted(shards[0] + shards[1]) == sorted(one[step * 16:(step + 1) * 16])
        assert not set(shards[0]) & set(shards[1])


def test_each_process_gets_text_ratio_descriptions():
    for rank in range(2):
        indices = _draw(MultimodalIdentitySampler(ITEMS, 8, 4, 0.3, seed=0, rank=rank, world_size=2), 4000)
        fraction = sum(i >= len(ITEMS) for i in indices) / len(indices)
        assert abs(fraction - 0.3) < 0.03, rank  # binomial std over 4000 instances: 0.007
