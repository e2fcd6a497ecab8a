"""TaskIdentitySampler invariants (MMET task sampling over fast-reid P x K identity batches)."""

import itertools
import math
from collections import Counter

import pytest

from fastreid_dmf.data.samplers import TaskIdentitySampler
from fastreid_dmf.multimodal_batch import IMAGE, PAIR, TEXT, decode_index

NUM_IDS = 8
#: Identity p has 2 + p % 4 images (2..5), so K = 4 draws some identities with replacement.
SIZES = [2 + pid % 4 for pid in range(NUM_IDS)]
PIDS = [pid for pid in range(NUM_IDS) for _ in range(SIZES[pid])]
ITEMS = [(f"img_{i}.jpg", pid, i % 2, f"description {pid}") for i, pid in enumerate(PIDS)]
N = len(ITEMS)


def _draw(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def _batches(indices, size):
    """Decoded ``(item, task, read_count)`` triples, one list per batch of ``size`` indices."""
    decoded = [decode_index(i, N) for i in indices]
    return [decoded[start:start + size] for start in range(0, len(decoded), size)]


def test_every_global_batch_is_one_task_of_p_identities_times_k_instances():
    sampler = TaskIdentitySampler(ITEMS, mini_batch_size=12, num_instances=3, seed=1, rank=0, world_size=1)
    batches = _batches(_draw(sampler, 12 * 60), 12)
    for batch in batches:
        assert len({task for _, task, _ in batch}) == 1, "a batch holds one task"
        pids = [ITEMS[item][1] for item, _, _ in batch]
        assert len(set(pids)) == 4
        assert all(pids.count(p) == 3 for p in set(pids))
        assert all(pids[j] == pids[j - j % 3] for j in range(12)), "instances of one identity are contiguous"
    # Uniform default weights: over 60 batches every task shows up (P(a task never drawn) ~ 3 * (2/3)^60).
    assert {batch[0][1] for batch in batches} == {IMAGE, TEXT, PAIR}


def test_identities_are_covered_once_per_round():
    sampler = TaskIdentitySampler(ITEMS, 8, 2, seed=3, rank=0, world_size=1)
    indices = _draw(sampler, 8 * (NUM_IDS // 4))  # one round: NUM_IDS identities, 4 per batch
    assert {PIDS[decode_index(i, N)[0]] for i in indices} == set(range(NUM_IDS))


def test_task_probabilities_are_the_normalised_weights():
    sampler = TaskIdentitySampler(ITEMS, 8, 4, task_weights=(2, 1, 1), seed=0, rank=0, world_size=1)
    assert sampler.task_probabilities == pytest.approx((0.5, 0.25, 0.25))
    assert TaskIdentitySampler(ITEMS, 8, 4, seed=0, rank=0, world_size=1).task_probabilities == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3))


def test_task_proportions_over_many_batches_follow_the_weights():
    num_batches = 3000
    sampler = TaskIdentitySampler(ITEMS, 4, 2, task_weights=(2, 1, 1), seed=11, rank=0, world_size=1)
    tasks = Counter(batch[0][1] for batch in _batches(_draw(sampler, 4 * num_batches), 4))
    for task, expected in ((IMAGE, 0.5), (TEXT, 0.25), (PAIR, 0.25)):
        # The count of a task is Binomial(num_batches, p): allow 4 standard deviations of its fraction
        # (about 0.037 at p = 0.5); a sampler that ignored the weights (1/3 each) is off by >= 0.08.
        tolerance = 4 * math.sqrt(expected * (1 - expected) / num_batches)
        assert abs(tasks[task] / num_batches - expected) < tolerance, (task, tasks)


@pytest.mark.parametrize("weights", [(1, 0, 1), (0, 3, 0), (1, 1, 0)])
def test_a_task_with_zero_weight_is_never_drawn(weights):
    sampler = TaskIdentitySampler(ITEMS, 8, 4, task_weights=weights, seed=2, rank=0, world_size=1)
    tasks = {task for batch in _batches(_draw(sampler, 8 * 300), 8) for _, task, _ in batch}
    assert tasks == {task for task, weight in enumerate(weights) if weight > 0}


def test_read_count_numbers_earlier_draws_of_the_same_item_and_task():
    sampler = TaskIdentitySampler(ITEMS, 8, 4, seed=4, rank=0, world_size=1)
    indices = _draw(sampler, 8 * 200)
    seen: Counter = Counter()
    for index in indices:
        item, task, read_count = decode_index(index, N)
        assert read_count == seen[item, task], f"draw {seen[item, task] + 1} of {(item, task)}"
        seen[item, task] += 1
    assert max(seen.values()) > 10, "items are drawn many times, so the read counts grow"
    # Identities with fewer than K = 4 images repeat an item within a batch: those repeats are numbered too.
    assert any(len({(item, task) for item, task, _ in batch}) < 8 for batch in _batches(indices, 8))


def test_read_counts_are_global_across_ranks():
    # Rank r's share of global batch b is its b-th mini-batch; concatenating the shares in rank order
    # rebuilds the global stream, whose k-th draw of an (item, task) must carry read count k - 1.
    streams = [_draw(TaskIdentitySampler(ITEMS, 4, 2, seed=6, rank=r, world_size=2), 4 * 150) for r in range(2)]
    seen: Counter = Counter()
    for start in range(0, len(streams[0]), 4):
        for stream in streams:
            for item, task, read_count in (decode_index(i, N) for i in stream[start:start + 4]):
                assert read_count == seen[item, task]
                seen[item, task] += 1
    assert max(seen.values()) > 5


def test_same_seed_same_stream_other_seed_other_stream():
    first = _draw(TaskIdentitySampler(ITEMS, 8, 4, seed=7, rank=0, world_size=1), 400)
    again = _draw(TaskIdentitySampler(ITEMS, 8, 4, seed=7, rank=0, world_size=1), 400)
    other = _draw(TaskIdentitySampler(ITEMS, 8, 4, seed=8, rank=0, world_size=1), 400)
    assert first == again
    assert first != other


def test_iterating_twice_restarts_the_stream_so_islice_resumes_it():
    sampler = TaskIdentitySampler(ITEMS, 8, 4, seed=9, rank=0, world_size=1)
    full = _draw(sampler, 8 * 40)
    assert _draw(sampler, 8 * 40) == full, "a second iter() replays the stream, read counts included"
    resumed = list(itertools.islice(iter(sampler), 8 * 25, 8 * 40))
    assert resumed == full[8 * 25:]


def test_two_ranks_split_each_global_batch_by_whole_identities_of_one_task():
    streams = [_draw(TaskIdentitySampler(ITEMS, 8, 4, seed=5, rank=r, world_size=2), 8 * 60) for r in range(2)]
    tasks = set()
    for start in range(0, 8 * 60, 8):
        batches = [[decode_index(i, N) for i in stream[start:start + 8]] for stream in streams]
        pid_sets = [{PIDS[item] for item, _, _ in batch} for batch in batches]
        assert all(len(p) == 2 for p in pid_sets), "each process gets 2 identities x 4 instances"
        assert not pid_sets[0] & pid_sets[1], "the two processes get different identities"
        batch_tasks = {task for batch in batches for _, task, _ in batch}
        assert len(batch_tasks) == 1, "both processes train the same task at a step"
        tasks |= batch_tasks
        assert set(streams[0][start:start + 8]).isdisjoint(streams[1][start:start + 8])
    assert tasks == {IMAGE, TEXT, PAIR}


def test_batch_size_not_a_multiple_of_k_is_rejected():
    with pytest.raises(ValueError, match="multiple of DATALOADER.NUM_INSTANCE=4"):
        TaskIdentitySampler(ITEMS, 10, 4, seed=0, rank=0, world_size=1)
    with pytest.raises(ValueError, match="DATALOADER.NUM_INSTANCE=0"):
        TaskIdentitySampler(ITEMS, 8, 0, seed=0, rank=0, world_size=1)


def test_fewer_identities_than_p_is_rejected():
    with pytest.raises(ValueError, match="8 identities cannot fill a batch of 9 identities"):
        TaskIdentitySampler(ITEMS, 9 * 2, 2, seed=0, rank=0, world_size=1)


@pytest.mark.parametrize("weights", [(1, 1), (1, 1, 1, 1), (1, -1, 1), (0, 0, 0), (math.nan, 1, 1),
                                     (math.inf, 1, 1), ("a", 1, 1), "111", None])
def test_invalid_task_weights_are_rejected(weights):
    with pytest.raises(ValueError, match=r"DATALOADER\.TASK_WEIGHTS=.*expected 3 finite weights"):
        TaskIdentitySampler(ITEMS, 8, 4, task_weights=weights, seed=0, rank=0, world_size=1)


@pytest.mark.parametrize("weights", [(1, 1, 0), (1, 0, 1), (0, 1, 0)])
def test_text_tasks_without_descriptions_are_rejected(weights):
    items = [item if i < 5 else (item[0], item[1], item[2], "") for i, item in enumerate(ITEMS)]
    items[7] = items[7][:3]
    with pytest.raises(ValueError, match=r"DATALOADER\.TASK_WEIGHTS=.*'img_5\.jpg' has none.*FineGPR"):
        TaskIdentitySampler(items, 8, 4, task_weights=weights, seed=0, rank=0, world_size=1)


def test_visual_task_alone_needs_no_descriptions():
    items = [item[:3] for item in ITEMS]
    sampler = TaskIdentitySampler(items, 8, 4, task_weights=(1, 0, 0), seed=0, rank=0, world_size=1)
    assert {task for batch in _batches(_draw(sampler, 8 * 20), 8) for _, task, _ in batch} == {IMAGE}
