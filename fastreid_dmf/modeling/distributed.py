"""Training over several processes as over one: the global batch for batch-hard mining and the BNNeck.

With ``--num-gpus N`` fast-reid splits each P x K global batch (``SOLVER.IMS_PER_BATCH``) into N shards of
whole identities (``reorder_index``), and two parts of the model then see only a shard:

* the batch-hard triplet loss mines each anchor's hardest positive and negative in its own shard (fast-reid
  keeps the cross-process gathering in ``fastreid/modeling/losses/triplet_loss.py`` commented out);
  :func:`gather_across_processes` gives every process the whole global batch, with gradients;
* the BNNeck (``MODEL.HEADS.NORM``) normalises by the shard's statistics. fast-reid's ``syncBN`` uses
  ``torch.nn.SyncBatchNorm``, which refuses CPU tensors, so multi-process runs on a CPU (gloo) could not
  use it (DDP also refuses SyncBatchNorm in CPU modules); :class:`ProcessSyncBatchNorm` computes the same
  normalisation (mean and variance of the global batch) on any device, and :func:`cpu_capable_sync_batchnorm`
  swaps it in for CPU models (GPU models keep torch's fused kernel).

MMET's pre-training losses use the same pieces: the contrastive loss over the gathered global batch (as
FLAVA's ``ContrastiveLossWithTemperature``), MLM / MIM means over all processes' masked tokens / patches
(counts from :func:`sum_over_processes`, in ``fastreid_dmf.modeling.mmet.meta_arch.MMET``).

With these, a run on N processes computes the losses and gradients of a 1-process run on the same global
batch (DDP averages the N processes' gradients; tested in ``tests/engine/test_multiprocess.py``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from fastreid.utils import comm
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["gather_across_processes", "sum_over_processes", "ProcessSyncBatchNorm", "cpu_capable_sync_batchnorm"]


def gather_across_processes(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every process's rows of each tensor, in rank order; gradients flow back to each row's owner.

    Floating-point tensors are gathered with ``torch.distributed.nn.functional.all_gather``, whose backward
    pass sums, for each process's rows, the gradients all processes computed for them. When every process
    computes the same loss L of the gathered batch, a process's rows thus get N x dL/d(rows), and DDP's
    average over the N processes gives exactly a 1-process run's gradient of L. Other tensors (labels) are
    gathered without gradients.

    Args:
        tensors: ``(B, ...)`` each, this process's rows (the same shapes on every process).

    Returns:
        One ``(N*B, ...)`` tensor per input; the inputs themselves with one process.

    Raises:
        ValueError: no tensor, or tensors whose first dimensions differ.
    """
    if not tensors or any(t.dim() == 0 or t.shape[0] != tensors[0].shape[0] for t in tensors):
        raise ValueError(f"expected tensors (B, ...) with the same B, got shapes {[tuple(t.shape) for t in tensors]}")
    if comm.get_world_size() <= 1:
        return tensors
    gathered = []
    for tensor in tensors:
        if tensor.is_floating_point():
            gathered.append(torch.cat(dist_fn.all_gather(tensor), dim=0))
        else:
            parts = [torch.empty_like(tensor) for _ in range(comm.get_world_size())]
            dist.all_gather(parts, tensor.contiguous())
            gathered.append(torch.cat(parts))
    return tuple(gathered)


def sum_over_processes(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over all processes (no gradient), e.g. counts of masked tokens.

    Args:
        values: any tensor of the same shape and dtype on every process.

    Returns:
        A new tensor of the sums (a copy of ``values`` with one process).
    """
    total = values.detach().clone()
    if comm.get_world_size() > 1:
        dist.all_reduce(total)
    return total


class ProcessSyncBatchNorm(_BatchNorm):
    """Batch normalisation over the global batch of all processes, on any device (gloo CPU processes too).

    In eval mode or with one process it is ``torch.nn.BatchNorm``. Training with several processes it
    normalises by the mean and biased variance of the whole global batch
    (two differentiable all-reduces: the sums, then the squared deviations from the global mean), updates
    the running statistics as ``torch.nn.BatchNorm`` does (momentum, or cumulative average when
    ``momentum`` is None; unbiased variance), and back-propagates through the reductions.

    Input: float ``(B, C, ...)``; output: same shape and dtype.
    Source: the batch normalisation of ``torch.nn.SyncBatchNorm`` (``torch/nn/modules/batchnorm.py``).

    Args:
        num_features, eps, momentum, affine, track_running_stats, device, dtype: as ``torch.nn.BatchNorm2d``.
        process_group: the processes to synchronise over (None = all).

    Raises:
        ValueError: (forward) input with fewer than 2 dimensions.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype)
        self.process_group = process_group

    def _check_input_dim(self, input: torch.Tensor) -> None:  # noqa: A002 - torch's argument name
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (B, C, ...), got {input.dim()}D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's argument name
        distributed = dist.is_available() and dist.is_initialized()
        group = (self.process_group or dist.group.WORLD) if distributed else None
        if not self.training or group is None or dist.get_world_size(group) <= 1:
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = (1, -1) + (1,) * (input.dim() - 2)
        count = input.new_tensor([input.numel() / input.shape[1]])
        sums = dist_fn.all_reduce(torch.cat([input.sum(dims), count]), group=group)
        total = sums[-1]
        mean = sums[:-1] / total
        centered = input - mean.view(shape)
        var = dist_fn.all_reduce(centered.pow(2).sum(dims), group=group) / total
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum)
                unbiased = var * (total / (total - 1)).clamp(min=0)
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased.detach(), alpha=momentum)
        output = centered * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output


def cpu_capable_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``torch.nn.SyncBatchNorm`` (e.g. fast-reid's ``syncBN``) of a CPU ``model`` by
    :class:`ProcessSyncBatchNorm`, keeping parameters (with their ``requires_grad``), buffers and settings.

    Layers on a GPU are left as they are (torch's kernel synchronises them).

    Args:
        model: any module; changed in place.

    Returns:
        ``model`` (the root itself is replaced only if it is a SyncBatchNorm).
    """
    if isinstance(model, nn.SyncBatchNorm) and _device_of(model) in (None, torch.device("cpu")):
        layer = ProcessSyncBatchNorm(model.num_features, model.eps, model.momentum, model.affine,
                                     model.track_running_stats, model.process_group,
                                     device=_device_of(model), dtype=_dtype_of(model))
        layer.load_state_dict(model.state_dict())
        if model.affine:
            layer.weight.requires_grad_(model.weight.requires_grad)
            layer.bias.requires_grad_(model.bias.requires_grad)
        layer.train(model.training)
        return layer
    for name, child in model.named_children():
        replaced = cpu_capable_sync_batchnorm(child)
        if replaced is not child:
            setattr(model, name, replaced)
    return model


def _device_of(module: nn.Module) -> torch.device | None:
    tensor = next(iter(module.state_dict().values()), None)
    return None if tensor is None else tensor.device


def _dtype_of(module: nn.Module) -> torch.dtype | None:
    floats = [t for t in module.state_dict().values() if t.is_floating_point()]
    return floats[0].dtype if floats else None
