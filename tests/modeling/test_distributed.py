"""Two gloo processes compute what one process computes on their joined batch: the synchronised BNNeck and
the triplet loss mined over the gathered global batch (gradients included, after DDP's averaging)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from fastreid_dmf.modeling.distributed import ProcessSyncBatchNorm, cpu_capable_sync_batchnorm, gather_across_processes
from fastreid_dmf.modeling.losses import batch_hard_triplet_loss

WORLD = 2


def _global_batch():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(16, 6, generator=generator) * 3 + 1
    targets = torch.arange(4).repeat_interleave(4)  # 4 identities x 4, whole identities per shard
    return features, targets


def _one_process(layer_factory):
    features, targets = _global_batch()
    features = features.clone().requires_grad_(True)
    layer = layer_factory()
    normalised = layer(features[:, :, None, None])[:, :, 0, 0]
    loss = batch_hard_triplet_loss(normalised, targets) + normalised.pow(2).mean()
    loss.backward()
    return loss.detach(), features.grad, layer


def _shard_worker(rank: int, init_file: str, out_file: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        features, targets = _global_batch()
        shard = slice(rank * 8, (rank + 1) * 8)
        local = features[shard].clone().requires_grad_(True)
        layer = ProcessSyncBatchNorm(6)
        normalised = layer(local[:, :, None, None])[:, :, 0, 0]
        gathered, labels = gather_across_processes(normalised, targets[shard])
        # the triplet is computed on the global batch on both processes; the second term is a per-shard mean,
        # as fast-reid's ID loss: DDP's gradient average turns it into the global mean
        loss = batch_hard_triplet_loss(gathered, labels) + normalised.pow(2).mean()
        loss.backward()
        # what DDP averages over the processes: each one's gradient / WORLD (the gathered rows send theirs back)
        torch.save({"loss": loss.detach(), "grad": local.grad / WORLD, "labels": labels,
                    "running_mean": layer.running_mean, "running_var": layer.running_var}, out_file.format(rank))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def shard_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gloo_shards")
    out = str(folder / "rank{}.pt")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_shard_worker, args=(str(folder / "init"), out), nprocs=WORLD, join=True)
    return [torch.load(out.format(rank), weights_only=True) for rank in range(WORLD)]


def test_two_processes_give_the_one_process_loss_and_gradients(shard_results):
    loss, grad, _ = _one_process(lambda: nn.BatchNorm2d(6))
    features_grad = torch.cat([result["grad"] for result in shard_results])
    # the triplet term is the same on both processes; the mean-square term is per shard (their average is global)
    mean_loss = sum(result["loss"] for result in shard_results) / WORLD
    assert mean_loss.item() == pytest.approx(loss.item(), abs=1e-5)
    torch.testing.assert_close(features_grad, grad, atol=1e-6, rtol=1e-4)


def test_synchronised_running_statistics_are_the_global_batch_ones(shard_results):
    _, _, layer = _one_process(lambda: nn.BatchNorm2d(6))
    for result in shard_results:
        torch.testing.assert_close(result["running_mean"], layer.running_mean, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(result["running_var"], layer.running_var, atol=1e-6, rtol=1e-5)


def test_gathered_labels_are_every_process_in_rank_order(shard_results):
    _, targets = _global_batch()
    for result in shard_results:
        assert torch.equal(result["labels"], targets)


def test_one_process_gathers_nothing_and_the_layer_is_batchnorm():
    features, targets = _global_batch()
    gathered, labels = gather_across_processes(features, targets)
    assert gathered is features and labels is targets
    loss, grad, _ = _one_process(lambda: ProcessSyncBatchNorm(6))
    reference_loss, reference_grad, _ = _one_process(lambda: nn.BatchNorm2d(6))
    assert loss.item() == pytest.approx(reference_loss.item(), abs=1e-6)
    torch.testing.assert_close(grad, reference_grad)


def test_sync_batchnorm_layers_are_replaced_keeping_weights_and_frozen_bias():
    head = nn.Sequential(nn.Linear(4, 6), nn.SyncBatchNorm(6))
    head[1].bias.requires_grad_(False)  # fast-reid's BNNeck freezes its bias
    with torch.no_grad():
        head[1].weight.uniform_()
        head[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in head.state_dict().items()}
    cpu_capable_sync_batchnorm(head)
    assert type(head[1]) is ProcessSyncBatchNorm
    assert not head[1].bias.requires_grad and head[1].weight.requires_grad
    for key, value in head.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="the same B"):
        gather_across_processes(torch.zeros(4, 3), torch.zeros(5, dtype=torch.long))
